"""Activity speed: video decoding against training, the app's training step against a plain
Keras reference, and the export's serving latency in a fresh process.

At the preset's clip size (default `base`: 16 frames of 64 x 64 grayscale, batch 32), on
moving-digits training clips, in one process:

- training throughput (clips/s, the mean over `--steps` training steps after `--warmup`),
  side by side:
  - `app`: the app's model (`build_model`) fed by the app's pipeline (`data.clip_dataset`:
    uint8 clips gathered by index in tf.data, prefetched), its frame CNN applied with the
    frames folded into the batch (`layers.frame_distributed.FrameDistributed`);
  - `app, unidirectional GRU` (or `bidirectional`): the same with the preset's encoder
    direction flipped (`base` is bidirectional);
  - `app, TimeDistributed`: the app's model with `keras.layers.TimeDistributed` instead;
  - `reference`: keras.io `video_classification` style: the same per-frame CNN (same layers
    and sizes) in `keras.layers.TimeDistributed`, two stacked GRU layers of the app's width
    (masked), dropout and softmax, trained with `model.fit` on float32 NumPy frames in [0, 1];
    no caching, no XLA; timed first and last, its mean compared.
- with a frozen backbone (`--backbone`, default MobileNetV3Small, random weights: the same
  arithmetic as ImageNet's, no download), side by side in the same process:
  - `app, frozen backbone (feature cache)`: `model.backbone_training=frozen`, trained on the
    backbone features `data.encoded_features` computes once (the app's feature cache), whose
    pass is timed too;
  - `reference, frozen backbone`: keras.io `video_classification` itself: the frozen
    backbone (global average pooled) in `TimeDistributed` run on the NumPy frames at every
    step, two stacked GRU layers, dropout, softmax;
  and the ratio over the preset's `training.epochs` with the cache pass counted (the
  reference has none).
- decoding throughput (clips/s): `--videos` MP4 files the benchmark writes with PyAV (moving
  digits clips of `--video-frames` frames at `--video-scale` x the clip size, in class
  folders), read by `pipelines.video.read_video_folder` as the app's folder reader calls it
  (sampled to the clip's frames and size), decoding everything (no cache) in one thread and
  in one thread per CPU, then from the decoded-clip cache; against what the app's training
  step consumes.
- serving latency: the app's export (`apps.core.export.export`) loaded by a new interpreter
  that imports only tensorflow and tensorflow_text; `serving_default` on uint8 frames at
  batch 1 and 16, `--calls` calls each after a warm-up: p50 and p99 in milliseconds.

    python benchmarks/activity_speed.py --results benchmarks/RESULTS-activity.md
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
from report import replace_section

from apps.activity import data as data_lib
from apps.activity import model as model_lib
from apps.activity.app import APP
from apps.core import config as config_lib
from apps.core import training
from apps.core.export import export
from pipelines.sources.moving_digits import load_moving_digits
from pipelines.video import read_video_folder, write_mp4

SECTION_BEGIN = "<!-- activity_speed:begin -->"
SECTION_END = "<!-- activity_speed:end -->"
FROZEN_APP = "app, frozen backbone (feature cache)"
FROZEN_REFERENCE = "reference, frozen backbone"

TIMER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    path, calls = sys.argv[1], int(sys.argv[2])
    frames = np.load(sys.argv[3])
    signature = tf.saved_model.load(path).signatures["serving_default"]
    results = {}
    for batch in (1, 16):
        clips = tf.constant(frames[:batch])
        mask = tf.ones(clips.shape[:2], tf.bool)
        signature(frames=clips, frame_mask=mask)  # warm-up
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            signature(frames=clips, frame_mask=mask)
            seconds.append(time.perf_counter() - started)
        results[batch] = {
            "p50_ms": 1000 * float(np.percentile(seconds, 50)),
            "p99_ms": 1000 * float(np.percentile(seconds, 99)),
            "clips_per_second": batch / float(np.median(seconds)),
        }
    print(json.dumps(results))
    """
)


