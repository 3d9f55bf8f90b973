"""tf.data pipelines: sources -> parse -> preprocess -> batch -> prefetch. No model code."""
