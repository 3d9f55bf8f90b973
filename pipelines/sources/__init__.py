"""Where examples come from: bundled offline recipes, tfds names, user files."""
