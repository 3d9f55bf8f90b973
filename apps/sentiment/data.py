"""Sentiment datasets by name or path, seeded splits, and the length-bucketed batch pipeline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np

from apps.core.app import Assets, Datasets
from apps.core.errors import UserError
from apps.sentiment.config import ModelConfig, SentimentConfig
from layers.ngram_bag import NgramBag, fit_logistic_regression
from pipelines import text
from pipelines.sources.labeled_text import (
    LabeledTexts,
    read_labeled_texts,
    read_tfds_labeled_texts,
)
from pipelines.sources.movie_reviews import load_movie_reviews
from pipelines.sources.resolve import resolve_source
from pipelines.splits import group_split

RECIPES = {"mr": load_movie_reviews}


@dataclasses.dataclass
class TextClassificationAssets(Assets):
    """The vocabulary, class names, length buckets and n-gram model fitted on the training split."""

    vocabulary: list[str]
    label_names: list[str]
    length_boundaries: list[int]
    # The fitted `NgramBag` weights (vectors, bias, idf) when `model.ngram_bag` is on.
    ngram_bag_weights: list[np.ndarray] | None = None

    FILE = "text_classification.json"
    NGRAM_BAG_FILE = "ngram_bag.npz"

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fields = {
            "vocabulary": self.vocabulary,
            "label_names": self.label_names,
            "length_boundaries": self.length_boundaries,
        }
        (directory / self.FILE).write_text(json.dumps(fields))
        if self.ngram_bag_weights is not None:
            np.savez(directory / self.NGRAM_BAG_FILE, *self.ngram_bag_weights)

    @classmethod
    def load(cls, directory: Path) -> TextClassificationAssets:
        assets = cls(**json.loads((directory / cls.FILE).read_text()))
        if (directory / cls.NGRAM_BAG_FILE).is_file():
            with np.load(directory / cls.NGRAM_BAG_FILE) as arrays:
                assets.ngram_bag_weights = [arrays[name] for name in arrays.files]
        return assets


ASSETS_CLASS = TextClassificationAssets


def read_examples(config: SentimentConfig, label_names: list[str] | None = None) -> LabeledTexts:
    """The labelled texts named by `config.data.source` (a recipe, tfds:NAME or a path)."""
    data = config.data
    return resolve_source(
        data.source,
        recipes=RECIPES,
        read_file=lambda path: read_labeled_texts(
            path, data.text_column, data.label_column, label_names=label_names
        ),
        read_tfds=read_tfds_labeled_texts,
    )


def split_indices(texts: list[str], config: SentimentConfig) -> dict[str, np.ndarray]:
    """Seeded train/validation/test indices of the distinct texts (`pipelines.splits`).

    A text seen twice keeps its first example only; fold `fold` of `folds` is the test part if
    `folds` > 1, and `limit` keeps the first examples of each part.
    """
    data = config.data
    if data.folds > 1 and not 0 <= data.fold < data.folds:
        raise UserError(f"data.fold must be in [0, {data.folds}), got {data.fold}")
    splits = group_split(
        texts,
        data.validation_fraction,
        data.test_fraction,
        data.split_seed,
        keys=texts,
        folds=data.folds,
        fold=data.fold,
        limit=data.limit,
    )
    return {
        name: np.asarray(getattr(splits, name), dtype=np.int64)
        for name in ("train", "validation", "test")
    }


def token_id_array(vectorizer, texts: list[str], model: ModelConfig) -> np.ndarray:
    """Token ids `(rows, time)` of raw texts, cleaned and cut as the pipeline does."""
    cleaned = text.clean_text(texts, model.max_characters)
    return text.token_ids(vectorizer, cleaned, model.max_length).numpy()


def fit_ngram_bag(
    assets: TextClassificationAssets,
    model: ModelConfig,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """Fits the wide part (TF-IDF logistic regression) into `assets`; returns its C and accuracy."""
    bag = NgramBag(len(assets.vocabulary), len(assets.label_names), model.bigram_buckets)
    bag.build((None, None))
    try:
        fit = fit_logistic_regression(bag, train, validation, model.ngram_bag_c_grid)
    except ValueError as error:  # e.g. a class missing from the training split
        raise UserError(f"cannot fit the n-gram logistic regression: {error}") from None
    assets.ngram_bag_weights = [keras.ops.convert_to_numpy(weight) for weight in bag.weights]
    return fit


def load_data(
    config: SentimentConfig,
    assets: TextClassificationAssets | None = None,
    whole_as_test: bool = False,
) -> Datasets:
    """Batched (token ids, label id) datasets; fits the vocabulary on the training split only."""
    model = config.model
    examples = read_examples(config, assets.label_names if assets and whole_as_test else None)
    if not examples.texts:
        raise UserError(f"{examples.source}: no examples")
    texts = np.asarray(examples.texts, dtype=object)
    labels = np.asarray(examples.labels, dtype=object)
    if whole_as_test:
        splits = {"train": None, "validation": None, "test": np.arange(len(texts))}
    else:
        splits = split_indices(examples.texts, config)
        if min(len(splits["train"]), len(splits["validation"]), len(splits["test"])) == 0:
            raise UserError(
                f"{examples.source}: {len(texts)} examples are too few for a train, "
                f"validation and test split ({ {k: len(v) for k, v in splits.items()} })"
            )
    if assets is None:
        train_texts = texts[splits["train"]].tolist()
        vectorizer = text.adapt_vectorizer(train_texts, model.vocabulary_size, model.max_characters)
        train_ids = token_id_array(vectorizer, train_texts, model)
        assets = TextClassificationAssets(
            vocabulary=[str(token) for token in vectorizer.get_vocabulary()],
            label_names=sorted(examples.label_names),
            length_boundaries=text.bucket_boundaries(
                np.count_nonzero(train_ids, axis=1), model.length_buckets
            ),
        )
    else:
        vectorizer = text.make_vectorizer(assets.vocabulary)
        train_ids = None
    label_index = {name: index for index, name in enumerate(assets.label_names)}

    def label_ids(name: str) -> np.ndarray:
        return np.array([label_index[label] for label in labels[splits[name]]], dtype=np.int64)

    ngram_bag_fit = None
    if train_ids is not None and model.ngram_bag:
        validation_ids = token_id_array(vectorizer, texts[splits["validation"]].tolist(), model)
        ngram_bag_fit = fit_ngram_bag(
            assets,
            model,
            (train_ids, label_ids("train")),
            (validation_ids, label_ids("validation")),
        )

    def dataset(name: str, shuffle: bool):
        indices = splits[name]
        if indices is None:
            return None
        return text.classification_dataset(
            texts[indices].tolist(),
            label_ids(name),
            vectorizer,
            model.max_characters,
            model.max_length,
            config.training.batch_size,
            assets.length_boundaries,
            shuffle_seed=config.training.seed if shuffle else None,
        )

    summary = {
        "source": examples.source,
        "examples": len(texts),
        "skipped": examples.skipped,
        "labels": assets.label_names,
        "split": {name: 0 if idx is None else len(idx) for name, idx in splits.items()},
        **({"ngram_bag_logistic_regression": ngram_bag_fit} if ngram_bag_fit else {}),
        "split_rule": (
            "whole file as test"
            if whole_as_test
            else f"distinct texts, seeded shuffle (data.split_seed={config.data.split_seed}), "
            + (
                f"test = fold {config.data.fold} of {config.data.folds}"
                if config.data.folds > 1
                else f"test = first {config.data.test_fraction:.0%}"
            )
            + f", validation = next {config.data.validation_fraction:.0%}"
        ),
    }
    return Datasets(
        train=dataset("train", shuffle=True),
        validation=dataset("validation", shuffle=False),
        test=dataset("test", shuffle=False),
        assets=assets,
        summary=summary,
    )
