"""The activity export, and how `predict` reads clips and prints its answers.

Video exports:
    serving_default  `frames` uint8 [batch, time, height, width, 3] (RGB, any size and count)
                     and `frame_mask` bool [batch, time] (True on real frames)
    gif              `gif_bytes` tf.string [batch]: animated GIFs, decoded in the graph
Sensor exports:
    serving_default  `series` float32 [batch, time, channels] and `frame_mask` bool [batch, time]
Recurrent encoders over the small CNN's frame features, and unidirectional sensor models:
    stream           the new `frames` (or `series` steps) and their `frame_mask`, as above,
                     and `state` float32 [batch, *stream_state_shape(...)], zeros to start a
                     clip; every frame sent is used (no sampling). A unidirectional encoder
                     pooled by last/mean/max carries its own recurrent state (the answer is
                     for the clip so far); any other (bidirectional, attention pooling)
                     carries the frame features of the last `frames` frames and reruns the
                     encoder on them (the answer is for those frames), see `stream_mode`
Outputs: `label` tf.string [batch], `probabilities` float32 [batch, classes], and the best
classes `top_labels` tf.string / `top_probabilities` float32 [batch, min(3, classes)]; `stream`
also returns the new `state`, to send with the next frames.

In the graph, as training read its clips: the real frames are taken in order, `frames` of
them sampled uniformly (the middle frame of each of `frames` equal segments; a shorter clip
keeps all of its frames and is masked), resized (bilinear, antialiased) to the training size
when they differ and, for a model trained on grayscale clips, converted from RGB to gray.
A clip with no real frame (zero frames, or an all-false mask), a GIF that is not a GIF, a
mask whose shape is not the frames' [batch, time], a sensor series with another channel
count or NaN, or a `state` of another shape or with NaN stops the request with an
InvalidArgument error that says so; an empty batch gives empty outputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from apps.activity import data
from apps.activity.config import ActivityConfig, ModelConfig
from apps.activity.data import ClipAssets
from apps.activity.model import SMALL_CNN
from apps.core.app import Batching, Endpoints, Request, Stream
from apps.core.errors import UserError
from apps.core.output import write_json_lines
from pipelines.errors import check_text_file
from pipelines.sources.clips import pad_clips
from pipelines.sources.sensor_clips import SENSOR_SUFFIXES, read_sensor_clip, read_sensor_clips
from pipelines.video import decode_video, encode_gif, write_mp4

# TF Serving's batching for these signatures, from benchmarks/serving_speed.py
# (benchmarks/RESULTS-serving.md).
BATCHING = Batching(max_batch_size=8, allowed_batch_sizes=(1, 8), batch_timeout_micros=6100)

if TYPE_CHECKING:
    from apps.core.app import App

TOP_CLASSES = 3
STREAM_POOLING = ("last", "mean", "max")
NO_FRAMES = (
    "every clip needs at least one real frame: a clip has zero frames or an all-false frame_mask"
)
NOT_A_GIF = "gif_bytes: not a GIF (the bytes do not start with GIF87a or GIF89a)"


def sample_positions(lengths: tf.Tensor, count: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The frame positions each clip keeps, as `pipelines.video.uniform_frame_indices` picks
    them: (positions (batch, count) int64, valid (batch, count) bool); invalid ones are 0."""
    positions = tf.range(count, dtype=tf.int64)
    lengths = tf.cast(lengths, tf.int64)[:, None]  # (batch, 1)
    middles = (tf.cast(positions, tf.float64) + 0.5) * tf.cast(lengths, tf.float64) / count
    chosen = tf.where(lengths > count, tf.cast(middles, tf.int64), positions)  # (batch, count)
    valid = positions < tf.minimum(lengths, count)
    return tf.where(valid, chosen, tf.zeros_like(chosen)), valid


def real_frames_first(mask: tf.Tensor) -> tf.Tensor:
    """(batch, time) positions that put each clip's real frames first, in their order."""
    return tf.argsort(tf.cast(tf.logical_not(mask), tf.int32), axis=1, stable=True)


def check_frames(frames: tf.Tensor, frame_mask: tf.Tensor) -> tf.Tensor:
    """The clips' real frame counts (batch,), after checking the mask's shape and that every
    clip has a real frame (InvalidArgument otherwise)."""
    shape_check = tf.debugging.assert_equal(
        tf.shape(frame_mask),
        tf.shape(frames)[:2],
        message="frame_mask must have the [batch, time] shape of frames",
    )
    lengths = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)
    with tf.control_dependencies([shape_check]):
        length_check = tf.debugging.assert_positive(lengths, message=NO_FRAMES)
    with tf.control_dependencies([length_check]):
        return tf.identity(lengths)


