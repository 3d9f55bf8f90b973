"""The activity export, and how `predict` reads clips and prints its answers.

Video exports:
    serving_default  `frames` uint8 [batch, time, height, width, 3] (RGB, any size and count)
                     and `frame_mask` bool [batch, time] (True on real frames)
    gif              `gif_bytes` tf.string [batch]: animated GIFs, decoded in the graph
Sensor exports:
    serving_default  `series` float32 [batch, time, channels] and `frame_mask` bool [batch, time]
Outputs: `label` tf.string [batch], `probabilities` float32 [batch, classes], and the best
classes `top_labels` tf.string / `top_probabilities` float32 [batch, min(3, classes)].

In the graph, as training read its clips: the real frames are taken in order, `frames` of
them sampled uniformly (the middle frame of each of `frames` equal segments; a shorter clip
keeps all of its frames and is masked), resized (bilinear, antialiased) to the training size
when they differ and, for a model trained on grayscale clips, converted from RGB to gray.
A clip with no real frame (zero frames, or an all-false mask), a GIF that is not a GIF, a
mask whose shape is not the frames' [batch, time], or a sensor series with another channel
count or NaN stops the request with an InvalidArgument error that says so; an empty batch
gives empty outputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from apps.activity import data
from apps.activity.config import ActivityConfig
from apps.activity.data import ClipAssets
from apps.core.app import Batching, Endpoints, Request
from apps.core.errors import UserError
from apps.core.output import write_json_lines
from pipelines.errors import check_text_file
from pipelines.sources.clips import pad_clips
from pipelines.sources.sensor_clips import SENSOR_SUFFIXES, read_sensor_clip, read_sensor_clips
from pipelines.video import decode_video, encode_gif, write_mp4

# TF Serving's batching for these signatures, from benchmarks/serving_speed.py
# (benchmarks/RESULTS-serving.md).
BATCHING = Batching(max_batch_size=64, allowed_batch_sizes=(1, 8, 64), batch_timeout_micros=2000)

if TYPE_CHECKING:
    from apps.core.app import App

TOP_CLASSES = 3
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


def prepare_frames(
    frames: tf.Tensor, frame_mask: tf.Tensor, assets: ClipAssets
) -> dict[str, tf.Tensor]:
    """Raw RGB uint8 frames and their mask -> the model's `frames` and `frame_mask`."""
    shape_check = tf.debugging.assert_equal(
        tf.shape(frame_mask),
        tf.shape(frames)[:2],
        message="frame_mask must have the [batch, time] shape of frames",
    )
    lengths = tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1)
    with tf.control_dependencies([shape_check]):
        length_check = tf.debugging.assert_positive(lengths, message=NO_FRAMES)
    with tf.control_dependencies([length_check]):
        positions, valid = sample_positions(lengths, assets.frames)
        order = real_frames_first(frame_mask)
        clips = tf.gather(frames, tf.gather(order, positions, batch_dims=1), batch_dims=1)
    batch = tf.shape(clips)[0]
    # (batch * frames, height, width, 3)
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
    shape = [batch, assets.frames, assets.height, assets.width, assets.channels]
    images = tf.reshape(images, shape)  # (batch, frames, height, width, channels)
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


def endpoints(model: keras.Model, config: ActivityConfig, assets: ClipAssets) -> Endpoints:
    label_names = tf.constant(assets.label_names)
    top = min(TOP_CLASSES, len(assets.label_names))

    def answer(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        probabilities = model(inputs, training=False)
        top_probabilities, top_ids = tf.math.top_k(probabilities, k=top)
        return {
            "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1)),
            "probabilities": probabilities,
            "top_labels": tf.gather(label_names, top_ids),
            "top_probabilities": top_probabilities,
        }

    mask_spec = tf.TensorSpec([None, None], tf.bool, name="frame_mask")
    if assets.kind == "sensor":
        series_spec = tf.TensorSpec([None, None, assets.channels], tf.float32, name="series")

        @tf.function(input_signature=[series_spec, mask_spec])
        def serve_series(series, frame_mask):
            return answer(prepare_series(series, frame_mask, assets))

        return Endpoints(functions={"serving_default": serve_series})

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames"),
            mask_spec,
        ]
    )
    def serve_frames(frames, frame_mask):
        return answer(prepare_frames(frames, frame_mask, assets))

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
        return answer({"frames": frames, "frame_mask": frame_mask})

    return Endpoints(functions={"serving_default": serve_frames, "gif": serve_gif})


def example_request(config: ActivityConfig) -> dict[str, np.ndarray]:
    """Three real clips (the training clips of sensor data; otherwise moving-digits test clips
    of the configured size, also as GIF bytes for the `gif` signature)."""
    if data.source_kind(config.data) == "sensor":
        clips = read_sensor_clips(
            config.data.source,
            channel_columns=config.data.channel_columns or None,
            clip_column=config.data.clip_column,
            label_column=config.data.label_column,
        )
        return {"series": clips.frames[:3], "frame_mask": data.frame_mask(clips)[:3]}
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


def format_outputs(request: Request, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {
            "input": path,
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