class StepTimes(keras.callbacks.Callback):
    """The time at the end of every training batch."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def clips_per_second(times: list[float], warmup: int, batch_size: int) -> float:
    steps = len(times) - warmup
    return steps * batch_size / (times[-1] - times[warmup - 1])


def timed_fit(model, data, warmup: int, batch_size: int, labels=None) -> float:
    """Clips/s of one epoch of `model.fit` after `warmup` steps: on a dataset, or on NumPy
    `data` with `labels` (the references' way, shuffled)."""
    timer = StepTimes()
    if labels is None:
        model.fit(data, epochs=1, callbacks=[timer], verbose=0)
    else:
        model.fit(
            data, labels, batch_size=batch_size, epochs=1, shuffle=True, callbacks=[timer],
            verbose=0,
        )  # fmt: skip
    return clips_per_second(timer.times, warmup, batch_size)


def reference_model(config, assets, frame_layer: keras.Layer | None = None) -> keras.Model:
    """keras.io `video_classification` style at the app's size: `frame_layer` (default the
    app's per-frame CNN) in TimeDistributed, two stacked masked GRU layers, dropout, softmax."""
    model = config.model
    frames = keras.Input((assets.frames, assets.height, assets.width, assets.channels))
    mask = keras.Input((assets.frames,), dtype="bool")
    frame_layer = frame_layer or model_lib.frame_cnn(model, assets)
    features = keras.layers.TimeDistributed(frame_layer)(frames)
    hidden = keras.layers.GRU(model.units, return_sequences=True)(features, mask=mask)
    hidden = keras.layers.GRU(model.units)(hidden, mask=mask)
    hidden = keras.layers.Dropout(model.dropout)(hidden)
    outputs = keras.layers.Dense(len(assets.label_names), activation="softmax")(hidden)
    reference = keras.Model([frames, mask], outputs)
    reference.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return reference


def app_model(config, assets, time_distributed: bool) -> keras.Model:
    if time_distributed:
        model_lib.FrameDistributed = keras.layers.TimeDistributed
    try:
        return training.build_model(APP, config, assets)
    finally:
        model_lib.FrameDistributed = FRAME_DISTRIBUTED


FRAME_DISTRIBUTED = model_lib.FrameDistributed


def other_direction(config):
    changed = copy.deepcopy(config)
    changed.model.bidirectional = not config.model.bidirectional
    return changed


def training_throughput(config, clips, assets, warmup: int, steps: int) -> tuple[dict, keras.Model]:
    """Clips/s of each variant; the reference runs first and last (its mean is the one
    compared), so that the machine's drift during the run shows."""
    batch_size = config.training.batch_size
    count = (warmup + steps) * batch_size
    subset = data_lib.take(clips, np.arange(count))
    dataset = data_lib.clip_dataset(subset, "video", batch_size, shuffle_seed=0)
    frames = subset.frames.astype(np.float32) / 255.0
    mask = data_lib.frame_mask(subset)
    runs, parameters = {}, {}
    app = None
    variants = (
        ("reference", None),
        ("app", lambda: app_model(config, assets, False)),
        (
            f"app, {'uni' if config.model.bidirectional else 'bi'}directional GRU",
            lambda: app_model(other_direction(config), assets, False),
        ),
        ("app, TimeDistributed", lambda: app_model(config, assets, True)),
        ("reference", None),
    )
    for name, build in variants:
        keras.utils.set_random_seed(0)
        if build is None:
            model = reference_model(config, assets)
            speed = timed_fit(model, [frames, mask], warmup, batch_size, subset.labels)
        else:
            model = build()
            speed = timed_fit(model, dataset, warmup, batch_size)
        runs.setdefault(name, []).append(speed)
        parameters[name] = model.count_params()
        print(f"{name}: {runs[name][-1]:.1f} clips/s", flush=True)
        if name == "app":
            app = model
    results = {name: float(np.mean(values)) for name, values in runs.items()}
    return {"clips_per_second": results, "runs": runs, "parameters": parameters}, app


def frozen_backbone_config(config, backbone: str):
    changed = copy.deepcopy(config)
    changed.model.backbone = backbone
    changed.model.backbone_training = "frozen"
    changed.model.backbone_weights = None
    return changed


def frozen_backbone_reference(config, assets) -> keras.Model:
    """keras.io `video_classification`: a frozen keras.applications backbone, global average
    pooled, on every frame at every step, two stacked masked GRU layers, dropout, softmax."""
    backbone = getattr(keras.applications, config.model.backbone)(
        include_top=False, weights=None, input_shape=(assets.height, assets.width, 3),
        pooling="avg",
    )  # fmt: skip
    backbone.trainable = False
    frame = keras.Input((assets.height, assets.width, assets.channels))
    rgb = keras.layers.Concatenate()([frame] * (3 // assets.channels))
    return reference_model(config, assets, keras.Model(frame, backbone(rgb)))


def frozen_backbone_throughput(config, clips, assets, warmup: int, steps: int) -> dict:
    """Clips/s of the app trained on its feature cache and of the keras.io reference running
    the frozen backbone every step (timed first and last), and the cache pass's clips/s."""
    batch_size = config.training.batch_size
    subset = data_lib.take(clips, np.arange((warmup + steps) * batch_size))
    frames = subset.frames.astype(np.float32)
    mask = data_lib.frame_mask(subset)
    runs, parameters = {}, {}
    for name in (FROZEN_REFERENCE, FROZEN_APP, FROZEN_APP, FROZEN_REFERENCE):
        keras.utils.set_random_seed(0)
        if name == FROZEN_REFERENCE:
            model = frozen_backbone_reference(config, assets)
            speed = timed_fit(model, [frames, mask], warmup, batch_size, subset.labels)
        else:
            model = training.build_model(APP, config, assets)
            for pass_name in ("feature cache pass, compiling", "feature cache pass"):
                started = time.perf_counter()
                features = data_lib.encoded_features(model.frame_encoder, subset)
                runs.setdefault(pass_name, []).append(len(subset) / (time.perf_counter() - started))
            dataset = data_lib.clip_dataset(subset, "video", batch_size, 0, features)
            speed = timed_fit(model, dataset, warmup, batch_size)
        runs.setdefault(name, []).append(speed)
        parameters[name] = model.count_params()
        print(f"{name}: {runs[name][-1]:.1f} clips/s", flush=True)
    results = {name: float(np.mean(values)) for name, values in runs.items()}
    return {
        "backbone": config.model.backbone,
        "clips": len(subset),
        "clips_per_second": results,
        "runs": runs,
        "parameters": parameters,
    }


def with_cache_pass(frozen: dict, epochs: int) -> float:
    """The app's speed-up over the reference for `epochs` epochs, its cache pass included."""
    speed = frozen["clips_per_second"]
    app_seconds = 1 / speed["feature cache pass"] + epochs / speed[FROZEN_APP]
    return (epochs / speed[FROZEN_REFERENCE]) / app_seconds


def write_videos(folder: Path, clips, count: int, frames: int, scale: int) -> None:
    """`count` MP4 files (mpeg4) of `frames` frames each, in one folder per class."""
    for index in range(count):
        clip = clips.frames[index % len(clips)]
        positions = np.linspace(0, len(clip) - 1, frames).round().astype(int)
        rgb = np.repeat(clip[positions], 3, axis=-1)  # (frames, height, width, 3)
        rgb = rgb.repeat(scale, axis=1).repeat(scale, axis=2)
        label = clips.label_names[clips.labels[index % len(clips)]].replace(" ", "_")
        path = folder / label / f"v_{label}_g{index:03d}_c01.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(path, rgb, frames_per_second=25)


def decoding_throughput(config, clips, arguments, scratch: Path) -> dict:
    folder, cache = scratch / "videos", scratch / "clip-cache"
    write_videos(folder, clips, arguments.videos, arguments.video_frames, arguments.video_scale)
    data = config.data

    def read(use_cache: bool, workers: int | None) -> float:
        started = time.perf_counter()
        read_clips = read_video_folder(
            folder, frames=data.frames, height=data.height, width=data.width,
            workers=workers, cache=use_cache, cache_folder=cache,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if len(read_clips) != arguments.videos or read_clips.frames.shape[1:4] != (
            data.frames,
            data.height,
            data.width,
        ):
            raise RuntimeError(f"read {read_clips.frames.shape}, expected {arguments.videos}")
        return arguments.videos / seconds

    one_thread = read(False, 1)
    decoded = read(False, data.workers or None)
    read(True, None)  # fills the cache
    cached = read(True, None)
    return {
        "decode_clips_per_second": decoded,
        "one_thread_clips_per_second": one_thread,
        "cached_clips_per_second": cached,
        "videos": arguments.videos,
        "video_frames": arguments.video_frames,
        "video_size": [data.height * arguments.video_scale, data.width * arguments.video_scale],
        "workers": data.workers or "one per CPU",
    }


def serving_latency(model, config, assets, clips, calls: int, scratch: Path) -> dict:
    path = export(APP, model, config, assets, scratch / "saved_models")
    frames_file = scratch / "frames.npy"
    np.save(frames_file, np.repeat(clips.frames[:16], 3, axis=-1))
    completed = subprocess.run(
        [sys.executable, "-c", TIMER, str(path), str(calls), str(frames_file)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


def markdown(results: dict) -> str:
    speed = results["training"]["clips_per_second"]
    parameters = results["training"]["parameters"]
    decoding = results["decoding"]
    shape = results["clip_shape"]
    lines = [
        f"Preset `{results['preset']}` clips: {shape[0]} frames of {shape[1]} x {shape[2]} "
        f"x {shape[3]}, batch {results['batch_size']}; the mean over {results['steps']} "
        f"training steps after {results['warmup']} warm-up steps, one after the other in one "
        "process.",
        "",
        "| training | clips/s | x reference | parameters |",
        "|---|---|---|---|",
    ]
    for name, value in speed.items():
        lines.append(
            f"| {name} | {value:.1f} | {value / speed['reference']:.2f} | {parameters[name]:,} |"
        )
    frozen = results["frozen_backbone"]
    frozen_speed = frozen["clips_per_second"]
    lines += [
        "",
        f"With a frozen {frozen['backbone']} (random weights, the same arithmetic as "
        "ImageNet's), the keras.io recipe's own setting:",
        "",
        "| training, frozen backbone | clips/s | x reference | parameters |",
        "|---|---|---|---|",
    ]
    for name in (FROZEN_REFERENCE, FROZEN_APP):
        lines.append(
            f"| {name} | {frozen_speed[name]:.1f} | "
            f"{frozen_speed[name] / frozen_speed[FROZEN_REFERENCE]:.2f} | "
            f"{frozen['parameters'][name]:,} |"
        )
    lines += [
        "",
        f"The feature cache pass: {frozen_speed['feature cache pass']:.1f} clips/s "
        f"({frozen_speed['feature cache pass, compiling']:.1f} on its first, compiling call, "
        f"on {frozen['clips']} clips); counted "
        f"in, {results['epochs']} epochs of the app run "
        f"{with_cache_pass(frozen, results['epochs']):.2f}x the reference's speed.",
    ]
    lines += [
        "",
        f"Decoding {decoding['videos']} MP4 files of {decoding['video_frames']} frames at "
        f"{decoding['video_size'][0]} x {decoding['video_size'][1]} (PyAV, sampled and resized "
        f"to the clip, threads: {decoding['workers']}): "
        f"**{decoding['decode_clips_per_second']:.1f} clips/s** decoding "
        f"({decoding['one_thread_clips_per_second']:.1f} in one thread), "
        f"{decoding['cached_clips_per_second']:.0f} clips/s from the clip cache: "
        f"{decoding['decode_clips_per_second'] / speed['app']:.1f}x and "
        f"{decoding['cached_clips_per_second'] / speed['app']:.1f}x what the app's training "
        f"step consumes ({speed['app']:.1f} clips/s).",
        "",
        "| serving_default (fresh process) | p50 ms | p99 ms | clips/s |",
        "|---|---|---|---|",
    ]
    for batch, value in results["serving"].items():
        lines.append(
            f"| batch {batch} | {value['p50_ms']:.1f} | {value['p99_ms']:.1f} "
            f"| {value['clips_per_second']:.1f} |"
        )
    lines += [
        "",
        f"({results['serving_calls']} calls per batch size after a warm-up; 2 shared CPU "
        "cores, other jobs running concurrently.)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--backbone", default="MobileNetV3Small")
    parser.add_argument("--videos", type=int, default=128)
    parser.add_argument("--video-frames", type=int, default=48)
    parser.add_argument("--video-scale", type=int, default=2)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/activity_speed.json"))
    parser.add_argument("--results", type=Path, default=None)
    arguments = parser.parse_args()
    config = APP.presets[arguments.preset]()
    config_lib.apply_overrides(config, arguments.overrides)
    count = max(arguments.videos, (arguments.warmup + arguments.steps) * config.training.batch_size)
    clips = load_moving_digits(count, "train", seed=0, settings=data_lib.clip_settings(config.data))
    assets = data_lib.fit_assets("video", clips)
    training_results, app = training_throughput(
        config, clips, assets, arguments.warmup, arguments.steps
    )
    frozen = frozen_backbone_throughput(
        frozen_backbone_config(config, arguments.backbone), clips, assets,
        arguments.warmup, arguments.steps,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="activity-speed-") as scratch:
        decoding = decoding_throughput(config, clips, arguments, Path(scratch))
        print(f"decoding: {json.dumps(decoding)}", flush=True)
        serving = serving_latency(app, config, assets, clips, arguments.calls, Path(scratch))
        print(f"serving: {json.dumps(serving)}", flush=True)
    results = {
        "preset": arguments.preset,
        "overrides": arguments.overrides,
        "clip_shape": list(clips.frames.shape[1:]),
        "batch_size": config.training.batch_size,
        "warmup": arguments.warmup,
        "steps": arguments.steps,
        "training": training_results,
        "frozen_backbone": frozen,
        "epochs": config.training.epochs,
        "decoding": decoding,
        "serving": serving,
        "serving_calls": arguments.calls,
    }
    arguments.output.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print(table)
    if arguments.results:
        replace_section(arguments.results, table, SECTION_BEGIN, SECTION_END)


if __name__ == "__main__":
    main()