def convert_frames(clips: tf.Tensor, assets: ClipAssets) -> tf.Tensor:
    """RGB uint8 clips (batch, time, any height, any width, 3) -> uint8 (batch, time, height,
    width, channels) at the training size and channels."""
    batch, time = tf.shape(clips)[0], clips.shape[1] or tf.shape(clips)[1]
    # (batch * time, height, width, 3)
    images = tf.reshape(clips, tf.concat([[-1], tf.shape(clips)[2:]], axis=0))
    size = tf.constant([assets.height, assets.width])
    images = tf.cond(
        tf.reduce_all(tf.equal(tf.shape(images)[1:3], size)),
        lambda: tf.cast(images, tf.float32),
        lambda: tf.image.resize(images, size, antialias=True),
    )
    if assets.channels == 1:
        images = tf.image.rgb_to_grayscale(images)
    images = tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)
    shape = [batch, time, assets.height, assets.width, assets.channels]
    return tf.reshape(images, shape)  # (batch, time, height, width, channels)


def prepare_frames(
    frames: tf.Tensor, frame_mask: tf.Tensor, assets: ClipAssets
) -> dict[str, tf.Tensor]:
    """Raw RGB uint8 frames and their mask -> the model's `frames` and `frame_mask`."""
    lengths = check_frames(frames, frame_mask)
    positions, valid = sample_positions(lengths, assets.frames)
    order = real_frames_first(frame_mask)
    clips = tf.gather(frames, tf.gather(order, positions, batch_dims=1), batch_dims=1)
    images = convert_frames(clips, assets)
    images = tf.where(valid[:, :, None, None, None], images, tf.zeros_like(images))
    return {"frames": images, "frame_mask": valid}


def prepare_series(series: tf.Tensor, frame_mask: tf.Tensor, assets: ClipAssets):
    checks = [
        tf.debugging.assert_equal(
            tf.shape(series)[2],
            assets.channels,
            message=f"series must have {assets.channels} channels (as the training clips)",
        ),
        tf.debugging.assert_equal(
            tf.shape(frame_mask),
            tf.shape(series)[:2],
            message="frame_mask must have the [batch, time] shape of series",
        ),
        tf.debugging.assert_positive(
            tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1),
            message="every series needs at least one real step: a series has zero steps or "
            "an all-false frame_mask",
        ),
    ]
    with tf.control_dependencies(checks):
        series = tf.debugging.assert_all_finite(series, "series holds NaN or infinity")
        order = real_frames_first(frame_mask)
    series = tf.gather(series, order, batch_dims=1)
    mask = tf.gather(frame_mask, order, batch_dims=1)
    series = tf.where(mask[:, :, None], series, tf.zeros_like(series))
    return {"series": series, "frame_mask": mask}


def stream_mode(model: ModelConfig, kind: str) -> str | None:
    """How the export's `stream` signature carries a clip from one request to the next:
    "recurrent" (the encoder's own state: a unidirectional encoder pooled by last, mean or
    max, over the small CNN's frame features or sensor steps), "window" (the small CNN's
    features of the last `frames` frames, the encoder and pooling rerun on them: any other
    recurrent video model, bidirectional or attention-pooled), or None (no `stream`: ConvLSTM,
    keras.applications backbones, other sensor models)."""
    recurrent = kind == "sensor" or (model.backbone == SMALL_CNN and model.temporal == "recurrent")
    if recurrent and not model.bidirectional and set(model.pooling) <= set(STREAM_POOLING):
        return "recurrent"
    if recurrent and kind == "video":
        return "window"
    return None


def stream_state_shape(model: ModelConfig, kind: str, frames: int) -> list[int]:
    """The `stream` signature's `state` shape after the batch, for clips of `frames` frames:
    `[stream_state_width(model)]` for a "recurrent" stream, `[frames, frame_features + 1]` for
    a "window" one (each held frame's features, then 1.0 where a slot holds a frame)."""
    if stream_mode(model, kind) == "window":
        return [frames, model.frame_features + 1]
    return [stream_state_width(model)]


def stream_state_width(model: ModelConfig) -> int:
    """The `state` width of the `stream` signature: every recurrent layer's states (GRU `h`,
    LSTM `h` and `c`), one running value per pooling mode (the last output, the running sum
    for mean, the running max), then the count of frames seen."""
    layer_states = model.units * (2 if model.cell == "lstm" else 1)
    return model.num_layers * layer_states + len(model.pooling) * model.units + 1


