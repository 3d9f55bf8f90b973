import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pipelines.images import preprocess_images

RED, BLUE = (200, 30, 10), (5, 60, 250)


def encode(array, mode, image_format="PNG", **options):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8), mode).save(buffer, image_format, **options)
    return buffer.getvalue()


def two_colour_image(height, width):
    """Left half RED, right half BLUE."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = RED
    array[:, width // 2 :] = BLUE
    return array


def raw(image_bytes, size, **options):
    return preprocess_images(image_bytes, size, normalization="none", **options).numpy()


@pytest.mark.parametrize("image_format", ["PNG", "BMP", "GIF", "WEBP"])
def test_lossless_formats_decode_to_the_same_rgb(image_format):
    array = two_colour_image(3, 4)
    options = {"lossless": True} if image_format == "WEBP" else {}
    decoded = raw(encode(array, "RGB", image_format, **options), (3, 4))
    np.testing.assert_allclose(decoded, array, atol=1e-3)


def test_grayscale_repeats_over_channels():
    gray = np.array([[0, 77], [128, 255]], np.uint8)
    decoded = raw(encode(gray, "L"), (2, 2))
    np.testing.assert_allclose(decoded, np.repeat(gray[..., None], 3, axis=-1), atol=1e-3)


@pytest.mark.parametrize(("background", "expected_red"), [("white", 255 * 0.8 + 40), ("black", 40)])
def test_alpha_is_composited_over_the_background(background, expected_red):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[..., :3] = (200, 100, 0)
    rgba[0, :, 3] = (0, 51, 255)  # transparent, 20% opaque, opaque
    decoded = raw(encode(rgba, "RGBA"), (1, 3), background=background)
    fill = 255.0 if background == "white" else 0.0
    np.testing.assert_allclose(decoded[0, 0], [fill] * 3, atol=1e-3)
    np.testing.assert_allclose(decoded[0, 1, 0], expected_red, atol=1e-3)
    np.testing.assert_allclose(decoded[0, 2], [200, 100, 0], atol=1e-3)
    gray_alpha = np.stack([np.full((1, 1), 100), np.full((1, 1), 51)], axis=-1)
    np.testing.assert_allclose(
        raw(encode(gray_alpha, "LA"), 1, background=background)[0, 0],
        [100 * 0.2 + fill * 0.8] * 3,
        atol=1e-3,
    )


def test_pad_keeps_the_aspect_and_fills_the_border():
    wide = raw(encode(np.full((2, 4, 3), RED), "RGB"), 8)
    np.testing.assert_allclose(wide[2:6], np.full((4, 8, 3), RED), atol=1e-3)
    np.testing.assert_allclose(wide[[0, 1, 6, 7]], np.full((4, 8, 3), 255.0), atol=1e-3)
    tall = raw(encode(np.full((6, 3, 3), BLUE), "RGB"), (4, 4), background="black")
    np.testing.assert_allclose(tall[:, 1:3], np.full((4, 2, 3), BLUE), atol=1e-3)
    np.testing.assert_allclose(tall[:, [0, 3]], np.zeros((4, 2, 3)), atol=1e-3)


def test_odd_padding_goes_right_and_a_single_pixel_scales_up():
    pixel = raw(tf.io.encode_png(tf.constant([[[9, 8, 7]]], tf.uint8)), (2, 3))
    np.testing.assert_allclose(pixel[:, :2], np.full((2, 2, 3), [9, 8, 7]), atol=1e-3)
    np.testing.assert_allclose(pixel[:, 2], np.full((2, 3), 255.0), atol=1e-3)


def test_squash_fills_the_whole_size():
    squashed = raw(encode(two_colour_image(1, 2), "RGB"), (3, 2), fit="squash")
    np.testing.assert_allclose(squashed[:, 0], np.full((3, 3), RED), atol=1e-3)
    np.testing.assert_allclose(squashed[:, 1], np.full((3, 3), BLUE), atol=1e-3)


def test_a_4000_by_3000_photo_shrinks_with_its_aspect():
    photo = tf.io.encode_jpeg(tf.zeros((3000, 4000, 3), tf.uint8), quality=50)
    image = raw(photo, 16)
    np.testing.assert_allclose(image[2:14], np.zeros((12, 16, 3)), atol=2)
    np.testing.assert_allclose(image[[0, 1, 14, 15]], np.full((4, 16, 3), 255.0), atol=1e-3)


@pytest.mark.parametrize(
    ("normalization", "keras_mode"),
    [("minus_one_one", "tf"), ("torch", "torch"), ("caffe", "caffe")],
)
def test_normalizations_match_keras_applications(normalization, keras_mode):
    array = np.random.default_rng(0).integers(0, 256, (3, 5, 3)).astype(np.uint8)
    image = preprocess_images(encode(array, "RGB"), (3, 5), normalization=normalization)
    expected = keras.applications.imagenet_utils.preprocess_input(
        array.astype(np.float32), mode=keras_mode
    )
    np.testing.assert_allclose(image.numpy(), expected, atol=1e-4)
    zero_one = preprocess_images(encode(array, "RGB"), (3, 5), normalization="zero_one")
    np.testing.assert_allclose(zero_one.numpy(), array / 255.0, atol=1e-5)


def test_eager_dataset_map_and_exported_function_agree(tmp_path):
    images = [
        encode(two_colour_image(5, 3), "RGB"),
        encode(np.array([[0, 200, 90]], np.uint8), "L"),
        encode(np.full((4, 7, 4), 120), "RGBA", "PNG"),
    ]
    options = {"size": (6, 4), "normalization": "minus_one_one"}
    eager = np.stack([preprocess_images(image, **options).numpy() for image in images])
    batched = preprocess_images(tf.constant(images), **options).numpy()
    mapped_one = np.stack(
        list(
            tf.data.Dataset.from_tensor_slices(images)
            .map(lambda image: preprocess_images(image, **options))
            .as_numpy_iterator()
        )
    )
    mapped_batches = np.concatenate(
        list(
            tf.data.Dataset.from_tensor_slices(images)
            .batch(2)
            .map(lambda batch: preprocess_images(batch, **options))
            .as_numpy_iterator()
        )
    )
    module = tf.Module()
    module.serve = tf.function(
        lambda image_bytes: preprocess_images(image_bytes, **options),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "model"))
    served = tf.saved_model.load(str(tmp_path / "model")).serve
    for result in (batched, mapped_one, mapped_batches, served(tf.constant(images)).numpy()):
        np.testing.assert_allclose(result, eager, atol=1e-5)
    assert served(tf.constant([], tf.string)).shape == (0, 6, 4, 3)
    graph = module.serve.get_concrete_function().graph.as_graph_def()
    op_types = {node.op for node in graph.node}
    op_types |= {node.op for function in graph.library.function for node in function.node_def}
    assert not op_types & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


def test_bytes_that_are_no_image_are_an_invalid_argument_and_the_next_call_works():
    good = encode(np.full((2, 2, 3), RED), "RGB")
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        preprocess_images(b"not an image", 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Input is empty"):
        preprocess_images(b"", 4)
    serve = tf.function(
        lambda image_bytes: preprocess_images(image_bytes, 4),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        serve(tf.constant([good, b"no image either"]))
    np.testing.assert_allclose(serve(tf.constant([good])).numpy()[0, 0, 0], np.array(RED) / 255)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"size": 0}, "size: expected a positive int"),
        ({"size": (4, 4, 4)}, "size: expected a positive int"),
        ({"size": 4, "fit": "crop"}, "fit: expected one of pad, squash, got 'crop'"),
        ({"size": 4, "normalization": "imagenet"}, "normalization: expected one of none"),
        ({"size": 4, "background": "grey"}, "background: expected one of white, black"),
    ],
)
def test_bad_arguments_name_themselves(arguments, message):
    with pytest.raises(ValueError, match=message):
        preprocess_images(b"", **arguments)


def test_only_string_scalars_and_vectors_are_accepted():
    with pytest.raises(ValueError, match="image_bytes: expected a scalar or a vector"):
        preprocess_images(tf.constant([["a"]]), 4)
    with pytest.raises(ValueError, match="image_bytes: expected a tf.string tensor"):
        preprocess_images(tf.zeros((2,)), 4)
