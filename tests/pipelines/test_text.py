import numpy as np
import pytest
import tensorflow as tf

from pipelines import text


@pytest.fixture(scope="module")
def vectorizer():
    return text.adapt_vectorizer(["a good film", "a bad film", "very good"], 100, 100)


def test_vocabulary_is_ordered_by_frequency_with_reserved_ids_first(vectorizer):
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"]
    assert set(vocabulary[2:5]) == {"good", "film", "a"}
    rebuilt = text.make_vectorizer(vocabulary)
    assert rebuilt.get_vocabulary() == vocabulary


def test_clean_text_replaces_invalid_utf8_and_truncates_characters():
    cleaned = text.clean_text(tf.constant([b"caf\xc3\xa9 ok", b"bad \xff byte", b"abcdef"]), 4)
    assert [value.decode() for value in cleaned.numpy()] == ["café", "bad ", "abcd"]
    replaced = text.clean_text(tf.constant(b"x\xffy"), 10).numpy().decode()
    assert replaced == "x\ufffdy"


def test_token_ids_pad_right_truncate_and_never_return_an_empty_row(vectorizer):
    vocabulary = vectorizer.get_vocabulary()
    good, film = vocabulary.index("good"), vocabulary.index("film")
    ids = text.token_ids(
        vectorizer, tf.constant(["Good film!", "", "   ", "good " * 50, "unseen"]), 3
    ).numpy()
    np.testing.assert_array_equal(
        ids,
        [
            [good, film, 0],
            [text.UNKNOWN_ID, 0, 0],
            [text.UNKNOWN_ID, 0, 0],
            [good, good, good],
            [text.UNKNOWN_ID, 0, 0],
        ],
    )
    all_empty = text.token_ids(vectorizer, tf.constant(["", ""]), 3).numpy()
    np.testing.assert_array_equal(all_empty, [[text.UNKNOWN_ID], [text.UNKNOWN_ID]])


def test_token_ids_work_unbatched_and_inside_dataset_map(vectorizer):
    eager = text.token_ids(vectorizer, tf.constant("good film"), 10).numpy().tolist()
    dataset = tf.data.Dataset.from_tensor_slices(["good film"]).map(
        lambda value: text.token_ids(vectorizer, text.clean_text(value, 50), 10)
    )
    assert [row.numpy().tolist() for row in dataset] == [eager]
    assert len(eager) == 2


def test_bucket_boundaries_follow_length_quantiles():
    assert text.bucket_boundaries(list(range(1, 101)), 4) == [26, 51, 76]
    assert text.bucket_boundaries([5] * 10, 4) == [6]
    assert text.bucket_boundaries([1, 2, 3], 1) == []


def test_classification_batches_are_padded_only_to_their_own_longest_row(vectorizer):
    texts = ["good"] * 8 + [" ".join(["good film"] * 20)] * 8
    dataset = text.classification_dataset(
        texts, [0] * 8 + [1] * 8, vectorizer, 1000, 100, 4, [5], shuffle_seed=3
    )
    widths = {}
    for ids, labels in dataset:
        assert ids.dtype == tf.int64 and ids.shape[0] == labels.shape[0] == 4
        widths.setdefault(int(labels[0]), set()).add(ids.shape[1])
        assert len(set(labels.numpy().tolist())) == 1
    assert widths == {0: {1}, 1: {40}}
