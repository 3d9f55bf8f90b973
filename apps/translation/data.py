"""Translation datasets by name or path, seeded splits, and the length-bucketed batches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tensorflow as tf

from apps.core.app import Assets, Datasets
from apps.translation.config import TranslationConfig
from pipelines import translation
from pipelines.sources.resolve import resolve_source
from pipelines.sources.sentence_pairs import (
    SentencePairs,
    load_ding_de_en,
    read_sentence_pairs,
    read_tfds_sentence_pairs,
)

RECIPES = {"ding-de-en": load_ding_de_en}


@dataclasses.dataclass
class TranslationDatasets(Datasets):
    """`Datasets` plus the sentence pairs of each split (BLEU needs the raw sentences)."""

    pairs: translation.PairSplits | None = None


@dataclasses.dataclass
class TranslationAssets(Assets):
    """The source and target vocabularies learned on the training split."""

    source_vocabulary: list[str]
    target_vocabulary: list[str]
    lowercase: bool

    FILE = "translation.json"

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self.FILE).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, directory: Path) -> TranslationAssets:
        return cls(**json.loads((directory / cls.FILE).read_text()))

    def tokenizers(self) -> tuple[translation.SentenceTokenizer, translation.SentenceTokenizer]:
        return (
            translation.SentenceTokenizer(self.source_vocabulary, self.lowercase, name="source"),
            translation.SentenceTokenizer(self.target_vocabulary, self.lowercase, name="target"),
        )


def read_pairs(config: TranslationConfig) -> SentencePairs:
    """The sentence pairs named by `config.data.source`, in the configured direction."""
    data = config.data
    pairs = resolve_source(
        data.source,
        recipes=RECIPES,
        read_file=lambda path: read_sentence_pairs(path, data.source_column, data.target_column),
        read_tfds=read_tfds_sentence_pairs,
    )
    return pairs.reversed() if data.reverse else pairs


def with_padding_weights(inputs, target_out):
    """Adds the sample weights of the weighted metrics: 1.0 on target tokens, 0.0 on padding."""
    return inputs, target_out, tf.cast(tf.not_equal(target_out, translation.PAD_ID), tf.float32)


def load_data(
    config: TranslationConfig,
    assets: TranslationAssets | None = None,
    whole_as_test: bool = False,
) -> TranslationDatasets:
    """Batched teacher-forcing datasets; the vocabularies are learned on the training split.

    Each batch is `(inputs, target_out, sample_weight)` (`with_padding_weights`).

    `summary` counts the pairs read, skipped (an empty side), duplicated (a source seen
    before) and dropped (longer than the maximum lengths) for the CLI to print.
    """
    model = config.model
    pairs, splits = make_splits(config, whole_as_test)
    if assets is None:
        train_sources = [source for source, _ in splits.train]
        train_targets = [target for _, target in splits.train]
        assets = TranslationAssets(
            source_vocabulary=translation.learn_vocabulary(
                train_sources, model.source_vocabulary_size, model.lowercase, model.subwords
            ),
            target_vocabulary=translation.learn_vocabulary(
                train_targets, model.target_vocabulary_size, model.lowercase, model.subwords
            ),
            lowercase=model.lowercase,
        )
    source_tokenizer, target_tokenizer = assets.tokenizers()
    dropped = {}
    datasets = {}
    for name in ("train", "validation", "test"):
        split_pairs = getattr(splits, name)
        if not split_pairs:
            datasets[name] = None
            continue
        source_ids, target_ids, dropped[name] = translation.tokenize_pairs(
            split_pairs, source_tokenizer, target_tokenizer,
            model.max_source_length, model.max_target_length,
        )  # fmt: skip
        datasets[name] = translation.make_batches(
            source_ids, target_ids, config.training.batch_size,
            shuffle_seed=config.training.seed if name == "train" else None,
        ).map(with_padding_weights)  # fmt: skip
    summary = {
        "source": pairs.source,
        "pairs": len(pairs.sources),
        "skipped_empty": pairs.skipped,
        "duplicates": splits.duplicates,
        "split": {name: len(getattr(splits, name)) for name in ("train", "validation", "test")},
        "dropped_too_long": dropped,
        "vocabulary": {
            "source": len(assets.source_vocabulary),
            "target": len(assets.target_vocabulary),
        },
        "split_rule": (
            "whole file as test"
            if whole_as_test
            else f"deduplicated by source, seeded shuffle (data.split_seed="
            f"{config.data.split_seed}), test {config.data.test_fraction:.0%}, "
            f"validation {config.data.validation_fraction:.0%}"
        ),
    }
    return TranslationDatasets(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        assets=assets,
        summary=summary,
        pairs=splits,
    )


def make_splits(
    config: TranslationConfig, whole_as_test: bool = False
) -> tuple[SentencePairs, translation.PairSplits]:
    """The pairs read and their train/validation/test split (everything as test if asked)."""
    data = config.data
    pairs = read_pairs(config)
    if whole_as_test:
        everything = list(zip(pairs.sources, pairs.targets, strict=True))
        return pairs, translation.PairSplits(train=[], validation=[], test=everything, duplicates=0)
    splits = translation.split_pairs(
        pairs.sources, pairs.targets, data.validation_fraction, data.test_fraction,
        data.split_seed,
    )  # fmt: skip
    if data.limit:
        test_size = max(1, round(data.limit * data.test_fraction))
        validation_size = max(1, round(data.limit * data.validation_fraction))
        splits = translation.PairSplits(
            train=splits.train[: data.limit - test_size - validation_size],
            validation=splits.validation[:validation_size],
            test=splits.test[:test_size],
            duplicates=splits.duplicates,
        )
    return pairs, splits
