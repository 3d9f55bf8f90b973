"""Translation pipeline: split sentence pairs, tokenize them in the graph, batch by length.

Tokenization (`SentenceTokenizer`, TF and TF Text ops only, so it is exported with the model):
invalid UTF-8 bytes become U+FFFD, the text is NFKD-normalized and optionally lower-cased, then
`tensorflow_text.BertTokenizer` splits it on whitespace and punctuation and maps each word to
word-level ids or WordPiece subword ids, depending on the vocabulary: a vocabulary of whole
words gives word-level tokens (an unknown word becomes `[UNK]`), one learned with
`tensorflow_text`'s WordPiece learner gives subwords. Ids 0-3 are the reserved tokens
`[PAD]`, `[UNK]`, `[START]`, `[END]`.

Batches: `({"source": (batch, source_time), "target_in": (batch, target_time)}, target_out)`,
int32 and zero-padded, where `target_in` is `[START] y_1 .. y_n` and `target_out` is
`y_1 .. y_n [END]` (teacher forcing); the source is `[START] x_1 .. x_m [END]`. Pairs of
similar length share a batch (`tf.data.Dataset.bucket_by_sequence_length`).
"""

from __future__ import annotations

import collections
import dataclasses
import random

import tensorflow as tf
import tensorflow_text as text
from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer

from pipelines.errors import DataError

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[START]", "[END]")
PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
BUCKET_BOUNDARIES = (8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128)

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
    return BasicTokenizer(lower_case=False).tokenize(normalize(texts, lowercase))


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


@dataclasses.dataclass
class PairSplits:
    """Deduplicated pairs split into train, validation and test (lists of (source, target))."""

    train: list[tuple[str, str]]
    validation: list[tuple[str, str]]
    test: list[tuple[str, str]]
    # Pairs dropped because their source sentence was already seen.
    duplicates: int


def split_pairs(
    sources: list[str],
    targets: list[str],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
) -> PairSplits:
    """Deduplicates by source sentence (first pair kept) and splits with a seeded shuffle.

    No source sentence lands in two splits. Each non-zero fraction gives at least one pair.
    """
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")
    seen = {}
    for source, target in zip(sources, targets, strict=True):
        seen.setdefault(source, target)
    pairs = list(seen.items())
    random.Random(seed).shuffle(pairs)
    test_size = max(1, round(len(pairs) * test_fraction)) if test_fraction else 0
    validation_size = max(1, round(len(pairs) * validation_fraction)) if validation_fraction else 0
    if test_size + validation_size >= len(pairs):
        raise DataError(
            f"{len(pairs)} distinct sentence pairs are too few for validation_fraction="
            f"{validation_fraction} and test_fraction={test_fraction}"
        )
    return PairSplits(
        train=pairs[test_size + validation_size :],
        validation=pairs[test_size : test_size + validation_size],
        test=pairs[:test_size],
        duplicates=len(sources) - len(pairs),
    )


def tokenize_pairs(
    pairs: list[tuple[str, str]],
    source_tokenizer: SentenceTokenizer,
    target_tokenizer: SentenceTokenizer,
    max_source_length: int,
    max_target_length: int,
):
    """Returns `(source_ids, target_ids, dropped)`: ragged ids with `[START]`/`[END]`.

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
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """Batches ragged ids by length into teacher-forcing examples (see the module docstring).

    With `shuffle_seed` the pairs are shuffled (again every epoch) before bucketing.
    """
    dataset = tf.data.Dataset.from_tensor_slices((source_ids, target_ids))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(
            int(source_ids.nrows()), seed=shuffle_seed, reshuffle_each_iteration=True
        )

    def to_example(source, target):
        target_in, target_out = teacher_forcing(target)
        return {"source": source, "target_in": target_in}, target_out

    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.bucket_by_sequence_length(
        lambda inputs, target_out: tf.maximum(
            tf.shape(inputs["source"])[0], tf.shape(target_out)[0]
        ),
        bucket_boundaries=list(BUCKET_BOUNDARIES),
        bucket_batch_sizes=[batch_size] * (len(BUCKET_BOUNDARIES) + 1),
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