def pooled_step(mode: str, value: tf.Tensor, outputs: tf.Tensor, first: tf.Tensor) -> tf.Tensor:
    """A running pooled `value` with one more step's encoder `outputs` (`first`: none before)."""
    if mode == "mean":
        return value + outputs
    if mode == "max":
        return tf.where(first, outputs, tf.maximum(value, outputs))
    return outputs


def stream_update(
    model: keras.Model, features: tf.Tensor, frame_mask: tf.Tensor, state: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """The model's encoder and pooling carried over new frame features (batch, time,
    features) from `state` (see `stream_state_width`): (pooled (batch, pooled features), the
    new state). Masked frames change nothing."""
    encoder, pooling = model.get_layer("encoder"), model.get_layer("pooling")
    cells = [layer.cell for layer in encoder.recurrent_layers]
    layer_states = encoder.num_layers * encoder.num_states
    sizes = [encoder.units] * (layer_states + len(pooling.modes)) + [1]
    parts = tf.split(tf.cast(state, features.dtype), sizes, axis=1)
    carry = (parts[:layer_states], parts[layer_states:-1], parts[-1])

    def step(carry, frame):
        states, pooled, count = carry
        inputs, valid = frame
        new_states = []
        for index, cell in enumerate(cells):
            cell_states = states[index * encoder.num_states : (index + 1) * encoder.num_states]
            outputs, next_states = cell(inputs, cell_states, training=False)
            if encoder.residual_flags[index]:
                outputs = outputs + inputs
            inputs = outputs
            new_states += [
                tf.where(valid, new, old)
                for new, old in zip(tf.nest.flatten(next_states), cell_states, strict=True)
            ]
        first = tf.equal(count, 0.0)
        new_pooled = [
            tf.where(valid, pooled_step(mode, value, inputs, first), value)
            for mode, value in zip(pooling.modes, pooled, strict=True)
        ]
        return new_states, new_pooled, count + tf.cast(valid, count.dtype)

    frames = (
        tf.transpose(features, [1, 0, 2]),  # (time, batch, features)
        tf.transpose(frame_mask)[:, :, None],  # (time, batch, 1)
    )
    states, pooled, count = tf.foldl(step, frames, initializer=carry)
    vectors = [
        value / tf.maximum(count, 1.0) if mode == "mean" else value
        for mode, value in zip(pooling.modes, pooled, strict=True)
    ]
    new_state = tf.concat([*states, *pooled, count], axis=1)
    return tf.concat(vectors, axis=1), tf.cast(new_state, tf.float32)


def window_update(features: tf.Tensor, frame_mask: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """The `window` state (see `stream_state_shape`) moved on by new frame features (batch,
    time, features): each real frame drops the oldest slot and takes the newest."""

    def step(window, frame):
        features, valid = frame  # (batch, features), (batch, 1)
        held = tf.concat([features, tf.ones_like(features[:, :1])], axis=1)[:, None]
        return tf.where(valid[:, :, None], tf.concat([window[:, 1:], held], axis=1), window)

    frames = (
        tf.transpose(tf.cast(features, tf.float32), [1, 0, 2]),  # (time, batch, features)
        tf.transpose(frame_mask)[:, :, None],  # (time, batch, 1)
    )
    return tf.foldl(step, frames, initializer=window)


def window_pooled(model: keras.Model, window: tf.Tensor) -> tf.Tensor:
    """The model's encoder and pooling over the frames a `window` state holds, real frames
    first as `serving_default` gives them."""
    held = window[:, :, -1] > 0.5  # (batch, frames)
    order = real_frames_first(held)
    features = tf.gather(window[:, :, :-1], order, batch_dims=1)
    mask = tf.gather(held, order, batch_dims=1)
    sequences = model.get_layer("encoder")(features, mask=mask, training=False)
    return model.get_layer("pooling")(sequences, mask=mask)


def check_state(state: tf.Tensor, inputs: tf.Tensor, shape: list[int]) -> list[tf.Tensor]:
    return [
        tf.debugging.assert_equal(
            tf.shape(state)[0], tf.shape(inputs)[0], message="state must have one row per clip"
        ),
        tf.debugging.assert_equal(
            tf.shape(state)[1:],
            shape,
            message=f"state must have shape [batch, {', '.join(map(str, shape))}]",
        ),
        tf.debugging.assert_all_finite(state, "state holds NaN or infinity"),
    ]


def endpoints(model: keras.Model, config: ActivityConfig, assets: ClipAssets) -> Endpoints:
    label_names = tf.constant(assets.label_names)
    top = min(TOP_CLASSES, len(assets.label_names))

    def answer(probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        top_probabilities, top_ids = tf.math.top_k(probabilities, k=top)
        return {
            "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1)),
            "probabilities": probabilities,
            "top_labels": tf.gather(label_names, top_ids),
            "top_probabilities": top_probabilities,
        }

    def classify(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return answer(model(inputs, training=False))

    mode = stream_mode(config.model, assets.kind)
    state_shape = stream_state_shape(config.model, assets.kind, assets.frames)

    def stream(features: tf.Tensor, frame_mask: tf.Tensor, state: tf.Tensor):
        if mode == "window":
            new_state = window_update(features, frame_mask, state)
            pooled = window_pooled(model, new_state)
        else:
            pooled, new_state = stream_update(model, features, frame_mask, state)
        logits = model.get_layer("classifier")(pooled)
        return {**answer(model.get_layer("probabilities")(logits)), "state": new_state}

    mask_spec = tf.TensorSpec([None, None], tf.bool, name="frame_mask")
    state_spec = tf.TensorSpec([None, *state_shape], tf.float32, name="state")
    if assets.kind == "sensor":
        series_spec = tf.TensorSpec([None, None, assets.channels], tf.float32, name="series")

        @tf.function(input_signature=[series_spec, mask_spec])
        def serve_series(series, frame_mask):
            return classify(prepare_series(series, frame_mask, assets))

        @tf.function(input_signature=[series_spec, mask_spec, state_spec])
        def stream_series(series, frame_mask, state):
            with tf.control_dependencies(check_state(state, series, state_shape)):
                inputs = prepare_series(series, frame_mask, assets)
                state = tf.identity(state)  # read only once checked
            features = model.get_layer("channel_normalization")(inputs["series"])
            return stream(features, inputs["frame_mask"], state)

        functions = {"serving_default": serve_series}
        stream_function = stream_series
    else:
        frames_spec = tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames")

        @tf.function(input_signature=[frames_spec, mask_spec])
        def serve_frames(frames, frame_mask):
            return classify(prepare_frames(frames, frame_mask, assets))

        @tf.function(input_signature=[frames_spec, mask_spec, state_spec])
        def stream_frames(frames, frame_mask, state):
            checks = [check_frames(frames, frame_mask), *check_state(state, frames, state_shape)]
            with tf.control_dependencies(checks):
                images = convert_frames(frames, assets)
                state = tf.identity(state)  # read only once checked
            scaled = model.get_layer("scale")(images)
            features = model.get_layer("frame_cnn")(scaled, training=False)
            return stream(features, frame_mask, state)

        def decode_gif(gif_bytes):
            magic = tf.strings.substr(gif_bytes, 0, 6)
            is_gif = tf.logical_or(tf.equal(magic, "GIF87a"), tf.equal(magic, "GIF89a"))
            with tf.control_dependencies([tf.debugging.Assert(is_gif, [NOT_A_GIF])]):
                video = tf.io.decode_gif(gif_bytes)  # (time, height, width, 3)
            mask = tf.ones(tf.shape(video)[:1], tf.bool)
            clip = prepare_frames(video[None], mask[None], assets)
            return clip["frames"][0], clip["frame_mask"][0]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="gif_bytes")])
        def serve_gif(gif_bytes):
            frames, frame_mask = tf.map_fn(
                decode_gif,
                gif_bytes,
                fn_output_signature=(
                    tf.TensorSpec(
                        (assets.frames, assets.height, assets.width, assets.channels), tf.uint8
                    ),
                    tf.TensorSpec((assets.frames,), tf.bool),
                ),
            )
            return classify({"frames": frames, "frame_mask": frame_mask})

        functions = {"serving_default": serve_frames, "gif": serve_gif}
        stream_function = stream_frames
    if mode is not None:
        functions["stream"] = stream_function
    return Endpoints(functions=functions)


def example_request(config: ActivityConfig) -> dict[str, np.ndarray]:
    """Three real clips (the training clips of sensor data; otherwise moving-digits test clips
    of the configured size, also as GIF bytes for the `gif` signature), and the `stream`
    signature's start state (zeros) for them."""
    kind = data.source_kind(config.data)
    state = {}
    if stream_mode(config.model, kind) is not None:
        shape = stream_state_shape(config.model, kind, config.data.frames)
        state = {"state": np.zeros((3, *shape), np.float32)}
    if kind == "sensor":
        clips = read_sensor_clips(
            config.data.source,
            channel_columns=config.data.channel_columns or None,
            clip_column=config.data.clip_column,
            label_column=config.data.label_column,
        )
        return {"series": clips.frames[:3], "frame_mask": data.frame_mask(clips)[:3], **state}
    from pipelines.sources.moving_digits import load_moving_digits

    clips = load_moving_digits(3, "test", seed=0, settings=data.clip_settings(config.data))
    frames = np.repeat(clips.frames, 3, axis=-1)  # grayscale -> RGB
    return {
        "frames": frames,
        "frame_mask": data.frame_mask(clips),
        "gif_bytes": np.array(
            [encode_gif(clip[:length]) for clip, length in zip(frames, clips.lengths, strict=True)],
            dtype=object,
        ),
        **state,
    }


def read_inputs(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
) -> Request:
    """Clip files from the command line, then from `input_file` (one path per line).

    Videos and GIFs are decoded whole (the graph samples their frames), every one at the size
    of the first; sensor clips are .csv (header row) or .npz files.
    """
    paths = list(inputs)
    if input_file is not None:
        check_text_file(input_file, "a text file of clip paths (give clips as arguments)")
        lines = input_file.read_text(encoding="utf-8", errors="replace").splitlines()
        paths += [line.strip() for line in lines if line.strip()]
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"{path}: no such file")
    if "series" in input_specs:
        channels = input_specs["series"].shape[-1]
        clips = [read_sensor_clip(path, channels) for path in paths]
        series, lengths = pad_clips(clips, np.float32)
        mask = np.arange(series.shape[1])[None, :] < lengths[:, None]
        return Request({"series": series, "frame_mask": mask}, details={"paths": paths})
    sensor_files = [path for path in paths if Path(path).suffix.lower() in SENSOR_SUFFIXES]
    if sensor_files:
        raise UserError(f"{sensor_files[0]}: this model reads videos, not sensor clips")
    first = decode_video(paths[0])
    clips = [first] + [decode_video(path, *first.shape[1:3]) for path in paths[1:]]
    frames, lengths = pad_clips(clips, np.uint8)
    mask = np.arange(frames.shape[1])[None, :] < lengths[:, None]
    return Request({"frames": frames, "frame_mask": mask}, details={"paths": paths})


