"""Token generation from any encoder and a recurrent decoder: greedy, beam search, sampling.

A `Generator` joins the pieces an encoder-decoder model is made of into the searches of
`layers.search`: an encoder function, the target embedding, the decoder, the output layer over
the vocabulary, the special token ids and a length policy. Translation (source sentence ->
recurrent encoder -> attention decoder), captioning (image feature grid -> the same attention
decoder) and text generation (no encoder context: the encoder function only sets the initial
state and the first tokens, e.g. from a prompt) differ only in their encoder function. A
search that needs no decoder, such as CTC decoding, reads the same `Generator.encode` outputs.
Everything is `keras.ops`, so one `tf.function` with a `None` batch size holds the encoder,
the decoding loop and the output layer, and exports them into a SavedModel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import keras_hub
from keras import ops

from layers.arguments import check_positive_integers
from layers.search import NEGATIVE_INFINITY, beam_search, greedy_search, sample_search


@dataclasses.dataclass
class Encoding:
    """What an encoder function gives the searches.

    Attributes:
        state: nested structure of `(batch, ...)` tensors, the decoder's initial state.
        context: dict of the decoder step's keyword arguments besides its inputs and states,
            `(batch, ...)` tensors or `None` (e.g. `attention_context`); `{}` for a decoder
            without encoder context.
        lengths: optional int tensor `(batch,)`, the input lengths the length policy scales
            (e.g. source tokens without [START] and [END]); `None` with a fixed maximum.
        start_tokens: optional int tensor `(batch,)`, the first decoder inputs (e.g. the last
            token of a prompt); `None`: the generator's `start_token_id` for every row.
    """

    state: Any
    context: dict[str, Any]
    lengths: Any = None
    start_tokens: Any = None


def attention_context(decoder, sequences, mask=None) -> dict[str, Any]:
    """The step context of a `layers.attention_decoder.AttentionDecoder` over `sequences`.

    `sequences` `(batch, time, features)` are the encoder outputs (recurrent outputs, or image
    features flattened to a sequence), `mask` `(batch, time)` their valid steps or `None`. The
    attention keys are projected once here, not at every step.
    """
    return {
        "encoder_sequences": sequences,
        "keys": decoder.attention_keys(sequences),
        "encoder_mask": mask,
    }


@dataclasses.dataclass(frozen=True)
class GreedySearch:
    """The most probable token at every step (`layers.search.greedy_search`); no n-gram of
    `no_repeat_ngram_size` tokens twice (0: no blocking)."""

    no_repeat_ngram_size: int = 0

    def __call__(self, step_function, state, context, start_tokens, end_token_id,
                 maximum_lengths, pad_token_id):  # fmt: skip
        return greedy_search(
            step_function, state, context, start_tokens, end_token_id, maximum_lengths,
            pad_token_id=pad_token_id, no_repeat_ngram_size=self.no_repeat_ngram_size,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class BeamSearch:
    """The best of `width` hypotheses, ranked with a GNMT length penalty (`beam_search`); no
    n-gram of `no_repeat_ngram_size` tokens twice in a hypothesis (0: no blocking)."""

    width: int = 4
    length_penalty: float = 0.0
    no_repeat_ngram_size: int = 0

    def __post_init__(self):
        check_positive_integers(width=self.width)

    def __call__(self, step_function, state, context, start_tokens, end_token_id,
                 maximum_lengths, pad_token_id):  # fmt: skip
        return beam_search(
            step_function, state, context, start_tokens, end_token_id, maximum_lengths,
            beam_width=self.width, length_penalty=self.length_penalty,
            pad_token_id=pad_token_id, no_repeat_ngram_size=self.no_repeat_ngram_size,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Seeded, stateless sampling with temperature, top-k and top-p (`sample_search`); no
    n-gram of `no_repeat_ngram_size` tokens twice (0: no blocking)."""

    seed: int
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    no_repeat_ngram_size: int = 0

    def __call__(self, step_function, state, context, start_tokens, end_token_id,
                 maximum_lengths, pad_token_id):  # fmt: skip
        return sample_search(
            step_function, state, context, start_tokens, end_token_id, maximum_lengths,
            seed=self.seed, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
            pad_token_id=pad_token_id, no_repeat_ngram_size=self.no_repeat_ngram_size,
        )  # fmt: skip


def output_kernel(output_layer):
    """The `(units, vocabulary)` kernel of a Dense output layer or a tied reversible embedding."""
    if not isinstance(output_layer, keras_hub.layers.ReversibleEmbedding):
        return output_layer.kernel
    if output_layer.tie_weights:
        return ops.transpose(output_layer.embeddings)
    return output_layer.reverse_embeddings


