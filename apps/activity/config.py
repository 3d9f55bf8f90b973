"""Activity config: data, model, evaluation, training and export settings, and the presets."""

from __future__ import annotations

import dataclasses
from typing import Literal

from apps.core import config as core_config
from apps.core.config import ExportConfig, TrainingConfig


@dataclasses.dataclass
class DataConfig(core_config.DataConfig):
    # "moving-digits" (clips of handwritten MNIST digits whose label is the motion),
    # "tfds:ucf101", a folder with one sub-folder of videos per class (the UCF101 layout), or
    # sensor clips: a folder with one sub-folder per class of .csv/.npz clips, or one long
    # .csv table with a clip-id column.
    source: str = "moving-digits"
    # "auto": sensor clips when the source is a .csv file or a folder of .csv/.npz clips.
    kind: Literal["auto", "video", "sensor"] = "auto"
    # moving-digits: clips per split (each split draws from its own fixed digit images), the
    # actions to tell apart (empty: all 8), distractor digits, pixel noise (out of 255), and
    # the shortest clip in frames (0: every clip has `frames` frames; else lengths vary,
    # padded and masked). `limit` applies to your own sources only.
    train_clips: int = 4000
    validation_clips: int = 500
    test_clips: int = 1000
    actions: tuple[str, ...] = ()
    distractors: int = 2
    noise: int = 32
    min_frames: int = 0
    # Video: frames kept per clip and their size (videos are resized while decoding).
    frames: int = 16
    height: int = 64
    width: int = 64
    # Frames of the training videos: "uniform" (the middle of each of `frames` segments, as
    # evaluation and serving take them) or "segments" (one random frame of each segment, TSN;
    # drawn once per run from training.seed). Folders only.
    sampling: Literal["uniform", "segments"] = "uniform"
    # Decoding threads (0: one per CPU) and whether decoded clips are cached.
    workers: int = 0
    cache: bool = True
    # Sensor clips: the channel columns (empty: every column), and the long table's clip-id
    # and label columns.
    channel_columns: tuple[str, ...] = ()
    clip_column: str = "clip"
    label_column: str = "label"


@dataclasses.dataclass
class ModelConfig:
    # The frame encoder, applied to every frame (layers.FrameDistributed): "small-cnn"
    # (3x3 stride-2 ReLU convolutions with `filters`, flattened so a frame's features keep
    # where things are, then a dense layer of `frame_features`), or a backbone of the shared
    # helper (layers.backbone, as the captioning app's): a keras.applications name
    # (MobileNetV3Small, EfficientNetB0, ...: the keys of BACKBONE_NORMALIZATIONS) or
    # "small_cnn" (its layer-normalized conv and pooling blocks with `filters`), its feature
    # grid flattened and then the same dense layer. Grayscale frames are repeated to RGB.
    backbone: str = "small-cnn"
    filters: tuple[int, ...] = (16, 32, 64, 64)
    # Shared backbones: weights None (random), "imagenet" (downloaded by Keras)
    # or the path of a weights file; "frozen", "fine_tune", or "frozen_then_fine_tune"
    # (frozen for `frozen_epochs`). With a backbone frozen for the whole run and
    # `cache_features`, every frame's backbone features are computed once and training reads
    # them (later epochs skip the CNN; the cache holds clips x frames x grid cells x channels
    # float32 values); the export still takes raw frames.
    backbone_weights: str | None = None
    backbone_training: Literal["frozen", "fine_tune", "frozen_then_fine_tune"] = "fine_tune"
    frozen_epochs: int = 2
    cache_features: bool = True
    frame_features: int = 128
    frame_dropout: float = 0.1
    # "recurrent": the shared RecurrentEncoder over the frame features, then SequencePooling;
    # "conv-lstm": a keras.layers.ConvLSTM2D over the CNN's feature maps instead. A
    # unidirectional encoder pooled by last/mean/max also exports the `stream` signature.
    temporal: Literal["recurrent", "conv-lstm"] = "recurrent"
    cell: Literal["gru", "lstm"] = "gru"
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    encoder_dropout: float = 0.0
    pooling: tuple[Literal["last", "mean", "max", "attention"], ...] = ("max", "mean")
    conv_lstm_filters: int = 32
    dropout: float = 0.3


@dataclasses.dataclass
class EvaluationConfig:
    # Epochs of the frame-averaging baseline (the same CNN, its frame features averaged over
    # time, no recurrence) that `evaluate` trains on the training split, early-stopped on
    # validation, and scores beside the model; 0: no baseline.
    baseline_epochs: int = 10


@dataclasses.dataclass
class ActivityConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


def base() -> ActivityConfig:
    """The quality benchmark: moving-digits, 16 frames of 64 x 64, all 8 actions."""
    config = ActivityConfig()
    config.evaluation = EvaluationConfig(baseline_epochs=2)
    config.training = TrainingConfig(
        epochs=12,
        batch_size=32,
        learning_rate=2e-3,
        weight_decay=1e-4,
        early_stopping_patience=5,
        learning_rate_schedule="cosine",
        warmup_steps=100,
    )
    return config


def small() -> ActivityConfig:
    """The main job: moving-digits at 12 frames of 48 x 48; a few minutes on 2 cores."""
    config = base()
    config.data = DataConfig(
        train_clips=2000, validation_clips=200, test_clips=400, frames=12, height=48, width=48
    )
    config.model = ModelConfig(filters=(16, 32, 32), frame_features=96, units=48)
    config.evaluation = EvaluationConfig(baseline_epochs=4)
    config.training.epochs = 8
    config.training.warmup_steps = 50
    return config


def tiny() -> ActivityConfig:
    """Seconds: for tests and smoke runs."""
    config = ActivityConfig()
    config.data = DataConfig(
        train_clips=320,
        validation_clips=64,
        test_clips=96,
        distractors=1,
        noise=16,
        frames=8,
        height=32,
        width=32,
        workers=1,
    )
    config.model = ModelConfig(
        filters=(8, 16, 16),
        frame_features=32,
        frame_dropout=0.0,
        units=16,
        bidirectional=False,
        dropout=0.0,
    )
    config.evaluation = EvaluationConfig(baseline_epochs=4)
    config.training = TrainingConfig(
        epochs=6, batch_size=16, learning_rate=3e-3, early_stopping_patience=6
    )
    return config


PRESETS = {"base": base, "small": small, "tiny": tiny}
