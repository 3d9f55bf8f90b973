"""KerasTuner search space for activity recognition: maps `hp` onto a copy of the config."""

from __future__ import annotations

import copy

from apps.activity.config import ActivityConfig
from apps.core.search_space import choice


def search_space(hp, config: ActivityConfig) -> ActivityConfig:
    config = copy.deepcopy(config)
    model, training = config.model, config.training
    model.cell = hp.Choice("cell", ["gru", "lstm"], default=model.cell)
    model.units = choice(hp, "units", [32, 64, 128], model.units)
    model.num_layers = hp.Int("num_layers", 1, 2, default=model.num_layers)
    model.bidirectional = hp.Boolean("bidirectional", default=model.bidirectional)
    model.frame_features = choice(hp, "frame_features", [64, 128, 256], model.frame_features)
    model.frame_dropout = hp.Float("frame_dropout", 0.0, 0.5, step=0.1, default=model.frame_dropout)
    model.dropout = hp.Float("dropout", 0.0, 0.6, step=0.1, default=model.dropout)
    training.learning_rate = hp.Float(
        "learning_rate", 3e-4, 1e-2, sampling="log", default=training.learning_rate
    )
    training.batch_size = choice(hp, "batch_size", [16, 32, 64], training.batch_size)
    return config
