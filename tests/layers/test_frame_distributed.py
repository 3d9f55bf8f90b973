import keras
import numpy as np
from layer_testing import run_layer_test

from layers.frame_distributed import FrameDistributed


def clips(seed=0):
    return np.random.default_rng(seed).uniform(size=(2, 3, 8, 8, 2)).astype("float32")


def test_frame_distributed_layer(tmp_path):
    run_layer_test(
        FrameDistributed,
        {"layer": keras.layers.Dense(4)},
        (np.random.default_rng(2).normal(size=(2, 3, 5)).astype("float32"),),
        tmp_path,
        expected_output_shape=(2, 3, 4),
        # The wrapped layer keeps its own dtype policy.
        mixed_precision_output_dtype="float32",
    )
    # Frames: (batch, time, height, width, channels).
    layer = FrameDistributed(keras.layers.Conv2D(4, 3, strides=2, padding="same"))
    assert layer(clips()).shape == (2, 3, 4, 4, 4)


def test_equals_time_distributed_on_every_frame():
    cnn = keras.Sequential(
        [keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, activation="relu"),
         keras.layers.Flatten(), keras.layers.Dense(5)]
    )  # fmt: skip
    inputs = clips(1)
    folded = keras.ops.convert_to_numpy(FrameDistributed(cnn)(inputs))
    mapped = keras.ops.convert_to_numpy(keras.layers.TimeDistributed(cnn)(inputs))
    assert folded.shape == (2, 3, 5)
    np.testing.assert_allclose(folded, mapped, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        folded[1, 2], keras.ops.convert_to_numpy(cnn(inputs[1, 2:3]))[0], atol=1e-6
    )
