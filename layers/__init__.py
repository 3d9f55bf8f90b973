"""Reusable Keras layers (keras.ops only; no imports from pipelines or apps)."""
