"""The activity classifier: a CNN on every frame -> the shared recurrent encoder over the
frames (masked) -> the shared pooling -> classes; and the frame-averaging baseline.

Video clips enter as uint8 `frames` (batch, frames, height, width, channels) with a bool
`frame_mask` (batch, frames), True on real frames; the model scales them to [0, 1] itself.
Sensor clips enter as float32 `series` (batch, time, channels) with the same mask, normalized
per channel in the model by the training split's mean and variance, and go straight to the
recurrent encoder. The export (serving.py) samples, resizes and converts raw frames before
this model.

With a keras.applications backbone the frame encoder is `frame_encoder` (the backbone's
pixel scaling, then `layers.backbone.ImageEncoder` on every frame: `(batch, frames, cells,
features)`), its grid flattened per frame into the dense frame features. A backbone frozen for
the whole run with `model.cache_features` gives a `CachedFeatureClassifier`: it trains on the
encoder's cached `features` (data.py computes them once) and keeps the frozen encoder, so it
also answers raw `frames` (the export's input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from apps.activity.config import ActivityConfig, ModelConfig
from apps.core import training
from apps.core.errors import UserError
from layers.backbone import (
    BACKBONE_NORMALIZATIONS,
    BackboneScaling,
    ImageEncoder,
    build_optimizer_with_image_encoders,
)
from layers.frame_distributed import FrameDistributed
from layers.pooling import SequencePooling
from layers.recurrent_encoder import RecurrentEncoder

if TYPE_CHECKING:
    from apps.activity.data import ClipAssets

SMALL_CNN = "small-cnn"


def check_backbone(model: ModelConfig) -> None:
    """UserError unless `model.backbone` is the small CNN or a name of the shared backbone
    helper (and only those are frozen or given weights)."""
    if model.backbone == SMALL_CNN:
        if model.backbone_training != "fine_tune" or model.backbone_weights is not None:
            raise UserError(
                "model.backbone_training and model.backbone_weights apply to the shared "
                f"backbones; the {SMALL_CNN} always trains from random weights"
            )
        return
    if model.backbone not in BACKBONE_NORMALIZATIONS:
        raise UserError(
            f"model.backbone: expected {SMALL_CNN} or one of "
            f"{', '.join(sorted(BACKBONE_NORMALIZATIONS))}; got {model.backbone!r}"
        )


def uses_backbone(model: ModelConfig, kind: str) -> bool:
    """Whether the frames go through a shared backbone (`frame_encoder`)."""
    return kind == "video" and model.backbone != SMALL_CNN


def caches_features(config: ActivityConfig, kind: str) -> bool:
    """Whether training takes cached backbone features: a backbone frozen for the whole run."""
    model = config.model
    return (
        uses_backbone(model, kind) and model.backbone_training == "frozen" and model.cache_features
    )


def clip_inputs(assets: ClipAssets) -> dict[str, keras.KerasTensor]:
    if assets.kind == "sensor":
        clips = keras.Input(shape=(None, assets.channels), dtype="float32", name="series")
        time = None
    else:
        shape = (assets.frames, assets.height, assets.width, assets.channels)
        clips = keras.Input(shape=shape, dtype="uint8", name="frames")
        time = assets.frames
    return {clips.name: clips, "frame_mask": keras.Input((time,), dtype="bool", name="frame_mask")}


def frame_cnn(model: ModelConfig, assets: ClipAssets, flatten: bool = True) -> keras.Sequential:
    """The per-frame CNN: 3x3 stride-2 ReLU convolutions, then (with `flatten`) a dense layer
    over the flattened map, so the features keep where things are in the frame."""
    layers = [keras.Input((assets.height, assets.width, assets.channels))]
    for index, filters in enumerate(model.filters):
        layers.append(
            keras.layers.Conv2D(
                filters, 3, strides=2, padding="same", activation="relu", name=f"conv_{index}"
            )
        )
    if flatten:
        layers += [
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(model.frame_features, activation="relu", name="frame_features"),
        ]
    return keras.Sequential(layers, name="small_cnn")


def frame_encoder(config: ActivityConfig, assets: ClipAssets) -> keras.Model:
    """uint8 frames `(batch, frames, height, width, channels)` -> the backbone's features of
    every frame `(batch, frames, cells, features)`, made right after seeding with
    `training.seed`, so the feature cache's encoder and the model's start from the same
    weights (pretrained or random)."""
    model = config.model
    keras.utils.set_random_seed(config.training.seed)
    frames = keras.Input(
        (assets.frames, assets.height, assets.width, assets.channels), dtype="uint8", name="frames"
    )
    scaled = BackboneScaling(BACKBONE_NORMALIZATIONS[model.backbone], name="backbone_scaling")(
        frames
    )
    encoder = ImageEncoder(
        model.backbone,
        (assets.height, assets.width),
        model.filters,
        pretrained_weights=model.backbone_weights,
        trainable=model.backbone_training == "fine_tune",
        name="image_encoder",
    )
    grids = FrameDistributed(encoder, name="frame_backbone")(scaled)
    return keras.Model(frames, grids, name="frame_encoder")


def feature_inputs(encoder: keras.Model) -> dict[str, keras.KerasTensor]:
    """The inputs of a model that reads cached `frame_encoder` features."""
    _, frames, cells, features = encoder.output.shape
    return {
        "features": keras.Input((frames, cells, features), name="features"),
        "frame_mask": keras.Input((frames,), dtype="bool", name="frame_mask"),
    }


def backbone_frame_features(grids: keras.KerasTensor, model: ModelConfig) -> keras.KerasTensor:
    """Backbone features `(batch, frames, cells, features)` -> dense frame features."""
    _, frames, cells, features = grids.shape
    flat = keras.layers.Reshape((frames, cells * features), name="flatten_grid")(
        grids
    )  # (batch, frames, cells * features)
    dense = keras.layers.Dense(model.frame_features, activation="relu", name="frame_features")(flat)
    return keras.layers.Dropout(model.frame_dropout, name="frame_dropout")(dense)


def backbone_maps(grids: keras.KerasTensor, encoder: ImageEncoder) -> keras.KerasTensor:
    """Backbone features `(batch, frames, cells, features)` -> maps for the ConvLSTM2D."""
    _, frames, _, features = grids.shape
    shape = (frames, *encoder.grid_shape, features)
    return keras.layers.Reshape(shape, name="grid_maps")(grids)  # (batch, frames, h, w, features)


def frame_features(
    inputs: dict[str, keras.KerasTensor], model: ModelConfig, assets: ClipAssets, flatten=True
) -> keras.KerasTensor:
    """Per-frame features (batch, frames, features), or per-frame maps without `flatten`."""
    if assets.kind == "sensor":
        return keras.layers.Normalization(
            mean=assets.mean, variance=assets.variance, name="channel_normalization"
        )(inputs["series"])
    scaled = keras.layers.Rescaling(1 / 255, name="scale")(inputs["frames"])
    features = FrameDistributed(frame_cnn(model, assets, flatten), name="frame_cnn")(scaled)
    if not flatten:
        return features
    return keras.layers.Dropout(model.frame_dropout, name="frame_dropout")(features)


def classify(
    inputs: dict[str, keras.KerasTensor],
    pooled: keras.KerasTensor,
    config: ActivityConfig,
    assets: ClipAssets,
    name: str,
) -> keras.Model:
    """Dropout, a float32 classifier and softmax on `pooled`; the model compiled."""
    pooled = keras.layers.Dropout(config.model.dropout, name="dropout")(pooled)
    logits = keras.layers.Dense(len(assets.label_names), dtype="float32", name="classifier")(pooled)
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
    return compiled(keras.Model(inputs, probabilities, name=name), config)


def compiled(model: keras.Model, config: ActivityConfig) -> keras.Model:
    model.compile(
        optimizer=training.optimizer(config.training),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=config.training.steps_per_execution,
    )
    return model


def recurrent_pooling(
    features: keras.KerasTensor, mask: keras.KerasTensor, model: ModelConfig
) -> keras.KerasTensor:
    """The shared recurrent encoder over the frame features, then the shared pooling."""
    sequences = RecurrentEncoder(
        model.units,
        num_layers=model.num_layers,
        cell=model.cell,
        bidirectional=model.bidirectional,
        dropout=model.encoder_dropout,
        name="encoder",
    )(features, mask=mask)
    return SequencePooling(model.pooling, name="pooling")(sequences, mask=mask)


def conv_lstm_state(
    maps: keras.KerasTensor, mask: keras.KerasTensor, model: ModelConfig
) -> keras.KerasTensor:
    """A ConvLSTM2D over per-frame maps `(batch, frames, h, w, channels)`, its last state
    flattened."""
    state = keras.layers.ConvLSTM2D(model.conv_lstm_filters, 3, padding="same", name="conv_lstm")(
        maps, mask=mask
    )
    return keras.layers.Flatten(name="flatten")(state)


def backbone_head(
    grids: keras.KerasTensor, mask: keras.KerasTensor, model: ModelConfig, encoder: keras.Model
) -> keras.KerasTensor:
    """Pooled clip features from the backbone features of the frames."""
    if model.temporal == "conv-lstm":
        image_encoder = encoder.get_layer("frame_backbone").layer
        return conv_lstm_state(backbone_maps(grids, image_encoder), mask, model)
    return recurrent_pooling(backbone_frame_features(grids, model), mask, model)


@keras.saving.register_keras_serializable(package="rnn_suite")
class CachedFeatureClassifier(keras.Model):
    """A clip classifier trained on cached frame features that keeps its frozen frame encoder.

    `{"features": (batch, frames, cells, features), "frame_mask"}` -> the `head`'s class
    probabilities (training and evaluation on the feature cache); `{"frames": uint8 (batch,
    frames, height, width, channels), "frame_mask"}` -> the same `head` on the
    `frame_encoder`'s features of the frames (the export). Masking: `frame_mask` is True on
    real frames.

    Args:
        frame_encoder: frames -> features (`frame_encoder`), frozen.
        head: `{"features", "frame_mask"}` -> probabilities.
        **kwargs: standard `keras.Model` arguments (`name`, ...).
    """

    def __init__(self, frame_encoder, head, **kwargs):
        super().__init__(**kwargs)
        self.frame_encoder = frame_encoder
        self.head = head

    def build(self, input_shape=None):
        self.built = True

    def call(self, inputs, training=None):
        if "features" in inputs:
            features = inputs["features"]
        else:
            features = self.frame_encoder(inputs["frames"], training=False)
        return self.head(
            {"features": features, "frame_mask": inputs["frame_mask"]}, training=training
        )

    def get_config(self):
        return {
            "name": self.name,
            "frame_encoder": keras.saving.serialize_keras_object(self.frame_encoder),
            "head": keras.saving.serialize_keras_object(self.head),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("frame_encoder", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def build_backbone_model(config: ActivityConfig, assets: ClipAssets) -> keras.Model:
    """The compiled classifier over a keras.applications backbone: on the frames, or (frozen
    and cached) a `CachedFeatureClassifier` trained on their features."""
    model = config.model
    encoder = frame_encoder(config, assets)
    if caches_features(config, assets.kind):
        inputs = feature_inputs(encoder)
        pooled = backbone_head(inputs["features"], inputs["frame_mask"], model, encoder)
        head = classify(inputs, pooled, config, assets, "activity_head")
        classifier = CachedFeatureClassifier(encoder, head, name="activity_classifier")
        return compiled(classifier, config)
    inputs = clip_inputs(assets)
    grids = encoder(inputs["frames"])
    pooled = backbone_head(grids, inputs["frame_mask"], model, encoder)
    classifier = classify(inputs, pooled, config, assets, "activity_classifier")
    if model.backbone_training == "frozen_then_fine_tune":
        build_optimizer_with_image_encoders(classifier)
    return classifier


def build_model(config: ActivityConfig, assets: ClipAssets) -> keras.Model:
    """The compiled classifier; outputs class probabilities (batch, classes) in float32."""
    model = config.model
    check_backbone(model)
    if uses_backbone(model, assets.kind):
        return build_backbone_model(config, assets)
    inputs = clip_inputs(assets)
    mask = inputs["frame_mask"]
    if model.temporal == "conv-lstm" and assets.kind == "video":
        maps = frame_features(inputs, model, assets, flatten=False)
        pooled = conv_lstm_state(maps, mask, model)
    else:
        pooled = recurrent_pooling(frame_features(inputs, model, assets), mask, model)
    return classify(inputs, pooled, config, assets, "activity_classifier")


def build_baseline(config: ActivityConfig, assets: ClipAssets) -> keras.Model:
    """The frame-averaging baseline: the same frame encoder, its frame features averaged over
    the real frames, no recurrence (sensor clips: a dense ReLU layer per step, averaged). With
    cached backbone features it reads them, as the model does."""
    model = config.model
    if uses_backbone(model, assets.kind):
        encoder = frame_encoder(config, assets)
        if caches_features(config, assets.kind):
            inputs = feature_inputs(encoder)
            grids = inputs["features"]
        else:
            inputs = clip_inputs(assets)
            grids = encoder(inputs["frames"])
        features = backbone_frame_features(grids, model)
    else:
        inputs = clip_inputs(assets)
        features = frame_features(inputs, model, assets)
    if assets.kind == "sensor":
        features = keras.layers.Dense(
            model.frame_features, activation="relu", name="step_features"
        )(features)
    pooled = SequencePooling("mean", name="frame_average")(features, mask=inputs["frame_mask"])
    return classify(inputs, pooled, config, assets, "frame_averaging_baseline")
