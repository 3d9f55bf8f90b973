"""Image backbones as encoders: a `keras.applications` model by name, or a small CNN, whose
spatial grid of features is flattened into a sequence (captioning, activity recognition)."""

from pathlib import Path

import keras
from keras import ops

from layers.arguments import check_positive_integers

SMALL_CNN = "small_cnn"
NORMALIZATIONS = ("none", "zero_one", "minus_one_one", "torch", "caffe")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# The pixel scaling each backbone expects (`pipelines.images.preprocess_images`'s
# `normalization`): MobileNetV3, EfficientNet(V2) and ConvNeXt rescale inside the model.
BACKBONE_NORMALIZATIONS = {
    SMALL_CNN: "zero_one",
    "MobileNetV3Small": "none",
    "MobileNetV3Large": "none",
    "EfficientNetB0": "none",
    "EfficientNetB1": "none",
    "EfficientNetB2": "none",
    "EfficientNetB3": "none",
    "EfficientNetV2B0": "none",
    "EfficientNetV2B1": "none",
    "ConvNeXtTiny": "none",
    "MobileNet": "minus_one_one",
    "MobileNetV2": "minus_one_one",
    "InceptionV3": "minus_one_one",
    "Xception": "minus_one_one",
    "DenseNet121": "torch",
    "ResNet50": "caffe",
    "VGG16": "caffe",
}


def make_backbone(
    backbone, image_size, pretrained_weights=None, filters=(32, 64, 128), dtype=None
) -> keras.Model:
    """A headless convolutional model `(batch, height, width, 3)` -> `(batch, h, w, features)`.

    `backbone` is a `keras.applications` name (a key of `BACKBONE_NORMALIZATIONS`) or
    `"small_cnn"`: per entry of `filters`, a 3x3 convolution, layer normalization over the
    channels, ReLU and a 2x2 max pooling.
    `pretrained_weights` is `None` (random), `"imagenet"` (downloaded by Keras) or the path of
    a weights file. The layers take the dtype policy `dtype` (default: the global one).
    """
    if backbone not in BACKBONE_NORMALIZATIONS:
        raise ValueError(
            f"`backbone` must be one of {sorted(BACKBONE_NORMALIZATIONS)}. "
            f"Received: backbone={backbone!r}"
        )
    if pretrained_weights not in (None, "imagenet") and not Path(pretrained_weights).is_file():
        raise ValueError(
            "`pretrained_weights` must be None, 'imagenet' or the path of a weights file. "
            f"Received: pretrained_weights={pretrained_weights!r}"
        )
    height, width = image_size
    check_positive_integers(height=height, width=width)
    if backbone == SMALL_CNN:
        blocks = []
        for index, count in enumerate(filters):
            blocks += [
                keras.layers.Conv2D(count, 3, padding="same", name=f"conv{index + 1}", dtype=dtype),
                keras.layers.LayerNormalization(name=f"norm{index + 1}", dtype=dtype),
                keras.layers.Activation("relu", name=f"relu{index + 1}", dtype=dtype),
                keras.layers.MaxPooling2D(2, name=f"pool{index + 1}", dtype=dtype),
            ]  # fmt: skip
        model = keras.Sequential([keras.Input((height, width, 3)), *blocks], name=SMALL_CNN)
        if pretrained_weights == "imagenet":
            raise ValueError("`pretrained_weights`: the small CNN has no 'imagenet' weights")
        if pretrained_weights is not None:
            model.load_weights(pretrained_weights)
        return model
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype or previous)
    try:
        return getattr(keras.applications, backbone)(
            include_top=False, weights=pretrained_weights, input_shape=(height, width, 3)
        )
    finally:
        keras.config.set_dtype_policy(previous)


@keras.saving.register_keras_serializable(package="rnn_suite")
class ImageEncoder(keras.layers.Layer):
    """Runs an image backbone and flattens its spatial grid of features into a sequence.

    The backbone (`make_backbone`) turns images `(batch, height, width, 3)`, scaled as
    `BACKBONE_NORMALIZATIONS[backbone]` says, into a grid `(batch, h, w, features)`; the grid's
    cells, row by row, become the steps of the output sequence, which an attention decoder
    reads like the outputs of a recurrent encoder. Every cell is valid: no mask.

    Freeze the backbone with `trainable=False` (its batch normalization then runs in
    inference mode); set `encoder.trainable = True` later to fine-tune it. The pretrained
    weights are the starting point only: they are saved with the model, so the config does
    not name them and `from_config` starts from random weights (as keras-hub's backbones).

    Args:
        backbone: `"small_cnn"` or a `keras.applications` name, e.g. `"MobileNetV3Small"`,
            `"EfficientNetB0"` (the keys of `BACKBONE_NORMALIZATIONS`).
        image_size: the input `(height, width)`.
        filters: the small CNN's filters per block (unused by the others).
        pretrained_weights: `None`, `"imagenet"` or the path of a weights file.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, `trainable`, ...).

    Call arguments:
        images: float tensor `(batch, height, width, 3)`.
        training: whether batch normalization and dropout run in training mode.

    Returns:
        Features `(batch, cells, features)`, `cells = h * w` (`grid_shape`).

    Example:

    ```python
    encoder = ImageEncoder("small_cnn", (64, 64), filters=(32, 64, 128))
    encoder(keras.random.uniform((2, 64, 64, 3)))  # (2, 64, 128): an 8x8 grid
    ```

    References:
        - Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual
          Attention", 2015.
        - Howard et al., "Searching for MobileNetV3", 2019.
    """

    def __init__(
        self,
        backbone=SMALL_CNN,
        image_size=(64, 64),
        filters=(32, 64, 128),
        pretrained_weights=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.image_size = tuple(image_size)
        self.filters = tuple(filters)
        self.pretrained_weights = pretrained_weights
        self.network = make_backbone(
            backbone, self.image_size, pretrained_weights, self.filters, dtype=self.dtype_policy
        )
        self.network.trainable = self.trainable
        grid_shape = self.network.compute_output_shape((None, *self.image_size, 3))
        self.grid_shape = tuple(grid_shape[1:3])
        self.features = grid_shape[-1]

    @property
    def cells(self):
        return self.grid_shape[0] * self.grid_shape[1]

    def build(self, images_shape):
        self.built = True

    def call(self, images, training=None):
        grid = self.network(images, training=training)
        return ops.reshape(grid, (-1, self.cells, self.features))  # (batch, cells, features)

    def compute_output_shape(self, images_shape):
        return (images_shape[0], self.cells, self.features)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"backbone": self.backbone, "image_size": list(self.image_size),
             "filters": list(self.filters)}
        )  # fmt: skip
        return config


