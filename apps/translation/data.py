"""Translation datasets by name or path, seeded splits, and the length-bucketed batches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tensorflow as tf

from apps.core.app import Assets, Datasets
from apps.translation.config import TranslationConfig
from pipelines import sequences, tokenizers
from pipelines.errors import DataError
from pipelines.sources.resolve import resolve_source
from pipelines.sources.sentence_pairs import (
    SentencePairs,
    load_ding_de_en,
    read_sentence_pairs,
    read_tfds_sentence_pairs,
)
from pipelines.splits import group_split

RECIPES = {"ding-de-en": load_ding_de_en}
# The model's input names, in the order `sequences.make_batches` takes them (source, target).
MODEL_INPUTS = ("source", "target_in")
COLUMN_POSITIONS_HINT = "--set data.source_column=0 --set data.target_column=1"


@dataclasses.dataclass
class PairSplits:
    """Deduplicated pairs split into train, validation and test (lists of (source, target))."""

    train: list[tuple[str, str]]
    validation: list[tuple[str, str]]
    test: list[tuple[str, str]]
    # Pairs dropped because their source sentence was already seen.
    duplicates: int


@dataclasses.dataclass
class TranslationDatasets(Datasets):
    """`Datasets` plus the sentence pairs of each split (BLEU needs the raw sentences)."""

    pairs: PairSplits | None = None


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

    def tokenizers(self) -> tuple[tokenizers.SentenceTokenizer, tokenizers.SentenceTokenizer]:
        return (
            tokenizers.SentenceTokenizer(self.source_vocabulary, self.lowercase, name="source"),
            tokenizers.SentenceTokenizer(self.target_vocabulary, self.lowercase, name="target"),
        )


ASSETS_CLASS = TranslationAssets


def read_pairs(config: TranslationConfig) -> SentencePairs:
    """The sentence pairs named by `config.data.source`, in the configured direction."""
    data = config.data
    pairs = resolve_source(
        data.source,
        recipes=RECIPES,
        read_file=lambda path: read_sentence_pairs(
            path, data.source_column, data.target_column, COLUMN_POSITIONS_HINT
        ),
        read_tfds=read_tfds_sentence_pairs,
    )
    return pairs.reversed() if data.reverse else pairs


def load_data(
    config: TranslationConfig,
    assets: TranslationAssets | None = None,
    whole_as_test: bool = False,
) -> TranslationDatasets:
    """Batched teacher-forcing datasets; the vocabularies are learned on the training split.

    Each batch is `(inputs, target_out, sample_weight)`, the weight 0.0 on padding (for the
    weighted token accuracy).

    `summary` counts the pairs read, skipped (an empty side), duplicated (a source seen
    before) and dropped (longer than the maximum lengths) for the CLI to print.
    """
    model = config.model
    pairs, splits = make_splits(config, whole_as_test)
    if assets is None:
        train_sources = [source for source, _ in splits.train]
        train_targets = [target for _, target in splits.train]
        assets = TranslationAssets(
            source_vocabulary=tokenizers.learn_vocabulary(
                train_sources, model.source_vocabulary_size, model.lowercase, model.subwords
            ),
            target_vocabulary=tokenizers.learn_vocabulary(
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
        source_ids, target_ids, dropped[name] = sequences.tokenize_pairs(
            split_pairs, source_tokenizer, target_tokenizer,
            model.max_source_length, model.max_target_length,
        )  # fmt: skip
        if name == "train" and dropped[name] == len(split_pairs):
            raise DataError(all_dropped_message(pairs.source, split_pairs, config, assets))
        datasets[name] = sequences.make_batches(
            source_ids, target_ids, config.training.batch_size, MODEL_INPUTS,
            shuffle_seed=config.training.seed if name == "train" else None,
        )  # fmt: skip
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


def all_dropped_message(
    source: str, pairs: list[tuple[str, str]], config: TranslationConfig, assets: TranslationAssets
) -> str:
    """Why no training pair is left: the maximum lengths and the lengths of the pairs."""
    model = config.model
    source_tokenizer, target_tokenizer = assets.tokenizers()
    # [START] and [END] count towards the maximum lengths.
    shortest_source = 2 + int(
        tf.reduce_min(
            source_tokenizer.tokenize(tf.constant([pair[0] for pair in pairs])).row_lengths()
        )
    )
    shortest_target = 2 + int(tf.reduce_min(target_tokenizer.tokenize(
        tf.constant([pair[1] for pair in pairs])).row_lengths()))  # fmt: skip
    return (
        f"{source}: all {len(pairs)} training pairs were dropped as too long: the limits are "
        f"model.max_source_length={model.max_source_length} and model.max_target_length="
        f"{model.max_target_length} tokens ([START] and [END] included), the shortest source "
        f"has {shortest_source} and the shortest target {shortest_target}; raise the limits "
        f"with --set model.max_source_length=N --set model.max_target_length=N"
    )


def make_splits(
    config: TranslationConfig, whole_as_test: bool = False
) -> tuple[SentencePairs, PairSplits]:
    """The pairs read and their train/validation/test split (everything as test if asked)."""
    data = config.data
    pairs = read_pairs(config)
    if whole_as_test:
        everything = list(zip(pairs.sources, pairs.targets, strict=True))
        return pairs, PairSplits(train=[], validation=[], test=everything, duplicates=0)
    indices = group_split(
        pairs.sources, data.validation_fraction, data.test_fraction, data.split_seed,
        keys=pairs.sources, limit=data.limit,
    )  # fmt: skip

    def part(indices: list[int]) -> list[tuple[str, str]]:
        return [(pairs.sources[index], pairs.targets[index]) for index in indices]

    return pairs, PairSplits(
        train=part(indices.train),
        validation=part(indices.validation),
        test=part(indices.test),
        duplicates=indices.duplicates,
    )
