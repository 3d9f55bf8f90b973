"""KerasTuner search space for sentiment: maps `hp` onto a copy of the config."""

from __future__ import annotations

import copy

from apps.sentiment.config import SentimentConfig


def with_default(options: list, default) -> list:
    """The options plus the config's own value, so every preset is a point of the space."""
    return sorted({*options, default})


def search_space(hp, config: SentimentConfig) -> SentimentConfig:
    config = copy.deepcopy(config)
    model, training = config.model, config.training
    model.cell = hp.Choice("cell", ["gru", "lstm"], default=model.cell)
    model.units = hp.Choice("units", with_default([32, 64, 128], model.units), default=model.units)
    model.num_layers = hp.Int("num_layers", 1, 2, default=model.num_layers)
    model.bidirectional = hp.Boolean("bidirectional", default=model.bidirectional)
    model.embedding_dim = hp.Choice(
        "embedding_dim",
        with_default([64, 128, 256], model.embedding_dim),
        default=model.embedding_dim,
    )
    model.embedding_dropout = hp.Float(
        "embedding_dropout", 0.0, 0.5, step=0.1, default=model.embedding_dropout
    )
    model.dropout = hp.Float("dropout", 0.0, 0.6, step=0.1, default=model.dropout)
    model.ngram_bag = hp.Boolean("ngram_bag", default=model.ngram_bag)
    training.learning_rate = hp.Float(
        "learning_rate", 3e-4, 1e-2, sampling="log", default=training.learning_rate
    )
    training.batch_size = hp.Choice(
        "batch_size",
        with_default([16, 32, 64], training.batch_size),
        default=training.batch_size,
    )
    return config