@keras.saving.register_keras_serializable(package="rnn_suite")
class BackboneScaling(keras.layers.Layer):
    """Scales pixel values in [0, 255] as a backbone expects them, inside the model.

    The input (any dtype, uint8 frames included) is cast to the layer's compute dtype; a
    single (grayscale) channel is repeated to RGB; then `normalization` (the values of
    `BACKBONE_NORMALIZATIONS`) maps the pixels: "none" keeps [0, 255] (the backbone rescales
    itself), "zero_one" [0, 1], "minus_one_one" [-1, 1], "torch" ImageNet mean and standard
    deviation on [0, 1], "caffe" RGB to BGR minus the ImageNet BGR mean. The same mapping as
    `pipelines.images.normalize_image`, as a layer, for models that take raw frames. No mask.

    Args:
        normalization: one of "none", "zero_one", "minus_one_one", "torch", "caffe".
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        images: tensor `(..., height, width, 1 or 3)` of pixel values in [0, 255].

    Returns:
        Float tensor `(..., height, width, 3)`.

    Example:

    ```python
    frames = keras.ops.zeros((2, 8, 32, 32, 1), "uint8")
    BackboneScaling("minus_one_one")(frames)  # (2, 8, 32, 32, 3), all -1.0
    ```

    References:
        - He et al., "Deep Residual Learning for Image Recognition", 2015 (the caffe scaling).
    """

    def __init__(self, normalization="zero_one", **kwargs):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {NORMALIZATIONS}. "
                f"Received: normalization={normalization!r}"
            )
        self.normalization = normalization

    def call(self, images):
        images = ops.cast(images, self.compute_dtype)
        if images.shape[-1] == 1:
            images = ops.repeat(images, 3, axis=-1)
        if self.normalization == "zero_one":
            return images / 255.0
        if self.normalization == "minus_one_one":
            return images / 127.5 - 1.0
        if self.normalization == "torch":
            mean = ops.convert_to_tensor(IMAGENET_MEAN, self.compute_dtype)
            deviation = ops.convert_to_tensor(IMAGENET_STD, self.compute_dtype)
            return (images / 255.0 - mean) / deviation
        if self.normalization == "caffe":
            return ops.flip(images, axis=-1) - ops.convert_to_tensor(
                CAFFE_BGR_MEAN, self.compute_dtype
            )
        return images

    def compute_output_shape(self, images_shape):
        return (*images_shape[:-1], 3)

    def get_config(self):
        config = super().get_config()
        config.update({"normalization": self.normalization})
        return config


def image_encoders(layer) -> list[ImageEncoder]:
    """The `ImageEncoder` layers of a layer or model: itself, inside nested models, and
    wrapped (`keras.layers.TimeDistributed`, ...)."""
    if isinstance(layer, ImageEncoder):
        return [layer]
    children = list(getattr(layer, "layers", []))
    if isinstance(layer, keras.layers.Wrapper):
        children.append(layer.layer)
    return [encoder for child in children for encoder in image_encoders(child)]


def build_optimizer_with_image_encoders(model: keras.Model) -> None:
    """Builds a compiled model's optimizer over its variables with every image encoder
    trainable, then freezes the encoders again, so `UnfreezeBackbone` needs no new optimizer."""
    encoders = image_encoders(model)
    for encoder in encoders:
        encoder.trainable = True
    model.optimizer.build(model.trainable_variables)
    for encoder in encoders:
        encoder.trainable = False


class UnfreezeBackbone(keras.callbacks.Callback):
    """Makes the model's image encoders (`image_encoders`) trainable from epoch
    `frozen_epochs` (0-based) on.

    The training step is traced again so that it updates the encoders' weights, which the
    optimizer was built with from the start (`build_optimizer_with_image_encoders`).
    """

    def __init__(self, frozen_epochs: int):
        super().__init__()
        self.frozen_epochs = frozen_epochs

    def on_epoch_begin(self, epoch, logs=None):
        frozen = [encoder for encoder in image_encoders(self.model) if not encoder.trainable]
        if epoch >= self.frozen_epochs and frozen:
            for encoder in frozen:
                encoder.trainable = True
            self.model.make_train_function(force=True)
            print(f"epoch {epoch + 1}: the backbone is fine-tuned from now on")
