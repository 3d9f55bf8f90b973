import pytest
import tensorflow as tf

from pipelines.tokenizers import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNKNOWN_ID,
    SentenceTokenizer,
    learn_vocabulary,
    split_words,
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


def test_split_words_splits_like_bert_on_spaces_punctuation_ideographs_and_controls():
    words = split_words(tf.constant(["Hello, World! It's 東京 a\u200bb\tc", ""]), lowercase=False)
    assert [[word.decode("utf-8") for word in row] for row in words.to_list()] == [
        ["Hello", ",", "World", "!", "It", "'", "s", "東", "京", "a", "b", "c"],
        [],
    ]
