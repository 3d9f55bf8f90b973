"""Token sequences: `[START]`/`[END]` packing, teacher forcing and batches by length.

`length_bucketed_batches` is the one bucketing step: elements of similar length share a batch
(`tf.data.Dataset.bucket_by_sequence_length`), padded only to their batch's longest, integer
parts with `pad_id` and float parts (weights) with 0.

Sequence-pair batches (`make_batches`): `({source_name: (batch, source_time), target_name:
(batch, target_time)}, target_out, sample_weight)`, the ids int32 and padded with `pad_id`,
where the target input is `[START] y_1 .. y_n` and `target_out` is `y_1 .. y_n [END]`
(teacher forcing), the source is `[START] x_1 .. x_m [END]`, and `sample_weight` is float32
`(batch, target_time)`: 1 on the tokens of `target_out`, 0 on its padding. The caller names the
two inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from pipelines.tokenizers import END_ID, PAD_ID, START_ID

PAIR_BUCKET_BOUNDARIES = (8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128)


def add_start_end(ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor | tf.RaggedTensor:
    """Wraps ids `(tokens,)` or ragged `(batch, tokens)` in `[START]` ... `[END]`."""
    if isinstance(ids, tf.RaggedTensor):
        batch = ids.nrows()
        start = tf.fill([batch, 1], tf.constant(START_ID, ids.dtype))
        end = tf.fill([batch, 1], tf.constant(END_ID, ids.dtype))
        return tf.concat([start, ids, end], axis=1)
    start = tf.constant([START_ID], ids.dtype)
    end = tf.constant([END_ID], ids.dtype)
    return tf.concat([start, ids, end], axis=0)


def teacher_forcing(target_ids: tf.Tensor | tf.RaggedTensor):
    """Splits `[START] y_1 .. y_n [END]` into decoder inputs and targets, shifted by one.

    Works on `(tokens,)` tensors and ragged `(batch, tokens)`; returns
    `([START] y_1 .. y_n, y_1 .. y_n [END])`.
    """
    return target_ids[..., :-1], target_ids[..., 1:]


def length_bucketed_batches(
    dataset: tf.data.Dataset,
    element_length: Callable[..., tf.Tensor],
    boundaries: Sequence[int],
    batch_size: int,
    pad_id: int = PAD_ID,
) -> tf.data.Dataset:
    """Batches elements whose `element_length(*element)` falls in the same bucket.

    `boundaries` are the bucket edges (`len(boundaries) + 1` buckets); every batch is padded to
    its own longest element, integer tensors with `pad_id` and float tensors with 0.
    """

    def padding_value(spec: tf.TensorSpec) -> tf.Tensor:
        if not (spec.dtype.is_integer or spec.dtype.is_floating):
            raise ValueError(f"`dataset` elements must be numeric to be padded. Received: {spec!r}")
        return tf.constant(pad_id if spec.dtype.is_integer else 0, spec.dtype)

    return dataset.bucket_by_sequence_length(
        element_length_func=element_length,
        bucket_boundaries=list(boundaries),
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=tf.nest.map_structure(padding_value, dataset.element_spec),
    )


def tokenize_pairs(
    pairs: list[tuple[str, str]],
    source_tokenizer,
    target_tokenizer,
    max_source_length: int,
    max_target_length: int,
):
    """Returns `(source_ids, target_ids, dropped)`: ragged ids with `[START]`/`[END]`.

    The tokenizers map strings `(batch,)` to ragged ids (`tokenizers.SentenceTokenizer`).
    Pairs whose source or target would exceed its maximum length (start and end included)
    are dropped and counted.
    """
    sources = tf.constant([source for source, _ in pairs], tf.string)
    targets = tf.constant([target for _, target in pairs], tf.string)
    source_ids = add_start_end(source_tokenizer.tokenize(sources))
    target_ids = add_start_end(target_tokenizer.tokenize(targets))
    keep = tf.logical_and(
        source_ids.row_lengths() <= max_source_length,
        target_ids.row_lengths() <= max_target_length,
    )
    dropped = int(tf.reduce_sum(tf.cast(tf.logical_not(keep), tf.int32)))
    return (
        tf.ragged.boolean_mask(source_ids, keep),
        tf.ragged.boolean_mask(target_ids, keep),
        dropped,
    )


def make_batches(
    source_ids: tf.RaggedTensor,
    target_ids: tf.RaggedTensor,
    batch_size: int,
    input_names: tuple[str, str],
    shuffle_seed: int | None = None,
    pad_id: int = PAD_ID,
) -> tf.data.Dataset:
    """Batches ragged ids by length into weighted teacher-forcing examples (module docstring).

    `input_names` names the source and the target input. Pairs are bucketed by the longer of
    source and target (`PAIR_BUCKET_BOUNDARIES`); with `shuffle_seed` they are shuffled (again
    every epoch) before bucketing.
    """
    source_name, target_name = input_names
    dataset = tf.data.Dataset.from_tensor_slices((source_ids, target_ids))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            int(source_ids.nrows()), seed=shuffle_seed, reshuffle_each_iteration=True
        )

    def to_example(source, target):
        target_in, target_out = teacher_forcing(target)
        inputs = {source_name: source, target_name: target_in}
        return inputs, target_out, tf.ones_like(target_out, tf.float32)

    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = length_bucketed_batches(
        dataset,
        lambda inputs, target_out, _: tf.maximum(
            tf.shape(inputs[source_name])[0], tf.shape(target_out)[0]
        ),
        PAIR_BUCKET_BOUNDARIES,
        batch_size,
        pad_id,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
