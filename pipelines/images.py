"""Image bytes to backbone-ready float tensors, in TensorFlow ops only.

`preprocess_images` decodes JPEG, PNG, GIF (first frame), BMP or WebP bytes to RGB, fits the image
into a fixed size and normalizes it for a backbone. It takes one `tf.string` scalar or a
`tf.string` vector (a batch) and works eagerly, inside `tf.data.Dataset.map` and inside an
exported `tf.function`: it uses no py_function, so a SavedModel holding it needs nothing but
TensorFlow. Grayscale images are repeated over the three channels; an alpha channel is
composited over the `background` colour ("white" or "black"), which also fills the padding.

Bytes that are not an image fail with the decoder's InvalidArgumentError ("Unknown image file
format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required.", or "Input is empty."); the next call
is unaffected.

Normalizations (what `keras.applications` backbones expect):
    "none"           float pixel values in [0, 255]: EfficientNet, EfficientNetV2, ConvNeXt,
                     MobileNetV3, which rescale inside the model.
    "zero_one"       x / 255.
    "minus_one_one"  x / 127.5 - 1: MobileNet, MobileNetV2, InceptionV3, Xception ("tf" mode).
    "torch"          (x / 255 - ImageNet mean) / ImageNet std, per channel: DenseNet.
    "caffe"          RGB to BGR, then minus the ImageNet BGR mean: VGG16, ResNet50.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf

Fit = Literal["pad", "squash"]
Normalization = Literal["none", "zero_one", "minus_one_one", "torch", "caffe"]
Background = Literal["white", "black"]

FITS = ("pad", "squash")
NORMALIZATIONS = ("none", "zero_one", "minus_one_one", "torch", "caffe")
BACKGROUNDS = {"white": 255.0, "black": 0.0}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def preprocess_images(
    image_bytes,
    size: int | tuple[int, int],
    fit: Fit = "pad",
    normalization: Normalization = "zero_one",
    background: Background = "white",
) -> tf.Tensor:
    """Decodes, fits and normalizes one image or a batch of images.

    Args:
        image_bytes: encoded JPEG/PNG/GIF/BMP/WebP bytes: a `tf.string` scalar, or a vector of them.
        size: the output `(height, width)`, or one int for a square.
        fit: "pad" scales the image to fit inside `size` keeping its aspect ratio and pads the
            rest evenly on both sides with the background colour; "squash" resizes to `size`
            ignoring the aspect ratio.
        normalization: one of "none", "zero_one", "minus_one_one", "torch", "caffe" (see the
            module docstring).
        background: "white" or "black": the colour under transparent pixels and of the padding.

    Returns:
        float32 `(height, width, 3)` for a scalar, `(batch, height, width, 3)` for a vector.

    Raises:
        ValueError: a bad `size`, `fit`, `normalization` or `background`, or `image_bytes`
            that is not a string scalar or vector.
        tf.errors.InvalidArgumentError: bytes that are not an image (when run).
    """
    height, width = _check_size(size)
    _check_choice("fit", fit, FITS)
    _check_choice("normalization", normalization, NORMALIZATIONS)
    _check_choice("background", background, tuple(BACKGROUNDS))
    image_bytes = tf.convert_to_tensor(image_bytes)
    if image_bytes.dtype != tf.string:
        raise ValueError(f"image_bytes: expected a tf.string tensor, got {image_bytes.dtype!r}")

    def preprocess_one(one_image_bytes):
        image = decode_image(one_image_bytes, background)
        return normalize_image(fit_image(image, (height, width), fit, background), normalization)

    if image_bytes.shape.rank == 0:
        return preprocess_one(image_bytes)
    if image_bytes.shape.rank == 1:
        return tf.map_fn(
            preprocess_one,
            image_bytes,
            fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
        )
    raise ValueError(
        f"image_bytes: expected a scalar or a vector of image bytes, got shape {image_bytes.shape}"
    )


def decode_image(image_bytes, background: Background = "white") -> tf.Tensor:
    """Decodes one JPEG/PNG/GIF/BMP/WebP image to float32 RGB `(height, width, 3)` in [0, 255].

    Grayscale is repeated over the channels; alpha is composited over `background`.
    """
    _check_choice("background", background, tuple(BACKGROUNDS))
    image = tf.io.decode_image(image_bytes, channels=0, expand_animations=False)
    channels = tf.shape(image)[-1]

    def to_rgb(color):
        return tf.tile(tf.cast(color, tf.float32), [1, 1, 3 // tf.shape(color)[-1]])

    def composite():
        opacity = tf.cast(image[..., -1:], tf.float32) / 255.0
        return to_rgb(image[..., :-1]) * opacity + BACKGROUNDS[background] * (1.0 - opacity)

    rgb = tf.cond(tf.equal(channels % 2, 0), composite, lambda: to_rgb(image))
    return tf.ensure_shape(rgb, (None, None, 3))


def fit_image(
    image, size: int | tuple[int, int], fit: Fit = "pad", background: Background = "white"
) -> tf.Tensor:
    """Resizes a float `(height, width, channels)` image to `size` by padding or squashing.

    Resizing is bilinear with antialiasing (a triangle filter as wide as the scale when
    shrinking). An odd padding puts the extra row or column at the bottom or right.
    """
    height, width = _check_size(size)
    _check_choice("fit", fit, FITS)
    _check_choice("background", background, tuple(BACKGROUNDS))
    if fit == "squash":
        return tf.image.resize(image, (height, width), antialias=True)
    image_height = tf.cast(tf.shape(image)[0], tf.float32)
    image_width = tf.cast(tf.shape(image)[1], tf.float32)
    scale = tf.minimum(height / image_height, width / image_width)
    new_height = tf.clip_by_value(tf.cast(tf.round(image_height * scale), tf.int32), 1, height)
    new_width = tf.clip_by_value(tf.cast(tf.round(image_width * scale), tf.int32), 1, width)
    resized = tf.image.resize(image, tf.stack([new_height, new_width]), antialias=True)
    top = (height - new_height) // 2
    left = (width - new_width) // 2
    padded = tf.pad(
        resized,
        [[top, height - new_height - top], [left, width - new_width - left], [0, 0]],
        constant_values=BACKGROUNDS[background],
    )
    return tf.ensure_shape(padded, (height, width, image.shape[-1]))


def normalize_image(image, normalization: Normalization = "zero_one") -> tf.Tensor:
    """Maps float RGB pixel values in [0, 255] to what a backbone expects (module docstring)."""
    _check_choice("normalization", normalization, NORMALIZATIONS)
    image = tf.cast(image, tf.float32)
    if normalization == "none":
        return image
    if normalization == "zero_one":
        return image / 255.0
    if normalization == "minus_one_one":
        return image / 127.5 - 1.0
    if normalization == "torch":
        return (image / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return image[..., ::-1] - CAFFE_BGR_MEAN


def _check_size(size) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(side, int) and side > 0 for side in pair):
        raise ValueError(f"size: expected a positive int or (height, width), got {size!r}")
    return pair


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
