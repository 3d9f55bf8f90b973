"""Sentiment datasets by name or path, seeded splits, and the length-bucketed batch pipeline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from apps.core.app import Assets, Datasets
from apps.core.errors import UserError
from apps.sentiment.config import SentimentConfig
from pipelines import text
from pipelines.sources.labeled_text import (
    LabeledTexts,
    read_labeled_texts,
    read_tfds_labeled_texts,
)
from pipelines.sources.movie_reviews import load_movie_reviews
from pipelines.sources.resolve import resolve_source

RECIPES = {"mr": load_movie_reviews}


@dataclasses.dataclass
class TextClassificationAssets(Assets):
    """The vocabulary, class names and length buckets fitted on the training split."""

    vocabulary: list[str]
    label_names: list[str]
    length_boundaries: list[int]

    FILE = "text_classification.json"

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self.FILE).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, directory: Path) -> TextClassificationAssets:
        return cls(**json.loads((directory / cls.FILE).read_text()))


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


def split_indices(count: int, config: SentimentConfig) -> dict[str, np.ndarray]:
    """Seeded train/validation/test indices; fold `fold` of `folds` is the test part if set."""
    data = config.data
    order = np.random.default_rng(data.split_seed).permutation(count)
    if data.limit:
        order = order[: data.limit]
    if data.folds > 1:
        if not 0 <= data.fold < data.folds:
            raise UserError(f"data.fold must be in [0, {data.folds}), got {data.fold}")
        in_test = np.arange(len(order)) % data.folds == data.fold
        test, rest = order[in_test], order[~in_test]
    else:
        test_count = int(round(len(order) * data.test_fraction))
        test, rest = order[:test_count], order[test_count:]
    validation_count = int(round(len(rest) * data.validation_fraction))
    return {"train": rest[validation_count:], "validation": rest[:validation_count], "test": test}


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
        splits = split_indices(len(texts), config)
        if min(len(splits["train"]), len(splits["validation"]), len(splits["test"])) == 0:
            raise UserError(
                f"{examples.source}: {len(texts)} examples are too few for a train, "
                f"validation and test split ({ {k: len(v) for k, v in splits.items()} })"
            )
    if assets is None:
        train_texts = texts[splits["train"]].tolist()
        vectorizer = text.adapt_vectorizer(train_texts, model.vocabulary_size, model.max_characters)
        ids = text.token_ids(
            vectorizer, text.clean_text(train_texts, model.max_characters), model.max_length
        )
        lengths = np.count_nonzero(ids.numpy(), axis=1)
        assets = TextClassificationAssets(
            vocabulary=[str(token) for token in vectorizer.get_vocabulary()],
            label_names=sorted(examples.label_names),
            length_boundaries=text.bucket_boundaries(lengths, model.length_buckets),
        )
    else:
        vectorizer = text.make_vectorizer(assets.vocabulary)
    label_index = {name: index for index, name in enumerate(assets.label_names)}

    def dataset(name: str, shuffle: bool):
        indices = splits[name]
        if indices is None:
            return None
        return text.classification_dataset(
            texts[indices].tolist(),
            [label_index[label] for label in labels[indices]],
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
        "split_rule": (
            "whole file as test"
            if whole_as_test
            else f"seeded shuffle (data.split_seed={config.data.split_seed}), "
            + (
                f"test = fold {config.data.fold} of {config.data.folds}"
                if config.data.folds > 1
                else f"test = first {config.data.test_fraction:.0%}"
            )
            + f", validation = {config.data.validation_fraction:.0%} of the rest"
        ),
    }
    return Datasets(
        train=dataset("train", shuffle=True),
        validation=dataset("validation", shuffle=False),
        test=dataset("test", shuffle=False),
        assets=assets,
        summary=summary,
    )
