"""The toy config: a base DataConfig, a Literal choice field, training and export."""

import dataclasses
from typing import Literal

from apps.core import config as core_config
from apps.core.config import ExportConfig, TrainingConfig


@dataclasses.dataclass
class DataConfig(core_config.DataConfig):
    source: str = "sums"
    examples: int = 256


@dataclasses.dataclass
class ModelConfig:
    activation: Literal["linear", "relu"] = "linear"


@dataclasses.dataclass
class ToyConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


def tiny() -> ToyConfig:
    config = ToyConfig()
    config.training = TrainingConfig(epochs=3, batch_size=32, learning_rate=0.05)
    return config


PRESETS = {"tiny": tiny}
