"""Text to token ids, the same way in training pipelines and in exported serving graphs.

`clean_text` makes any byte string safe (invalid UTF-8 replaced, length capped) before it is
split into words; `token_ids` turns a batch of cleaned strings into right-padded ids with at
least one token per row (an empty text becomes a single [UNK]), so recurrent kernels (cuDNN
included) never see a zero-length sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from pipelines.sequences import length_bucketed_batches
from pipelines.tokenizers import PAD_ID

UNKNOWN_ID = 1


def clean_text(text: tf.Tensor, max_characters: int) -> tf.Tensor:
    """Replaces invalid UTF-8 with U+FFFD and keeps the first `max_characters` characters."""
    text = tf.strings.unicode_transcode(
        text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
    return tf.strings.substr(text, 0, max_characters, unit="UTF8_CHAR")


def make_vectorizer(
    vocabulary: Sequence[str] | None = None, vocabulary_size: int | None = None
) -> keras.layers.TextVectorization:
    """A word-level TextVectorization (lowercase, punctuation stripped) with ragged output.

    Pass `vocabulary` (as returned by `get_vocabulary()`, padding and [UNK] first) to rebuild a
    fitted one, or `vocabulary_size` to make one for `adapt`.
    """
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocabulary_size, output_mode="int", ragged=True, name="vectorizer"
    )
    if vocabulary is not None:
        vectorizer.set_vocabulary(list(vocabulary))
    return vectorizer


def adapt_vectorizer(
    texts: Sequence[str], vocabulary_size: int, max_characters: int
) -> keras.layers.TextVectorization:
    """A vectorizer whose vocabulary is the `vocabulary_size` most frequent words of `texts`."""
    vectorizer = make_vectorizer(vocabulary_size=vocabulary_size)
    cleaned = tf.data.Dataset.from_tensor_slices(list(texts)).batch(512)
    vectorizer.adapt(cleaned.map(lambda batch: clean_text(batch, max_characters)))
    return vectorizer


def token_ids(
    vectorizer: keras.layers.TextVectorization, text: tf.Tensor, max_length: int
) -> tf.Tensor:
    """Cleaned strings (batch,) -> int64 ids (batch, time), 1 <= time <= max_length.

    A scalar string gives ids of shape (time,), padding-free.
    """
    if text.shape.rank == 0:
        return token_ids(vectorizer, text[None], max_length)[0]
    ragged = vectorizer(text)[:, :max_length]
    lengths = ragged.row_lengths()
    dense = ragged.to_tensor(default_value=PAD_ID)
    missing_columns = tf.maximum(1 - tf.shape(dense)[1], 0)
    dense = tf.pad(dense, [[0, 0], [0, missing_columns]])  # (batch, max(time, 1))
    first = tf.where(lengths > 0, dense[:, 0], tf.constant(UNKNOWN_ID, dense.dtype))
    return tf.concat([first[:, None], dense[:, 1:]], axis=1)


def bucket_boundaries(lengths: Sequence[int], buckets: int) -> list[int]:
    """Sequence-length boundaries at evenly spaced quantiles of `lengths`, for bucketing."""
    if buckets < 2:
        return []
    quantiles = np.quantile(np.asarray(lengths), np.linspace(0, 1, buckets + 1)[1:-1])
    return sorted({int(value) + 1 for value in quantiles})


def classification_dataset(
    texts: Sequence[str],
    label_ids: Sequence[int],
    vectorizer: keras.layers.TextVectorization,
    max_characters: int,
    max_length: int,
    batch_size: int,
    boundaries: Sequence[int],
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """(text, label id) pairs -> length-bucketed batches of (ids, label id), cached, prefetched.

    Token ids are computed once and cached; with `shuffle_seed` the examples are reshuffled
    every epoch (seeded) before bucketing.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(texts), tf.string), tf.constant(list(label_ids), tf.int32))
    )
    dataset = dataset.batch(256).map(
        lambda text, label: (
            token_ids(vectorizer, clean_text(text, max_characters), max_length),
            label,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.unbatch().map(lambda ids, label: (tf.boolean_mask(ids, ids != PAD_ID), label))
    dataset = dataset.cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(texts), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = length_bucketed_batches(
        dataset, lambda ids, _: tf.shape(ids)[0], boundaries, batch_size
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
