"""Captioning config: data, image encoder, decoder, decoding, training and export settings,
and the presets."""

from __future__ import annotations

import dataclasses
from typing import Literal

from apps.core import config as core_config
from apps.core.config import ExportConfig, TrainingConfig


@dataclasses.dataclass
class DataConfig(core_config.DataConfig):
    # "emoji" (the Noto Color Emoji images captioned with their CLDR names), "tfds:NAME"
    # (e.g. tfds:coco_captions), or a captions file or folder: Flickr8k
    # `image.jpg#0<TAB>caption` lines, a CSV `image,caption`, or COCO captions JSON.
    #
    # The split rule: whole groups are dealt out by a seeded shuffle (data.split_seed), so
    # no group is in two splits. On emoji a group is an exact caption (the composition
    # split: a test name is never in training, its parts are); elsewhere a group is an image,
    # with all of its captions.
    source: str = "emoji"
    # The folder the captions file's image names are relative to ("": the file's folder).
    images_dir: str = ""
    # The tensorflow-datasets split read for tfds:NAME (then split again as above).
    tfds_split: str = "train"
    # The square side the images are fitted into (and emoji are rendered at).
    image_size: int = 64
    # "pad" keeps the aspect ratio (padding with the background), "squash" does not.
    fit: Literal["pad", "squash"] = "pad"
    # The colour under transparent pixels and of the padding.
    background: Literal["white", "black"] = "white"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1


@dataclasses.dataclass
class ModelConfig:
    # "small_cnn" or a keras.applications name: MobileNetV3Small, EfficientNetB0, ...
    # (layers.backbone.BACKBONE_NORMALIZATIONS lists them with their pixel scaling).
    backbone: str = "MobileNetV3Small"
    # None (random), "imagenet" (downloaded by Keras) or the path of a weights file.
    backbone_weights: str | None = None
    # "frozen", "fine_tune", or "frozen_then_fine_tune" (frozen for `frozen_epochs`).
    backbone_training: Literal["frozen", "fine_tune", "frozen_then_fine_tune"] = "fine_tune"
    frozen_epochs: int = 2
    # With a backbone frozen for the whole run: compute every image's features once and
    # train the decoder on them (later epochs skip the CNN). The export still takes bytes.
    cache_features: bool = True
    # The small CNN's filters per block (3x3 convolution and 2x2 pooling each).
    small_cnn_filters: tuple[int, ...] = (32, 64, 128)
    # Word-level captions learned on the training split.
    vocabulary_size: int = 5000
    lowercase: bool = True
    # Tokens, [START] and [END] included: longer training captions are dropped; the most a
    # generated caption may have (its end token included).
    max_caption_length: int = 24
    embedding_dim: int = 128
    cell: Literal["gru", "lstm"] = "lstm"
    units: int = 256
    # "additive" (Bahdanau, as Show, Attend and Tell) or "multiplicative" (Luong).
    attention: Literal["additive", "multiplicative"] = "additive"
    dropout: float = 0.3
    label_smoothing: float = 0.1


@dataclasses.dataclass
class DecodingConfig:
    # Beam search width for evaluation and the export's `beam_search` signature.
    beam_width: int = 4
    # GNMT length-penalty exponent (0 ranks beams by raw log-probability).
    length_penalty: float = 0.0
    # Beam width of `serving_default`: 1 is greedy search.
    serving_beam_width: int = 1
    # Test examples printed by `evaluate`.
    samples: int = 5


@dataclasses.dataclass
class CaptioningConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    decoding: DecodingConfig = dataclasses.field(default_factory=DecodingConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


def base() -> CaptioningConfig:
    """For photos: MobileNetV3Small at 96 px (random weights, fine-tuned), LSTM 256.

    With ImageNet weights (`--set model.backbone_weights=imagenet`) freeze it instead
    (`--set model.backbone_training=frozen`): the features are then cached. Not measured on
    these CPUs (no ImageNet weights offline, and an epoch of emoji at 96 px takes many
    minutes); the emoji benchmark runs `small` (benchmarks/RESULTS-captioning.md).
    """
    config = CaptioningConfig()
    config.data.image_size = 96
    config.training = TrainingConfig(
        epochs=20, batch_size=64, learning_rate=2e-3, weight_decay=1e-4, clip_norm=5.0,
        early_stopping_patience=4,
    )  # fmt: skip
    return config


def small() -> CaptioningConfig:
    """A few minutes on 2 cores (the README's main job): emoji at 32 px, the small CNN.

    At 64 px the CNN's training step cost 7x the 32 px one (batch 64, same load), and after
    6 epochs (13 minutes on a loaded machine) the model was still underfitted, validation
    BLEU-4 9; at 32 px skin tones and man/woman still show, 9 epochs take 3 minutes and
    reach 36 (beam 42, the nearest-neighbour baseline 39; benchmarks/RESULTS-captioning.md).
    """
    config = CaptioningConfig()
    config.data.image_size = 32
    config.model = ModelConfig(
        backbone="small_cnn", small_cnn_filters=(32, 64, 128), embedding_dim=64, units=128,
        dropout=0.2,
    )  # fmt: skip
    config.training = TrainingConfig(
        epochs=12, batch_size=64, learning_rate=3e-3, clip_norm=5.0, early_stopping_patience=4
    )
    config.decoding.beam_width = 3
    return config


def tiny() -> CaptioningConfig:
    """Seconds: for tests and smoke runs on small folders (32 px, a two-block CNN)."""
    config = CaptioningConfig()
    config.data.image_size = 32
    config.model = ModelConfig(
        backbone="small_cnn", small_cnn_filters=(16, 32), vocabulary_size=200,
        max_caption_length=12, embedding_dim=16, cell="gru", units=32, dropout=0.0,
        label_smoothing=0.0,
    )  # fmt: skip
    config.training = TrainingConfig(
        epochs=3, batch_size=32, learning_rate=1e-2, early_stopping_patience=5
    )
    config.decoding.beam_width = 2
    config.decoding.samples = 2
    return config


PRESETS = {"base": base, "small": small, "tiny": tiny}
