"""Activity datasets: moving-digits, your videos (UCF101 layout), tfds:ucf101, sensor clips.

Every source becomes `LabeledClips` split into train, validation and test: moving-digits by its
fixed digit-image splits, tfds:ucf101 by its own train/test split (validation carved from
train), and a folder or table of yours by a seeded group split in which no clip (and no UCF101
group `_gNN_`, one actor and scene) is in two splits. The batches are
`({"frames" or "series": clips, "frame_mask": real frames}, label id)`; with a backbone frozen
for the whole run (`model.caches_features`) every clip's backbone features are computed once
here and the batches carry `"features"` instead of the frames.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from apps.activity import model as activity_model
from apps.activity.config import ActivityConfig
from apps.activity.config import DataConfig as ActivityDataConfig
from apps.core.app import Assets, Datasets
from apps.core.errors import UserError
from pipelines.errors import DataError
from pipelines.sources.clips import LabeledClips
from pipelines.sources.moving_digits import ACTIONS, ClipSettings, load_moving_digits
from pipelines.sources.resolve import TFDS_PREFIX, load_tfds
from pipelines.sources.sensor_clips import SENSOR_SUFFIXES, read_sensor_clips
from pipelines.splits import group_split
from pipelines.video import VIDEO_SUFFIXES, read_video_folder, uniform_frame_indices

MOVING_DIGITS = "moving-digits"
# Clips per call of the frozen frame encoder while caching features.
FEATURE_BATCH = 16
SPLITS = ("train", "validation", "test")
# A UCF101 file name, v_<Class>_g<group>_c<clip>: one group is one actor and scene.
UCF101_GROUP = re.compile(r"_g(\d+)_c\d+$")


@dataclasses.dataclass
class ClipAssets(Assets):
    """What the model reads, fitted on the training split: classes, frame shape, sensor scales."""

    # "video" or "sensor".
    kind: str
    label_names: list[str]
    # Video: frames per clip and their height, width and channels (1: grayscale).
    frames: int = 0
    height: int = 0
    width: int = 0
    # Video or sensor: channels per frame.
    channels: int = 0
    # Sensor: per-channel mean and variance of the training split's real time steps.
    mean: list[float] = dataclasses.field(default_factory=list)
    variance: list[float] = dataclasses.field(default_factory=list)

    FILE = "clips.json"

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        (directory / self.FILE).write_text(json.dumps(fields))

    @classmethod
    def load(cls, directory: Path) -> ClipAssets:
        return cls(**json.loads((directory / cls.FILE).read_text()))


ASSETS_CLASS = ClipAssets


@dataclasses.dataclass
class SplitClips:
    """The clips of each split (None when absent), and how they were made."""

    splits: dict[str, LabeledClips | None]
    source: str
    rule: str
    skipped: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)


def source_kind(data: ActivityDataConfig) -> str:
    """ "video" or "sensor": `data.kind`, or for "auto" what the source holds."""
    if data.kind != "auto":
        return data.kind
    if data.source == MOVING_DIGITS or data.source.startswith(TFDS_PREFIX):
        return "video"
    path = Path(data.source).expanduser()
    if path.is_file():
        return "sensor" if path.suffix.lower() == ".csv" else "video"
    if path.is_dir():
        suffixes = {file.suffix.lower() for file in path.rglob("*") if file.is_file()}
        if suffixes & set(SENSOR_SUFFIXES) and not suffixes & set(VIDEO_SUFFIXES):
            return "sensor"
    return "video"


def clip_settings(data: ActivityDataConfig) -> ClipSettings:
    try:
        return ClipSettings(
            frames=data.frames,
            height=data.height,
            width=data.width,
            length_range=(data.min_frames, data.frames) if data.min_frames else None,
            distractors=data.distractors,
            noise=data.noise,
            actions=tuple(data.actions) or ACTIONS,
        )
    except ValueError as error:
        raise UserError(f"data: {error}") from None


def moving_digit_splits(data: ActivityDataConfig, whole_as_test: bool) -> SplitClips:
    """Clips drawn from each split's own digit images; split s of seed k uses seed 3k + s."""
    settings = clip_settings(data)
    counts = {
        "train": data.train_clips,
        "validation": data.validation_clips,
        "test": data.test_clips,
    }
    splits = {}
    for offset, name in enumerate(SPLITS):
        if whole_as_test and name != "test":
            splits[name] = None
            continue
        if counts[name] < 1:
            raise UserError(f"data.{name}_clips must be at least 1, got {counts[name]}")
        splits[name] = load_moving_digits(
            counts[name], name, seed=3 * data.split_seed + offset, settings=settings
        )
    rule = (
        f"fixed digit images per split (train 0-349, validation 350-399, test 400-499 of each "
        f"digit), clip seeds 3*{data.split_seed}+0/1/2"
    )
    return SplitClips(splits, MOVING_DIGITS, rule)


