"""KerasTuner search space for translation: maps `hp` onto a copy of the config."""

from __future__ import annotations

import copy

from apps.core.search_space import choice
from apps.translation.config import TranslationConfig


def search_space(hp, config: TranslationConfig) -> TranslationConfig:
    config = copy.deepcopy(config)
    model, training = config.model, config.training
    model.cell = hp.Choice("cell", ["gru", "lstm"], default=model.cell)
    model.units = choice(hp, "units", [64, 128, 256], model.units)
    model.num_layers = hp.Int("num_layers", 1, 2, default=model.num_layers)
    model.attention = hp.Choice(
        "attention", ["additive", "multiplicative"], default=model.attention
    )
    model.embedding_dim = choice(hp, "embedding_dim", [64, 128, 256], model.embedding_dim)
    model.dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=model.dropout)
    model.tie_embeddings = hp.Boolean("tie_embeddings", default=model.tie_embeddings)
    training.learning_rate = hp.Float(
        "learning_rate", 3e-4, 1e-2, sampling="log", default=training.learning_rate
    )
    training.batch_size = choice(hp, "batch_size", [32, 64, 128], training.batch_size)
    return config
