import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from layers.backbone import ImageEncoder, make_backbone

BATCH, SIZE = 2, 16


def images(seed=0, size=SIZE):
    return np.random.default_rng(seed).uniform(size=(BATCH, size, size, 3)).astype("float32")


def test_small_cnn_encoder_layer(tmp_path):
    run_layer_test(
        ImageEncoder,
        {"backbone": "small_cnn", "image_size": (SIZE, SIZE), "filters": (4, 6)},
        (images(),),
        tmp_path,
        expected_output_shape=(BATCH, 16, 6),
    )


def test_cells_are_the_grid_row_by_row():
    encoder = ImageEncoder("small_cnn", (SIZE, SIZE), filters=(4, 6))
    inputs = images(1)
    grid = keras.ops.convert_to_numpy(encoder.network(inputs))
    assert grid.shape == (BATCH, 4, 4, 6)
    sequence = keras.ops.convert_to_numpy(encoder(inputs))
    np.testing.assert_array_equal(sequence[:, 5], grid[:, 1, 1])  # row 1, column 1
    np.testing.assert_array_equal(sequence[:, 7], grid[:, 1, 3])


def test_frozen_application_backbone_is_not_trained(tmp_path):
    # MobileNetV3Small by name, frozen: no trainable weights, batch norm in inference mode
    # (a training call gives the inference outputs).
    encoder = ImageEncoder("MobileNetV3Small", (32, 32), trainable=False)
    assert encoder.trainable_weights == [] and encoder.cells == 1 and encoder.features == 576
    inputs = 255.0 * images(2, size=32)
    np.testing.assert_allclose(
        encoder(inputs, training=True), encoder(inputs, training=False), atol=1e-6
    )
    encoder.trainable = True
    assert len(encoder.trainable_weights) > 0
    restored = ImageEncoder.from_config(encoder.get_config())
    assert restored.get_config() == encoder.get_config()


def test_local_weights_file_is_loaded(tmp_path):
    source = make_backbone("small_cnn", (SIZE, SIZE), filters=(4,))
    path = tmp_path / "small.weights.h5"
    source.save_weights(path)
    encoder = ImageEncoder("small_cnn", (SIZE, SIZE), filters=(4,), pretrained_weights=str(path))
    for loaded, saved in zip(encoder.network.weights, source.weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "AlexNet"}, "`backbone` must be one of"),
        ({"pretrained_weights": "/no/such/file.h5"}, "`pretrained_weights` must be None"),
        ({"pretrained_weights": "imagenet"}, "no 'imagenet' weights"),
        ({"image_size": (0, 8)}, "`height` must be a positive integer"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageEncoder(**{"image_size": (SIZE, SIZE), **kwargs})
