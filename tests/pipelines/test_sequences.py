import numpy as np
import pytest
import tensorflow as tf

from pipelines.sequences import (
    add_start_end,
    length_bucketed_batches,
    make_batches,
    teacher_forcing,
    tokenize_pairs,
)
from pipelines.tokenizers import END_ID, PAD_ID, START_ID, SentenceTokenizer, learn_vocabulary

TEXTS = ["hello world", "the café on the corner is open", "wir müssen miteinander reden"]


@pytest.fixture(scope="module")
def word_tokenizer():
    return SentenceTokenizer(learn_vocabulary(TEXTS, 100, lowercase=True, subwords=False), True)


def test_teacher_forcing_shifts_by_one_token():
    target = add_start_end(tf.constant([7, 8, 9]))
    np.testing.assert_array_equal(target, [START_ID, 7, 8, 9, END_ID])
    inputs, outputs = teacher_forcing(target)
    np.testing.assert_array_equal(inputs, [START_ID, 7, 8, 9])
    np.testing.assert_array_equal(outputs, [7, 8, 9, END_ID])
    ragged = add_start_end(tf.ragged.constant([[5], [6, 7]]))
    inputs, outputs = teacher_forcing(ragged)
    assert inputs.to_list() == [[START_ID, 5], [START_ID, 6, 7]]
    assert outputs.to_list() == [[5, END_ID], [6, 7, END_ID]]


def test_batches_are_weighted_teacher_forcing_examples_grouped_by_length(word_tokenizer):
    short = [("hello world", "the world")] * 6
    long = [("the café on the corner is open", "wir müssen miteinander reden hello world")] * 6
    source_ids, target_ids, dropped = tokenize_pairs(
        short + long + [("hello " * 40, "world")], word_tokenizer, word_tokenizer, 20, 20
    )
    assert dropped == 1
    dataset = make_batches(source_ids, target_ids, 4, ("words", "shifted"), shuffle_seed=0)
    batches = list(dataset)
    assert sum(int(targets.shape[0]) for _, targets, _ in batches) == 12
    for inputs, targets, weights in batches:
        assert set(inputs) == {"words", "shifted"}
        source, target_in = inputs["words"].numpy(), inputs["shifted"].numpy()
        assert target_in.shape == targets.shape == weights.shape
        assert np.all(source[:, 0] == START_ID) and np.all(target_in[:, 0] == START_ID)
        np.testing.assert_array_equal(target_in[:, 1:], targets.numpy()[:, :-1])
        lengths = np.count_nonzero(source, axis=1)
        assert lengths.min() == lengths.max()  # short and long pairs never share a batch
        assert source.dtype == np.int32 and weights.dtype == np.float32


def test_sample_weight_is_one_on_target_tokens_and_zero_on_padding():
    source_ids = tf.ragged.constant([[2, 5, 3], [2, 5, 6, 3]], tf.int32)
    target_ids = tf.ragged.constant([[2, 7, 8, 9, 3], [2, 7, 3]], tf.int32)
    (inputs, targets, weights) = next(iter(make_batches(source_ids, target_ids, 2, ("a", "b"))))
    np.testing.assert_array_equal(inputs["a"], [[2, 5, 3, PAD_ID], [2, 5, 6, 3]])
    np.testing.assert_array_equal(inputs["b"], [[2, 7, 8, 9], [2, 7, PAD_ID, PAD_ID]])
    np.testing.assert_array_equal(targets, [[7, 8, 9, 3], [7, 3, PAD_ID, PAD_ID]])
    np.testing.assert_array_equal(weights, [[1, 1, 1, 1], [1, 1, 0, 0]])


def test_length_bucketed_batches_pad_integers_with_pad_id_and_floats_with_zero():
    rows = [[5], [6, 7], [8, 9, 10], [1, 2, 3, 4, 5, 6]]
    dataset = tf.data.Dataset.from_generator(
        lambda: ((row, [0.5] * len(row), 1) for row in rows),
        output_signature=(
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([], tf.int32),
        ),
    )
    batches = list(
        length_bucketed_batches(dataset, lambda ids, *_: tf.shape(ids)[0], [3], 2, pad_id=-1)
    )
    assert [ids.numpy().tolist() for ids, _, _ in batches] == [
        [[5, -1], [6, 7]],
        [[8, 9, 10, -1, -1, -1], [1, 2, 3, 4, 5, 6]],
    ]
    np.testing.assert_array_equal(batches[0][1], [[0.5, 0.0], [0.5, 0.5]])
    np.testing.assert_array_equal(batches[1][2], [1, 1])