def take(clips: LabeledClips, indices: np.ndarray) -> LabeledClips:
    """The clips at `indices`."""
    return dataclasses.replace(
        clips,
        frames=clips.frames[indices],
        lengths=clips.lengths[indices],
        labels=clips.labels[indices],
        paths=[clips.paths[index] for index in indices] if clips.paths else [],
    )


def clip_group(path: str) -> str:
    """The split group of a clip: its UCF101 group (`_g08_c01` -> "g08"), else its path."""
    match = UCF101_GROUP.search(Path(path).stem)
    return f"g{match.group(1)}" if match else path


def group_splits(clips: LabeledClips, data: ActivityDataConfig) -> dict[str, np.ndarray]:
    splits = group_split(
        [clip_group(path) for path in clips.paths],
        data.validation_fraction,
        data.test_fraction,
        data.split_seed,
        limit=data.limit,
    )
    indices = {name: np.asarray(getattr(splits, name), dtype=np.int64) for name in SPLITS}
    if not all(len(part) for part in indices.values()):
        sizes = {name: len(part) for name, part in indices.items()}
        raise UserError(
            f"{clips.source}: {len(clips)} clips are too few for a train, validation and test "
            f"split ({sizes})"
        )
    return indices


def user_splits(
    clips: LabeledClips, data: ActivityDataConfig, whole_as_test: bool
) -> tuple[dict[str, LabeledClips | None], str]:
    if whole_as_test:
        return {"train": None, "validation": None, "test": clips}, "whole source as test"
    indices = group_splits(clips, data)
    rule = (
        f"seeded group split (data.split_seed={data.split_seed}; a group is a UCF101 _gNN_ "
        f"group, else one clip): test {data.test_fraction:.0%}, validation "
        f"{data.validation_fraction:.0%}"
    )
    return {name: take(clips, part) for name, part in indices.items()}, rule


def video_folder_splits(
    data: ActivityDataConfig,
    label_names: list[str] | None,
    whole_as_test: bool,
    seed: int,
) -> SplitClips:
    def read(sampling_seed: int | None) -> LabeledClips:
        return read_video_folder(
            data.source,
            frames=data.frames,
            height=data.height,
            width=data.width,
            seed=sampling_seed,
            workers=data.workers or None,
            cache=data.cache,
            label_names=label_names,
        )

    clips = read(None)
    splits, rule = user_splits(clips, data, whole_as_test)
    if data.sampling == "segments" and splits["train"] is not None:
        segments = read(seed)
        position = {path: index for index, path in enumerate(segments.paths)}
        splits["train"] = take(
            segments, np.array([position[path] for path in splits["train"].paths])
        )
        rule += f"; training frames: random segments (seed {seed})"
    return SplitClips(splits, str(data.source), rule, clips.skipped, clips.problems)


def sensor_splits(
    data: ActivityDataConfig, assets: ClipAssets | None, whole_as_test: bool
) -> SplitClips:
    clips = read_sensor_clips(
        data.source,
        channels=assets.channels if assets else None,
        channel_columns=data.channel_columns or None,
        clip_column=data.clip_column,
        label_column=data.label_column,
        label_names=assets.label_names if assets else None,
    )
    splits, rule = user_splits(clips, data, whole_as_test)
    return SplitClips(splits, clips.source, rule, clips.skipped, clips.problems)


