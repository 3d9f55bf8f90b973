"""Sentiment config: data, model, training and export settings, and the named presets."""

from __future__ import annotations

import dataclasses

from apps.core.config import ExportConfig, TrainingConfig


@dataclasses.dataclass
class DataConfig:
    # "mr" (movie-review snippets), "tfds:imdb_reviews", or a .csv/.tsv/.jsonl file or a folder
    # with one sub-folder of .txt files per class.
    source: str = "mr"
    text_column: str = "text"
    label_column: str = "label"
    # Seeded shuffle, then test and validation carved off; with `folds` > 1 the test split is
    # fold `fold` of `folds` instead (cross-validation).
    split_seed: int = 0
    test_fraction: float = 0.1
    validation_fraction: float = 0.1
    folds: int = 0
    fold: int = 0
    # Use only N examples (0 = all): each part keeps its first ones after the shuffle.
    limit: int = 0


@dataclasses.dataclass
class ModelConfig:
    vocabulary_size: int = 20000
    # Texts are cut to this many characters, then to this many words.
    max_characters: int = 2000
    max_length: int = 200
    # Length buckets for batching (quantiles of the training lengths).
    length_buckets: int = 8
    embedding_dim: int = 128
    embedding_dropout: float = 0.3
    cell: str = "gru"
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    merge_mode: str = "concat"
    residual: bool = True
    encoder_dropout: float = 0.0
    pooling: tuple[str, ...] = ("max", "mean")
    hidden_units: int = 0
    dropout: float = 0.5
    # Wide and deep: a TF-IDF (unigrams + hashed bigrams) logistic regression, fitted on the
    # training split with C chosen on validation, frozen; the recurrent logits start at zero
    # and add to it.
    ngram_bag: bool = False
    bigram_buckets: int = 2**18
    ngram_bag_c_grid: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclasses.dataclass
class SentimentConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


def base() -> SentimentConfig:
    """The quality benchmark: BiGRU(64), max+mean pooling on a fitted TF-IDF logistic regression."""
    config = SentimentConfig()
    config.model.ngram_bag = True
    config.training = TrainingConfig(
        epochs=8, batch_size=32, learning_rate=1e-3, weight_decay=1e-2, early_stopping_patience=2
    )
    return config


def tiny() -> SentimentConfig:
    """Seconds: for tests and smoke runs."""
    config = SentimentConfig()
    config.model = ModelConfig(
        vocabulary_size=500,
        max_length=32,
        length_buckets=2,
        embedding_dim=16,
        embedding_dropout=0.0,
        units=8,
        dropout=0.0,
    )
    config.training = TrainingConfig(
        epochs=3, batch_size=16, learning_rate=1e-2, early_stopping_patience=3
    )
    config.data.limit = 400
    return config


PRESETS = {"base": base, "tiny": tiny}
