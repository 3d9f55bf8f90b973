import numpy as np
import pytest
import tensorflow as tf

from pipelines.errors import DataError
from pipelines.translation import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNKNOWN_ID,
    SentenceTokenizer,
    add_start_end,
    learn_vocabulary,
    make_batches,
    split_pairs,
    teacher_forcing,
    tokenize_pairs,
)

TEXTS = [
    "Hello, World! It's well-nigh over.",
    "The café (on the corner) is open?",
    "Wir müssen miteinander reden!",
    "the world is small.",
]


@pytest.fixture(scope="module")
def word_tokenizer():
    return SentenceTokenizer(learn_vocabulary(TEXTS, 100, lowercase=True, subwords=False), True)


def strings(tensor):
    return [value.decode("utf-8") for value in tensor.numpy().tolist()]


def test_word_level_round_trip_gives_the_normalized_text(word_tokenizer):
    ids = word_tokenizer.tokenize(tf.constant(TEXTS))
    assert strings(word_tokenizer.detokenize(ids)) == [
        "hello, world! it's well-nigh over.",
        "the café (on the corner) is open?",
        "wir müssen miteinander reden!",
        "the world is small.",
    ]
    assert strings(word_tokenizer.canonical(tf.constant(TEXTS))) == strings(
        word_tokenizer.detokenize(ids)
    )


def test_vocabulary_starts_with_reserved_tokens_and_ranks_by_frequency(word_tokenizer):
    vocabulary = word_tokenizer.vocabulary
    assert vocabulary[:4] == list(RESERVED_TOKENS)
    # "the" thrice, then four tokens twice each in alphabetical order.
    assert vocabulary[4:9] == ["the", "!", ".", "is", "world"]
    assert len(vocabulary) == len(set(vocabulary))


def test_unknown_words_map_to_the_unknown_token(word_tokenizer):
    ids = word_tokenizer.tokenize(tf.constant(["hello zebra world"])).to_list()[0]
    assert ids[1] == UNKNOWN_ID and UNKNOWN_ID not in (ids[0], ids[2])
    assert strings(word_tokenizer.detokenize(tf.ragged.constant([ids]))) == ["hello [UNK] world"]


def test_composed_and_decomposed_accents_tokenize_alike(word_tokenizer):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    ids = word_tokenizer.tokenize(tf.constant([composed, decomposed])).to_list()
    assert ids[0] == ids[1] and UNKNOWN_ID not in ids[0]


def test_bad_bytes_empty_and_long_inputs_do_not_crash(word_tokenizer):
    ids = word_tokenizer.tokenize(tf.constant([b"hello \xff\xfe world", b"", b"a" * 10000]))
    rows = ids.to_list()
    assert rows[1] == []
    assert rows[0][0] != UNKNOWN_ID and rows[0][-1] != UNKNOWN_ID
    assert rows[2] == [UNKNOWN_ID]


def test_detokenize_drops_reserved_tokens_and_stops_at_end(word_tokenizer):
    hello, world = word_tokenizer.tokenize(tf.constant(["hello world"])).to_list()[0]
    dense = tf.constant([[START_ID, hello, world, END_ID, hello, PAD_ID]])
    assert strings(word_tokenizer.detokenize(dense)) == ["hello world"]


def test_subword_vocabulary_rebuilds_unseen_words_from_pieces():
    texts = ["play player playing played plays replay"] * 30 + ["ring rings ringing"] * 30
    vocabulary = learn_vocabulary(texts, 60, lowercase=True, subwords=True)
    assert vocabulary[:4] == list(RESERVED_TOKENS)
    assert any(token.startswith("##") for token in vocabulary)
    tokenizer = SentenceTokenizer(vocabulary, lowercase=True)
    ids = tokenizer.tokenize(tf.constant(["Replaying rings"]))
    assert UNKNOWN_ID not in ids.flat_values.numpy()
    assert strings(tokenizer.detokenize(ids)) == ["replaying rings"]


def test_tokenizer_works_inside_dataset_map(word_tokenizer):
    dataset = tf.data.Dataset.from_tensor_slices(TEXTS).batch(2).map(word_tokenizer.tokenize)
    rows = [row for batch in dataset for row in batch.to_list()]
    assert rows == word_tokenizer.tokenize(tf.constant(TEXTS)).to_list()


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


def test_split_deduplicates_sources_and_keeps_them_in_one_split():
    sources = [f"sentence {index % 50}" for index in range(100)]
    targets = [f"satz {index}" for index in range(100)]
    splits = split_pairs(sources, targets, 0.1, 0.2, seed=3)
    assert splits.duplicates == 50
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (35, 5, 10)
    parts = [
        {source for source, _ in part} for part in (splits.train, splits.validation, splits.test)
    ]
    assert sum(len(part) for part in parts) == len(set().union(*parts)) == 50
    again = split_pairs(sources, targets, 0.1, 0.2, seed=3)
    assert again.test == splits.test
    with pytest.raises(DataError, match="too few"):
        split_pairs(sources[:2], targets[:2], 0.5, 0.4, seed=3)


def test_batches_are_padded_teacher_forcing_examples_grouped_by_length(word_tokenizer):
    short = [("hello world", "the world")] * 6
    long = [("the café on the corner is open", "wir müssen miteinander reden hello world")] * 6
    source_ids, target_ids, dropped = tokenize_pairs(
        short + long + [("hello " * 40, "world")], word_tokenizer, word_tokenizer, 20, 20
    )
    assert dropped == 1
    batches = list(make_batches(source_ids, target_ids, batch_size=4, shuffle_seed=0))
    assert sum(int(targets.shape[0]) for _, targets in batches) == 12
    for inputs, targets in batches:
        source, target_in = inputs["source"].numpy(), inputs["target_in"].numpy()
        assert target_in.shape == targets.shape
        assert np.all(source[:, 0] == START_ID) and np.all(target_in[:, 0] == START_ID)
        np.testing.assert_array_equal(target_in[:, 1:], targets.numpy()[:, :-1])
        lengths = np.count_nonzero(source, axis=1)
        assert lengths.min() == lengths.max()  # short and long pairs never share a batch
        assert source.dtype == np.int32
