"""The activity classifier: a CNN on every frame -> the shared recurrent encoder over the
frames (masked) -> the shared pooling -> classes; and the frame-averaging baseline.

Video clips enter as uint8 `frames` (batch, frames, height, width, channels) with a bool
`frame_mask` (batch, frames), True on real frames; the model scales them to [0, 1] itself.
Sensor clips enter as float32 `series` (batch, time, channels) with the same mask, normalized
per channel in the model by the training split's mean and variance, and go straight to the
recurrent encoder. The export (serving.py) samples, resizes and converts raw frames before
this model.
"""

from __future__ import annotations

import keras

from apps.activity.config import ActivityConfig, ModelConfig
from apps.activity.data import ClipAssets
from apps.core import training
from layers.pooling import SequencePooling
from layers.recurrent_encoder import RecurrentEncoder


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


def frame_features(
    inputs: dict[str, keras.KerasTensor], model: ModelConfig, assets: ClipAssets, flatten=True
) -> keras.KerasTensor:
    """Per-frame features (batch, frames, features), or per-frame maps without `flatten`."""
    if assets.kind == "sensor":
        return keras.layers.Normalization(
            mean=assets.mean, variance=assets.variance, name="channel_normalization"
        )(inputs["series"])
    scaled = keras.layers.Rescaling(1 / 255, name="scale")(inputs["frames"])
    features = keras.layers.TimeDistributed(frame_cnn(model, assets, flatten), name="frame_cnn")(
        scaled
    )
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
    model = keras.Model(inputs, probabilities, name=name)
    model.compile(
        optimizer=training.optimizer(config.training),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=config.training.steps_per_execution,
    )
    return model


def build_model(config: ActivityConfig, assets: ClipAssets) -> keras.Model:
    """The compiled classifier; outputs class probabilities (batch, classes) in float32."""
    model = config.model
    inputs = clip_inputs(assets)
    mask = inputs["frame_mask"]
    if model.temporal == "conv-lstm" and assets.kind == "video":
        maps = frame_features(inputs, model, assets, flatten=False)
        state = keras.layers.ConvLSTM2D(
            model.conv_lstm_filters, 3, padding="same", name="conv_lstm"
        )(maps, mask=mask)
        pooled = keras.layers.Flatten(name="flatten")(state)
    else:
        features = frame_features(inputs, model, assets)
        sequences = RecurrentEncoder(
            model.units,
            num_layers=model.num_layers,
            cell=model.cell,
            bidirectional=model.bidirectional,
            dropout=model.encoder_dropout,
            name="encoder",
        )(features, mask=mask)
        pooled = SequencePooling(model.pooling, name="pooling")(sequences, mask=mask)
    return classify(inputs, pooled, config, assets, "activity_classifier")


def build_baseline(config: ActivityConfig, assets: ClipAssets) -> keras.Model:
    """The frame-averaging baseline: the same CNN, its frame features averaged over the real
    frames, no recurrence (sensor clips: a dense ReLU layer per step, averaged)."""
    model = config.model
    inputs = clip_inputs(assets)
    features = frame_features(inputs, model, assets)
    if assets.kind == "sensor":
        features = keras.layers.Dense(
            model.frame_features, activation="relu", name="step_features"
        )(features)
    pooled = SequencePooling("mean", name="frame_average")(features, mask=inputs["frame_mask"])
    return classify(inputs, pooled, config, assets, "frame_averaging_baseline")