def read_tfds_clips(
    name: str, data: ActivityDataConfig, label_names: list[str] | None, whole_as_test: bool
) -> SplitClips:
    """A tensorflow-datasets video dataset (e.g. ucf101): its train and test splits, every
    video sampled uniformly to `data.frames` frames of `data.height` x `data.width`; validation
    is a seeded share of train (tfds keeps no UCF101 groups)."""
    import tensorflow_datasets as tfds

    datasets, info = load_tfds(name)
    names = list(info.features["label"].names)
    if label_names is not None and names != list(label_names):
        raise DataError(f"tfds:{name}: its classes differ from those the model was trained on")

    def read(split: str) -> LabeledClips:
        clips, labels = [], []
        for example in tfds.as_numpy(datasets[split]):
            video = example["video"]
            chosen = video[uniform_frame_indices(len(video), data.frames)]
            resized = tf.image.resize(chosen, (data.height, data.width), antialias=True)
            clips.append(np.clip(np.rint(resized.numpy()), 0, 255).astype(np.uint8))
            labels.append(int(example["label"]))
            if data.limit and len(clips) >= data.limit:
                break
        frames = np.zeros((len(clips), data.frames, data.height, data.width, 3), np.uint8)
        for index, clip in enumerate(clips):
            frames[index, : len(clip)] = clip
        return LabeledClips(
            frames=frames,
            lengths=np.array([len(clip) for clip in clips], dtype=np.int32),
            labels=np.array(labels, dtype=np.int32),
            label_names=names,
            source=f"tfds:{name}/{split}",
            paths=[f"tfds:{name}/{split}/{index}" for index in range(len(clips))],
        )

    test = read("test")
    if whole_as_test:
        return SplitClips({"train": None, "validation": None, "test": test}, test.source, "test")
    train = read("train")
    parts = group_split(list(range(len(train))), data.validation_fraction, 0.0, data.split_seed)
    splits = {
        "train": take(train, np.array(parts.train)),
        "validation": take(train, np.array(parts.validation)),
        "test": test,
    }
    rule = f"tfds train/test; validation {data.validation_fraction:.0%} of train (seeded)"
    return SplitClips(splits, f"tfds:{name}", rule)


def read_splits(
    config: ActivityConfig, assets: ClipAssets | None, whole_as_test: bool
) -> SplitClips:
    data = config.data
    label_names = assets.label_names if assets else None
    if data.source.startswith(TFDS_PREFIX):
        name = data.source.removeprefix(TFDS_PREFIX)
        if not name:
            raise UserError(f"--data {data.source!r}: give a dataset name, e.g. tfds:ucf101")
        return read_tfds_clips(name, data, label_names, whole_as_test)
    if data.source == MOVING_DIGITS:
        return moving_digit_splits(data, whole_as_test)
    if not Path(data.source).expanduser().exists():
        raise UserError(
            f"unknown --data {data.source!r}: not a dataset name ({MOVING_DIGITS}, "
            f"tfds:NAME) nor an existing file or folder"
        )
    if source_kind(data) == "sensor":
        return sensor_splits(data, assets, whole_as_test)
    return video_folder_splits(data, label_names, whole_as_test, config.training.seed)


def fit_assets(kind: str, train: LabeledClips) -> ClipAssets:
    """The assets of the training clips: classes, frame shape, sensor mean and variance."""
    if kind == "sensor":
        real = np.arange(train.frames.shape[1])[None, :] < train.lengths[:, None]
        values = train.frames[real].astype(np.float64)  # (real steps, channels)
        variance = values.var(axis=0)
        variance[variance < 1e-12] = 1.0
        return ClipAssets(
            kind="sensor",
            label_names=list(train.label_names),
            channels=int(train.frames.shape[-1]),
            mean=values.mean(axis=0).tolist(),
            variance=variance.tolist(),
        )
    _, frames, height, width, channels = train.frames.shape
    return ClipAssets(
        kind="video",
        label_names=list(train.label_names),
        frames=int(frames),
        height=int(height),
        width=int(width),
        channels=int(channels),
    )


def frame_mask(clips: LabeledClips) -> np.ndarray:
    """(clips, time) bool: True on the real frames."""
    return np.arange(clips.frames.shape[1])[None, :] < clips.lengths[:, None]