class Generator:
    """Generates token sequences with an encoder function and a recurrent decoder.

    At every step the previous tokens are looked up in `embedding`, `decoder.step` advances
    the state, and `output_layer`'s kernel and bias give the logits, with the suppressed
    tokens' logits lowered to -1e9 (folded into the bias, one pass over the vocabulary).
    Each sequence may produce `max_length` tokens (the end token included), or, with
    `length_ratio`, `ceil(length_ratio * lengths) + length_offset` tokens clipped to
    `[1, max_length]`, where `lengths` are the encoder function's input lengths. Rows are
    independent: a batch gives each row what the row alone would get (sampling aside, whose
    draws follow the row's place in the batch). Masking: the encoder function passes its
    masks in the context (`None` entries are allowed).

    Args:
        encode: callable `inputs -> Encoding` (the encoder function).
        embedding: the target `keras.layers.Embedding` (its `embeddings` table is used).
        decoder: a layer with `step(inputs, state, **context)` returning the outputs
            `(batch, units)` and the new state first (as
            `layers.attention_decoder.AttentionDecoder.step`).
        output_layer: the `keras.layers.Dense` (linear) from decoder outputs to the vocabulary,
            or the tied `keras_hub.layers.ReversibleEmbedding` (its transposed table).
        start_token_id: the first decoder input of every row, unless the encoding sets them.
        end_token_id: the token that ends a sequence.
        pad_token_id: the token written after the end of a sequence.
        suppressed_token_ids: tokens never generated (e.g. padding and the start token).
        max_length: the most tokens a sequence may produce, end token included.
        length_ratio: scale the encoding's `lengths` into per-row maxima (0: every row gets
            `length_offset`); `None`: every row gets `max_length`.
        length_offset: added to the scaled lengths.

    Call arguments (`generate`):
        inputs: whatever `encode` takes, batch-major.
        search: `GreedySearch()`, `BeamSearch(width, length_penalty)` or
            `Sampling(seed, temperature, top_k, top_p)`.

    Returns:
        `(tokens, scores)`: int32 `(batch, longest maximum)`, `pad_token_id` after the end
        token, and float32 `(batch,)` log-probabilities of the produced tokens.

    Example:

    ```python
    def encode(source_ids):
        mask = ops.not_equal(source_ids, 0)
        sequences, states = encoder(source_embedding(source_ids), mask=mask)
        return Encoding(states, attention_context(decoder, sequences, mask),
                        lengths=ops.sum(ops.cast(mask, "int32"), axis=1))

    generator = Generator(encode, target_embedding, decoder, logits, start_token_id=2,
                          end_token_id=3, suppressed_token_ids=(0, 2), max_length=64,
                          length_ratio=1.5, length_offset=5)
    tokens, scores = generator.generate(source_ids, BeamSearch(width=4, length_penalty=0.6))
    ```

    References:
        - Sutskever et al., "Sequence to Sequence Learning with Neural Networks", 2014.
        - Wu et al., "Google's Neural Machine Translation System", 2016 (length limits).
    """

    def __init__(
        self,
        encode,
        embedding,
        decoder,
        output_layer,
        start_token_id,
        end_token_id,
        pad_token_id=0,
        suppressed_token_ids=(),
        max_length=64,
        length_ratio=None,
        length_offset=0,
    ):
        check_positive_integers(max_length=max_length)
        if length_ratio is not None and not (length_ratio >= 0 and math.isfinite(length_ratio)):
            raise ValueError(
                f"`length_ratio` must be a non-negative number or None. "
                f"Received: length_ratio={length_ratio!r}"
            )
        self.encode = encode
        self.embedding = embedding
        self.decoder = decoder
        self.output_layer = output_layer
        self.start_token_id = start_token_id
        self.end_token_id = end_token_id
        self.pad_token_id = pad_token_id
        self.suppressed_token_ids = tuple(suppressed_token_ids)
        self.max_length = max_length
        self.length_ratio = length_ratio
        self.length_offset = length_offset
        vocabulary_size = output_kernel(output_layer).shape[-1]
        self.suppression = ops.where(
            ops.isin(ops.arange(vocabulary_size), list(self.suppressed_token_ids)),
            NEGATIVE_INFINITY,
            0.0,
        )

    def maximum_lengths(self, encoding: Encoding, batch_size):
        """The per-row maximum output lengths `(batch,)` of the length policy."""
        if self.length_ratio is None:
            return ops.full((batch_size,), self.max_length, dtype="int32")
        limits = ops.ceil(ops.cast(encoding.lengths, "float32") * self.length_ratio)
        limits = ops.cast(limits, "int32") + self.length_offset
        return ops.clip(limits, 1, self.max_length)

    def step(self, tokens, state, context):
        """One decoding step: tokens `(batch,)` -> logits `(batch, vocabulary)` and new state."""
        # A plain lookup: the embedding layer would attach a mask that the cell does not take.
        embedded = ops.cast(
            ops.take(self.embedding.embeddings, tokens, axis=0), self.embedding.compute_dtype
        )
        outputs, state = self.decoder.step(embedded, state, **context)[:2]
        kernel = output_kernel(self.output_layer)
        bias = self.suppression
        if getattr(self.output_layer, "use_bias", False):
            bias = self.output_layer.bias + bias
        return ops.matmul(ops.cast(outputs, kernel.dtype), kernel) + bias, state

    def generate(self, inputs, search):
        encoding = self.encode(inputs)
        batch_size = ops.shape(keras.tree.flatten(encoding.state)[0])[0]
        start_tokens = encoding.start_tokens
        if start_tokens is None:
            start_tokens = ops.full((batch_size,), self.start_token_id, dtype="int32")
        return search(
            self.step, encoding.state, encoding.context, start_tokens, self.end_token_id,
            self.maximum_lengths(encoding, batch_size), self.pad_token_id,
        )  # fmt: skip
