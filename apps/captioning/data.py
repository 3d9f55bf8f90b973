"""Captioning datasets by name or path, the image-aware split, and the teacher-forcing batches."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.captioning import model as captioning_model
from apps.captioning.config import CaptioningConfig
from apps.core.app import Assets, Datasets
from apps.core.errors import UserError
from layers.backbone import BACKBONE_NORMALIZATIONS
from pipelines import sequences, tokenizers
from pipelines.cache import cache_dir
from pipelines.images import preprocess_images
from pipelines.sources.emoji_captions import (
    composition_groups,
    count_parts_seen_in_training,
    load_emoji_captions,
)
from pipelines.sources.image_captions import (
    ImageCaptions,
    read_image_captions,
    read_tfds_image_captions,
)
from pipelines.sources.resolve import resolve_source
from pipelines.splits import group_split

FEATURE_BATCH = 64


@dataclasses.dataclass
class CaptionedImages:
    """The image files of one split and all captions of each."""

    paths: list[str]
    captions: list[list[str]]

    def image_bytes(self) -> list[bytes]:
        return [Path(path).read_bytes() for path in self.paths]


@dataclasses.dataclass
class CaptionSplits:
    train: CaptionedImages
    validation: CaptionedImages
    test: CaptionedImages


@dataclasses.dataclass
class CaptioningDatasets(Datasets):
    """`Datasets` plus the images and captions of each split (BLEU needs all references)."""

    images: CaptionSplits | None = None


@dataclasses.dataclass
class CaptioningAssets(Assets):
    """The caption vocabulary learned on the training split."""

    vocabulary: list[str]
    lowercase: bool

    FILE = "captioning.json"

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self.FILE).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, directory: Path) -> CaptioningAssets:
        return cls(**json.loads((directory / cls.FILE).read_text()))

    def tokenizer(self) -> tokenizers.SentenceTokenizer:
        return tokenizers.SentenceTokenizer(self.vocabulary, self.lowercase, name="caption")


ASSETS_CLASS = CaptioningAssets


def image_preprocessing(config: CaptioningConfig):
    """`image_bytes` (scalar or vector) -> float images as the backbone expects them."""
    return functools.partial(
        preprocess_images,
        size=config.data.image_size,
        fit=config.data.fit,
        normalization=BACKBONE_NORMALIZATIONS[config.model.backbone],
        background=config.data.background,
    )


def tfds_as_folder(name: str, split: str) -> ImageCaptions:
    """A tensorflow-datasets captioning split written once as image files and captions.txt."""
    folder = cache_dir("tfds-captions", name.replace("/", "_"), split)
    if not (folder / "captions.txt").is_file():
        lines = []
        with tempfile.TemporaryDirectory(dir=folder, prefix="download-") as staging:
            for index, (image_bytes, captions) in enumerate(read_tfds_image_captions(name, split)):
                data = image_bytes.numpy()
                extension = "png" if data.startswith(b"\x89PNG") else "jpg"
                file_name = f"{index:07d}.{extension}"
                (Path(staging) / file_name).write_bytes(data)
                for number, caption in enumerate(captions.numpy()):
                    text = " ".join(caption.decode("utf-8", "replace").split())
                    lines.append(f"{file_name}#{number}\t{text}\n")
            for path in Path(staging).iterdir():
                os.replace(path, folder / path.name)
        (folder / "captions.txt").write_text("".join(lines), encoding="utf-8")
    return read_image_captions(folder)


def read_captions(config: CaptioningConfig) -> ImageCaptions:
    """The captioned images named by `config.data.source`."""
    data = config.data
    return resolve_source(
        data.source,
        recipes={"emoji": lambda: load_emoji_captions(data.image_size)},
        read_file=lambda path: read_image_captions(path, data.images_dir or None),
        read_tfds=lambda name: tfds_as_folder(name, data.tfds_split),
    )


def split_rule(config: CaptioningConfig, whole_as_test: bool) -> str:
    data = config.data
    if whole_as_test:
        return "whole source as test"
    group = (
        "an exact caption (no name in two splits; its parts are shared)"
        if data.source == "emoji"
        else "an image with all its captions (no image in two splits)"
    )
    return (
        f"groups dealt out by a seeded shuffle (data.split_seed={data.split_seed}), a group "
        f"being {group}: test {data.test_fraction:.0%}, validation "
        f"{data.validation_fraction:.0%} of the groups"
    )


def make_splits(config: CaptioningConfig, whole_as_test: bool = False):
    """The images read and their train/validation/test split (everything as test if asked)."""
    data = config.data
    images = read_captions(config)
    paths = [str(path) for path in images.image_paths]

    def part(indices: list[int]) -> CaptionedImages:
        return CaptionedImages([paths[i] for i in indices], [images.captions[i] for i in indices])

    if whole_as_test:
        everything = list(range(len(paths)))
        return images, CaptionSplits(part([]), part([]), part(everything))
    groups = (
        composition_groups(captions[0] for captions in images.captions)
        if data.source == "emoji"
        else paths
    )
    indices = group_split(
        groups, data.validation_fraction, data.test_fraction, data.split_seed, limit=data.limit
    )
    return images, CaptionSplits(part(indices.train), part(indices.validation), part(indices.test))


def caption_ids(
    tokenizer: tokenizers.SentenceTokenizer, images: CaptionedImages, max_length: int
) -> tuple[list[int], tf.RaggedTensor, int]:
    """`(image index per caption, [START] ids [END] per caption, captions dropped)`.

    Captions longer than `max_length` tokens (start and end included) are dropped.
    """
    image_indices = [index for index, captions in enumerate(images.captions) for _ in captions]
    texts = [caption for captions in images.captions for caption in captions]
    ids = sequences.add_start_end(tokenizer.tokenize(tf.constant(texts, tf.string)))
    keep = (ids.row_lengths() <= max_length).numpy()
    kept_indices = [index for index, kept in zip(image_indices, keep, strict=True) if kept]
    return kept_indices, tf.ragged.boolean_mask(ids, keep), int((~keep).sum())


def encoded_features(encoder, config: CaptioningConfig, paths: list[str]) -> np.ndarray:
    """The frozen image encoder's features `(images, cells, features)` of the image files, the
    encoder run as one traced function (7x its eager calls: 2,900 against 430 images/s on
    random MobileNetV3Small inputs at the default size)."""
    preprocess = image_preprocessing(config)
    images = (
        tf.data.Dataset.from_tensor_slices(paths)
        .map(lambda path: preprocess(tf.io.read_file(path)), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(FEATURE_BATCH)
    )
    encode = tf.function(lambda batch: encoder(batch, training=False))
    batches = [np.asarray(encode(batch)) for batch in images]
    if not batches:
        return np.zeros((0, encoder.cells, encoder.features), np.float32)
    return np.concatenate(batches)


def teacher_forcing_batches(
    encoder_inputs: tf.data.Dataset,
    input_name: str,
    ids: tf.RaggedTensor,
    batch_size: int,
    shuffle_seed: int | None,
) -> tf.data.Dataset:
    """`({input_name, "caption_in"}, caption_out, sample_weight)` batches, captions padded.

    `encoder_inputs` holds one element per caption (an image or its cached features).
    """
    dataset = tf.data.Dataset.zip(encoder_inputs, tf.data.Dataset.from_tensor_slices(ids))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            int(ids.nrows()), seed=shuffle_seed, reshuffle_each_iteration=True
        )

    def to_example(encoder_input, caption):
        caption_in, caption_out = sequences.teacher_forcing(caption)
        inputs = {input_name: encoder_input, "caption_in": caption_in}
        return inputs, caption_out, tf.ones_like(caption_out, tf.float32)

    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.padded_batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_data(
    config: CaptioningConfig,
    assets: CaptioningAssets | None = None,
    whole_as_test: bool = False,
) -> CaptioningDatasets:
    """Batched teacher-forcing datasets, one example per caption; the vocabulary is learned on
    the training captions.

    Each batch is `({"image" or "features", "caption_in"}, caption_out, sample_weight)`, the
    weight 0.0 on padding. With a frozen, cached backbone (`model.caches_features`) the
    images' features are computed once here and the batches carry them. `summary` counts the
    images, the images skipped (by name), the empty captions and the captions dropped as too
    long, for the CLI to print.
    """
    model = config.model
    if model.backbone not in BACKBONE_NORMALIZATIONS:
        raise UserError(
            f"model.backbone: expected one of {', '.join(sorted(BACKBONE_NORMALIZATIONS))}; "
            f"got {model.backbone!r}"
        )
    images, splits = make_splits(config, whole_as_test)
    if assets is None:
        train_captions = [caption for captions in splits.train.captions for caption in captions]
        assets = CaptioningAssets(
            vocabulary=tokenizers.learn_vocabulary(
                train_captions, model.vocabulary_size, model.lowercase, subwords=False
            ),
            lowercase=model.lowercase,
        )
    tokenizer = assets.tokenizer()
    cached = captioning_model.caches_features(config)
    preprocess = image_preprocessing(config)
    encoder = captioning_model.image_encoder(config) if cached else None
    datasets, dropped = {}, {}
    cache_seconds = 0.0
    for name in ("train", "validation", "test"):
        split = getattr(splits, name)
        if not split.paths:
            datasets[name] = None
            continue
        image_indices, ids, dropped[name] = caption_ids(tokenizer, split, model.max_caption_length)
        if cached:
            started = time.perf_counter()
            features = encoded_features(encoder, config, split.paths)
            cache_seconds += time.perf_counter() - started
            encoder_inputs = tf.data.Dataset.from_tensor_slices(features[image_indices])
        else:
            paths = tf.constant([split.paths[index] for index in image_indices])
            encoder_inputs = tf.data.Dataset.from_tensor_slices(paths).map(
                lambda path: preprocess(tf.io.read_file(path)),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        datasets[name] = teacher_forcing_batches(
            encoder_inputs, "features" if cached else "image", ids, config.training.batch_size,
            shuffle_seed=config.training.seed if name == "train" else None,
        )  # fmt: skip
    summary = {
        "source": images.source,
        "images": len(images.image_paths),
        "skipped_images": len(images.skipped),
        "skipped": images.skipped[:10],
        "skipped_empty_captions": images.empty_captions,
        "split": {
            name: len(getattr(splits, name).paths) for name in ("train", "validation", "test")
        },
        "captions": {
            name: sum(len(captions) for captions in getattr(splits, name).captions)
            for name in ("train", "validation", "test")
        },
        "dropped_too_long": dropped,
        "vocabulary": len(assets.vocabulary),
        "split_rule": split_rule(config, whole_as_test),
        "features_cached": cached,
    }
    if cached:
        summary["feature_cache_seconds"] = round(cache_seconds, 1)
    if config.data.source == "emoji" and not whole_as_test:
        train_captions = [captions[0] for captions in splits.train.captions]
        test_captions = [captions[0] for captions in splits.test.captions]
        summary["test_captions_with_all_parts_in_training"] = count_parts_seen_in_training(
            train_captions, test_captions
        )
    return CaptioningDatasets(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        assets=assets,
        summary=summary,
        images=splits,
    )
