"""Sentences to word-level or subword token ids and back, inside the graph.

Tokenization (`SentenceTokenizer`, TF and TF Text ops only, so it is exported with the model):
invalid UTF-8 bytes become U+FFFD, the text is NFKD-normalized and optionally lower-cased, then
`tensorflow_text.BertTokenizer` splits it on whitespace and punctuation and maps each word to
word-level ids or WordPiece subword ids, depending on the vocabulary: a vocabulary of whole
words gives word-level tokens (an unknown word becomes `[UNK]`), one learned with
`tensorflow_text`'s WordPiece learner gives subwords. Ids 0-3 are the reserved tokens
`[PAD]`, `[UNK]`, `[START]`, `[END]`; `PAD_ID` is the padding id of every pipeline.
"""

from __future__ import annotations

import collections

import tensorflow as tf
import tensorflow_text as text

from pipelines.errors import DataError

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[START]", "[END]")
PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3

# The word split of `BertTokenizer` (BERT's basic tokenizer without lower-casing): split on
# whitespace, punctuation and CJK ideographs, keeping all but the whitespace as words.
_KEPT_DELIMITERS = "|".join(
    [
        r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]",
        r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]"
        r"|[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]",
    ]
)
_DELIMITERS = r"\s+|" + _KEPT_DELIMITERS
_CONTROL_CHARACTERS = r"\p{Cc}|\p{Cf}"

# Spaces that the word split put around punctuation, removed again for readable output.
_SPACE_BEFORE_PUNCTUATION = r" ([.,!?;:%)\]}»“”])"
_SPACE_AFTER_PUNCTUATION = r"([(\[{«„¿¡]) "
_SPACES_IN_WORDS = r"([\pL\pN]) ?([-'’/]) ?([\pL\pN])"


def normalize(texts: tf.Tensor, lowercase: bool) -> tf.Tensor:
    """Replaces invalid UTF-8, applies NFKD and optionally lower-cases; any shape of strings."""
    texts = tf.strings.unicode_transcode(
        texts, input_encoding="UTF-8", output_encoding="UTF-8", errors="replace"
    )
    texts = text.normalize_utf8(texts, "NFKD")
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.strip(texts)


def split_words(texts: tf.Tensor, lowercase: bool) -> tf.RaggedTensor:
    """Normalizes `texts` `(batch,)` and splits them into words and punctuation."""
    texts = tf.strings.regex_replace(normalize(texts, lowercase), _CONTROL_CHARACTERS, " ")
    return text.regex_split(texts, _DELIMITERS, _KEPT_DELIMITERS)


def join_words(words: tf.RaggedTensor) -> tf.Tensor:
    """Joins words `(batch, words)` into readable NFC sentences `(batch,)`."""
    sentences = tf.strings.reduce_join(words, axis=-1, separator=" ")
    sentences = tf.strings.regex_replace(sentences, _SPACE_BEFORE_PUNCTUATION, r"\1")
    sentences = tf.strings.regex_replace(sentences, _SPACE_AFTER_PUNCTUATION, r"\1")
    sentences = tf.strings.regex_replace(sentences, _SPACES_IN_WORDS, r"\1\2\3")
    return text.normalize_utf8(sentences, "NFC")


def learn_vocabulary(
    texts: list[str], vocabulary_size: int, lowercase: bool, subwords: bool
) -> list[str]:
    """Learns a vocabulary (reserved tokens first) from the training texts.

    Word level: the `vocabulary_size - 4` most frequent words, ties broken alphabetically.
    Subwords: a WordPiece vocabulary of at most about `vocabulary_size` entries, learned by
    `tensorflow_text`'s WordPiece learner (the one behind `bert_vocab_from_dataset`) from the
    word counts, with pieces of up to 8 characters seen 3 or more times and 2 iterations:
    about 20 s on 18,000 sentences, where the defaults take 3 minutes.
    """
    if vocabulary_size <= len(RESERVED_TOKENS):
        raise ValueError(
            f"`vocabulary_size` must be larger than {len(RESERVED_TOKENS)}. "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    if not texts:
        raise DataError("cannot learn a vocabulary from no texts")
    counts = collections.Counter()
    for batch in tf.data.Dataset.from_tensor_slices(texts).batch(1024):
        words = split_words(batch, lowercase).flat_values.numpy()
        counts.update(word.decode("utf-8") for word in words)
    for token in RESERVED_TOKENS:
        counts.pop(token, None)
    if subwords:
        from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib

        return wordpiece_tokenizer_learner_lib.learn(
            list(counts.items()),
            vocab_size=vocabulary_size,
            reserved_tokens=list(RESERVED_TOKENS),
            lower_thresh=3,
            max_token_length=8,
            num_iterations=2,
        )
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = [word for word, _ in ranked[: vocabulary_size - len(RESERVED_TOKENS)]]
    return list(RESERVED_TOKENS) + words


class SentenceTokenizer(tf.Module):
    """Maps sentences to token ids and back, inside the graph (see the module docstring).

    Args:
        vocabulary: the tokens, reserved tokens first (`learn_vocabulary`).
        lowercase: lower-case the text before the lookup.

    Example:

    ```python
    tokenizer = SentenceTokenizer(learn_vocabulary(texts, 8000, True, subwords=True), True)
    ids = tokenizer.tokenize(tf.constant(["Guten Morgen!"]))  # ragged (batch, tokens)
    tokenizer.detokenize(ids)  # ["guten morgen!"]
    ```
    """

    def __init__(self, vocabulary: list[str], lowercase: bool, name: str | None = None):
        super().__init__(name=name)
        if list(vocabulary[: len(RESERVED_TOKENS)]) != list(RESERVED_TOKENS):
            raise ValueError(
                f"`vocabulary` must start with {list(RESERVED_TOKENS)}. "
                f"Received: {list(vocabulary[: len(RESERVED_TOKENS)])}"
            )
        self.vocabulary = list(vocabulary)
        self.lowercase = lowercase
        self.table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.vocabulary),
                tf.range(len(self.vocabulary), dtype=tf.int64),
            ),
            num_oov_buckets=1,
        )
        self.bert_tokenizer = text.BertTokenizer(
            self.table, lower_case=False, unknown_token="[UNK]", token_out_type=tf.int64
        )

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Strings `(batch,)` -> int32 ragged ids `(batch, tokens)`, without start/end."""
        word_pieces = self.bert_tokenizer.tokenize(normalize(texts, self.lowercase))
        # (batch, words, pieces) -> (batch, tokens)
        return tf.cast(word_pieces.merge_dims(-2, -1), tf.int32)

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """Ids `(batch, tokens)` -> readable strings `(batch,)`; ids after `[END]` are dropped.

        `[PAD]`, `[START]` and `[END]` are left out, `[UNK]` is kept. The text is recomposed
        (NFC) and the spaces the tokenizer put around punctuation are removed.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int64)
        before_end = tf.equal(tf.math.cumsum(tf.cast(ids == END_ID, tf.int32), axis=1), 0)
        wanted = tf.logical_or(ids == UNKNOWN_ID, ids >= len(RESERVED_TOKENS))
        keep = tf.logical_and(before_end, wanted)
        return join_words(self.bert_tokenizer.detokenize(tf.ragged.boolean_mask(ids, keep)))

    def canonical(self, texts: tf.Tensor) -> tf.Tensor:
        """`texts` as a perfect translation would come out: normalized like the tokenizer."""
        return join_words(split_words(texts, self.lowercase))