def read_stream(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
) -> list[Stream]:
    """Clips as `read_inputs` reads them, each its own stream from zeros, one frame (or sensor
    step) a request; each answer says how many of the clip's `frames` it has seen."""
    clips = read_inputs(inputs, input_file, input_specs)
    name = "series" if "series" in clips.inputs else "frames"
    values, mask = clips.inputs[name], clips.inputs["frame_mask"]
    streams = []
    for index, path in enumerate(clips.details["paths"]):
        steps = [
            Request(
                {
                    name: values[index : index + 1, position : position + 1],
                    "frame_mask": np.ones((1, 1), bool),
                },
                details={"paths": [path], "frames": position + 1},
            )
            for position in range(int(mask[index].sum()))
        ]
        state = np.zeros((1, *input_specs["state"].shape[1:]), np.float32)
        streams.append(Stream(state=state, steps=steps))
    return streams


def format_outputs(request: Request, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per clip: its path, the label and the top classes; a stream's rows also say
    how many of the clip's `frames` the answer has seen."""
    seen = {"frames": request.details["frames"]} if "frames" in request.details else {}
    return [
        {
            "input": path,
            **seen,
            "label": label,
            "top": [
                {"label": name, "probability": float(probability)}
                for name, probability in zip(names, probabilities, strict=True)
            ],
        }
        for path, label, names, probabilities in zip(
            request.details["paths"],
            outputs["label"],
            outputs["top_labels"],
            outputs["top_probabilities"],
            strict=True,
        )
    ]


write_predictions = write_json_lines


def run_clips(app: App, args: argparse.Namespace) -> None:
    """`clips`: writes `--count` moving-digits test clips as GIFs and as many as MP4 files,
    named by index and true action, and prints their paths."""
    from pipelines.sources.moving_digits import load_moving_digits

    settings = data.clip_settings(app.make_config(args.preset).data)
    clips = load_moving_digits(2 * args.count, "test", seed=args.seed, settings=settings)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    for index in range(len(clips)):
        rgb = np.repeat(clips.frames[index, : clips.lengths[index]], 3, axis=-1)
        name = clips.label_names[clips.labels[index]].replace(" ", "-")
        if index < args.count:
            path = output / f"{index:02d}-{name}.gif"
            path.write_bytes(encode_gif(rgb))
        else:
            path = output / f"{index:02d}-{name}.mp4"
            write_mp4(path, rgb, frames_per_second=10)
        print(path)