def encoded_features(encoder, clips: LabeledClips) -> np.ndarray:
    """The frozen frame encoder's features `(clips, frames, cells, features)` of the clips, from
    the compiled `predict` (2.5x the eager calls on MobileNetV3Small frames: 143 against 54
    clips/s, base clips)."""
    return encoder.predict(clips.frames, batch_size=FEATURE_BATCH, verbose=0)


def clip_dataset(
    clips: LabeledClips,
    kind: str,
    batch_size: int,
    shuffle_seed: int | None,
    features: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of `({"frames" | "series" | "features": ..., "frame_mask": mask}, label id)`,
    gathered by (seeded, reshuffled) index so that no clip is copied into a shuffle buffer;
    `features` (cached frame features, one row per clip) replace the clips when given."""
    if features is not None:
        input_name, values = "features", tf.constant(features)
    else:
        input_name = "series" if kind == "sensor" else "frames"
        values = tf.constant(clips.frames)
    masks = tf.constant(frame_mask(clips))
    labels = tf.constant(clips.labels.astype(np.int64))
    indices = tf.data.Dataset.range(len(clips))
    if shuffle_seed is not None:
        indices = indices.shuffle(len(clips), seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(batch_indices):
        inputs = {
            input_name: tf.gather(values, batch_indices),
            "frame_mask": tf.gather(masks, batch_indices),
        }
        return inputs, tf.gather(labels, batch_indices)

    return (
        indices.batch(batch_size)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def check_classes(split_clips: SplitClips, assets: ClipAssets) -> None:
    for name, clips in split_clips.splits.items():
        if clips is not None and list(clips.label_names) != assets.label_names:
            raise UserError(
                f"{clips.source}: classes {', '.join(clips.label_names)} differ from those the "
                f"model was trained on: {', '.join(assets.label_names)} ({name} split)"
            )


def load_data(
    config: ActivityConfig, assets: ClipAssets | None = None, whole_as_test: bool = False
) -> Datasets:
    split_clips = read_splits(config, assets, whole_as_test)
    for problem in split_clips.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if split_clips.skipped:
        print(f"warning: skipped {split_clips.skipped} unreadable files", file=sys.stderr)
    kind = "sensor" if split_clips.splits["test"].frames.ndim == 3 else "video"
    if assets is None:
        assets = fit_assets(kind, split_clips.splits["train"])
    elif assets.kind != kind:
        raise UserError(f"{split_clips.source}: {kind} clips, but the model reads {assets.kind}")
    check_classes(split_clips, assets)
    activity_model.check_backbone(config.model)
    batch_size = config.training.batch_size
    cached = activity_model.caches_features(config, kind)
    encoder = activity_model.frame_encoder(config, assets) if cached else None
    cache_seconds = 0.0

    def dataset(name: str) -> tf.data.Dataset | None:
        clips = split_clips.splits[name]
        if clips is None:
            return None
        if kind == "video" and clips.frames.shape[1:] != (
            assets.frames,
            assets.height,
            assets.width,
            assets.channels,
        ):
            raise UserError(
                f"{clips.source}: clips of shape {clips.frames.shape[1:]}, the model reads "
                f"{(assets.frames, assets.height, assets.width, assets.channels)}; use the "
                "training run's data.frames, data.height and data.width"
            )
        seed = config.training.seed if name == "train" else None
        features = None
        if cached:
            nonlocal cache_seconds
            started = time.perf_counter()
            features = encoded_features(encoder, clips)
            cache_seconds += time.perf_counter() - started
        return clip_dataset(clips, kind, batch_size, seed, features)

    splits = {name: dataset(name) for name in SPLITS}
    summary: dict[str, Any] = {
        "source": split_clips.source,
        "kind": kind,
        "labels": assets.label_names,
        "split": {
            name: 0 if clips is None else len(clips) for name, clips in split_clips.splits.items()
        },
        "skipped": split_clips.skipped,
        "problems": split_clips.problems,
        "split_rule": split_clips.rule,
        "features_cached": cached,
    }
    if cached:
        summary["feature_cache_seconds"] = round(cache_seconds, 1)
    return Datasets(
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        assets=assets,
        summary=summary,
    )
