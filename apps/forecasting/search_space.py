"""KerasTuner search space for forecasting: maps `hp` onto a copy of the config."""

from __future__ import annotations

import copy

from apps.core.search_space import choice
from apps.forecasting.config import MODEL_TYPES, ForecastingConfig


def search_space(hp, config: ForecastingConfig) -> ForecastingConfig:
    config = copy.deepcopy(config)
    data, model, training = config.data, config.model, config.training
    model.model_type = hp.Choice("model_type", list(MODEL_TYPES), default=model.model_type)
    model.cell = hp.Choice("cell", ["gru", "lstm"], default=model.cell)
    model.units = choice(hp, "units", [16, 32, 64, 128], model.units)
    model.num_layers = hp.Int("num_layers", 1, 2, default=model.num_layers)
    model.dropout = hp.Float("dropout", 0.0, 0.4, step=0.1, default=model.dropout)
    lookbacks = sorted(
        {max(config.evaluation.season, data.lookback // 2), data.lookback, data.lookback * 2}
    )
    data.lookback = hp.Choice("lookback", lookbacks, default=data.lookback)
    if model.highway_window:
        model.highway_window = data.lookback
    training.learning_rate = hp.Float(
        "learning_rate", 3e-4, 1e-2, sampling="log", default=training.learning_rate
    )
    training.batch_size = choice(hp, "batch_size", [32, 64, 128], training.batch_size)
    return config
