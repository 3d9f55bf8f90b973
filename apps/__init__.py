"""The rnn-suite apps; `apps.core` holds what they share."""

import os

# TensorFlow's C++ start-up chatter (CPU feature notes, plugin registration) hides the
# progress bars and results the user asked for; real errors still surface.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
