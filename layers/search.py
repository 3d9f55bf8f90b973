"""Greedy and beam search for recurrent decoders, as one batched `keras.ops.while_loop`.

Both searches drive a `step_function(tokens, state, context) -> (logits, new_state)`:
`tokens` `(batch,)` are the previous tokens, `state` a nested structure of batch-major
tensors that changes every step (the recurrent states), `context` a nested structure of
batch-major tensors that does not (encoder outputs, attention keys, masks), and `logits`
`(batch, vocabulary)`. A search stops when every sequence has produced `end_token_id` or
reached its own maximum length; finished sequences are filled with `pad_token_id`. Nothing
runs a Python loop per token, so a `tf.function` with a `None` batch size exports the whole
search into a SavedModel.

Beam search ranks hypotheses by their log-probability divided by the GNMT length penalty
`((5 + length) / 6) ** length_penalty` (`length_penalty=0` ranks by raw log-probability),
so with `beam_width=1` it returns exactly what greedy search returns.

keras_hub's `GreedySampler`/`BeamSampler` were the first choice; they are not used because
they return no sequence score for greedy decoding, have no length penalty and no
per-sequence maximum length.

References:
    - Wu et al., "Google's Neural Machine Translation System", 2016 (length penalty).
    - Graves, "Sequence Transduction with Recurrent Neural Networks", 2012 (beam search).
"""

import keras
from keras import ops

NEGATIVE_INFINITY = -1e9


def _write_column(buffer, index, values):
    """Returns `buffer` `(batch, length)` with column `index` set to `values` `(batch,)`."""
    positions = ops.arange(ops.shape(buffer)[1], dtype="int32")
    return ops.where(ops.equal(positions, index)[None, :], values[:, None], buffer)


def _length_penalty(lengths, length_penalty):
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, length_penalty)


def greedy_search(
    step_function, state, context, start_tokens, end_token_id, maximum_lengths, pad_token_id=0
):
    """Decodes by taking the most probable token at every step.

    Args:
        step_function: `(tokens, state, context) -> (logits, new_state)`, see the module
            docstring.
        state: nested structure of `(batch, ...)` tensors, the initial decoder state.
        context: nested structure of `(batch, ...)` tensors passed unchanged to every step.
        start_tokens: int tensor `(batch,)`, the first decoder inputs.
        end_token_id: the token that ends a sequence.
        maximum_lengths: int tensor `(batch,)`, how many tokens (the end token included) each
            sequence may produce; at least 1.
        pad_token_id: the token written after the end of a sequence.

    Returns:
        `(tokens, scores)`: int32 tokens `(batch, max(maximum_lengths))` holding the end token
        when one was produced and `pad_token_id` after it, and float32 `scores` `(batch,)`,
        the log-probability of the produced tokens.

    Example:

    ```python
    tokens, scores = greedy_search(step, state, context, start_tokens, end_token_id=3,
                                   maximum_lengths=ops.full((batch,), 20, "int32"))
    ```
    """
    start_tokens = ops.cast(start_tokens, "int32")
    maximum_lengths = ops.cast(maximum_lengths, "int32")
    batch_size = ops.shape(start_tokens)[0]
    total_length = ops.max(maximum_lengths, initial=1)
    tokens = ops.full((batch_size, total_length), pad_token_id, dtype="int32")
    scores = ops.zeros((batch_size,), dtype="float32")
    finished = ops.zeros((batch_size,), dtype="bool")

    def condition(index, previous_tokens, state, tokens, scores, finished):
        return ops.logical_and(
            ops.less(index, total_length), ops.logical_not(ops.all(finished))
        )

    def body(index, previous_tokens, state, tokens, scores, finished):
        logits, state = step_function(previous_tokens, state, context)
        log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        next_tokens = ops.cast(ops.argmax(log_probabilities, axis=-1), "int32")
        next_scores = ops.take_along_axis(log_probabilities, next_tokens[:, None], axis=1)[:, 0]
        next_tokens = ops.where(finished, pad_token_id, next_tokens)
        scores = scores + ops.where(finished, 0.0, next_scores)
        tokens = _write_column(tokens, index, next_tokens)
        finished = ops.logical_or(
            finished,
            ops.logical_or(
                ops.equal(next_tokens, end_token_id),
                ops.greater_equal(index + 1, maximum_lengths),
            ),
        )
        return index + 1, next_tokens, state, tokens, scores, finished

    loop_variables = (
        ops.convert_to_tensor(0, dtype="int32"),
        start_tokens,
        state,
        tokens,
        scores,
        finished,
    )
    *_, tokens, scores, _ = ops.while_loop(condition, body, loop_variables)
    return tokens, scores


def beam_search(
    step_function,
    state,
    context,
    start_tokens,
    end_token_id,
    maximum_lengths,
    beam_width=4,
    length_penalty=0.0,
    pad_token_id=0,
):
    """Keeps the `beam_width` best hypotheses per sequence and returns the best one.

    Finished hypotheses stay in the beam with their final score and compete with the
    unfinished ones; candidates are ranked by log-probability divided by the length penalty.

    Args:
        step_function, state, context, start_tokens, end_token_id, maximum_lengths,
        pad_token_id: as in `greedy_search`.
        beam_width: hypotheses kept per sequence.
        length_penalty: GNMT length-penalty exponent; larger values favour longer outputs.

    Returns:
        `(tokens, scores)` as in `greedy_search`, for the best hypothesis of each sequence;
        `scores` are raw log-probabilities (without the length penalty).

    Example:

    ```python
    tokens, scores = beam_search(step, state, context, start_tokens, end_token_id=3,
                                 maximum_lengths=lengths, beam_width=4, length_penalty=0.6)
    ```
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(
            f"`beam_width` must be a positive integer. Received: beam_width={beam_width!r}"
        )
    start_tokens = ops.cast(start_tokens, "int32")
    maximum_lengths = ops.cast(maximum_lengths, "int32")
    batch_size = ops.shape(start_tokens)[0]
    total_length = ops.max(maximum_lengths, initial=1)
    flat_size = batch_size * beam_width

    def tile(tensor):
        return ops.repeat(tensor, beam_width, axis=0)  # (batch * beam, ...)

    state = keras.tree.map_structure(tile, state)
    context = keras.tree.map_structure(tile, context)
    beam_maximum_lengths = ops.reshape(tile(maximum_lengths), (batch_size, beam_width))
    tokens = ops.full((flat_size, total_length), pad_token_id, dtype="int32")
    # Only the first beam is alive at the start, so the first step does not pick duplicates.
    first_beam = ops.equal(ops.arange(beam_width), 0)[None, :]
    scores = ops.where(
        first_beam,
        ops.zeros((batch_size, beam_width)),
        ops.full((batch_size, beam_width), NEGATIVE_INFINITY),
    )
    lengths = ops.zeros((batch_size, beam_width), dtype="int32")
    finished = ops.zeros((batch_size, beam_width), dtype="bool")
    # Flat index of each sequence's first beam: (batch, 1)
    beam_offsets = ops.arange(batch_size, dtype="int32")[:, None] * beam_width

    def condition(index, previous_tokens, state, tokens, scores, lengths, finished):
        return ops.logical_and(
            ops.less(index, total_length), ops.logical_not(ops.all(finished))
        )

    def body(index, previous_tokens, state, tokens, scores, lengths, finished):
        logits, state = step_function(previous_tokens, state, context)
        log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        vocabulary_size = ops.shape(log_probabilities)[-1]
        # (batch, beam, vocabulary)
        log_probabilities = ops.reshape(
            log_probabilities, (batch_size, beam_width, vocabulary_size)
        )
        # A finished hypothesis can only continue with padding, at no cost.
        padding_only = ops.where(
            ops.equal(ops.arange(vocabulary_size), pad_token_id), 0.0, NEGATIVE_INFINITY
        )
        log_probabilities = ops.where(
            finished[:, :, None], padding_only[None, None, :], log_probabilities
        )
        candidate_scores = scores[:, :, None] + log_probabilities
        candidate_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
        penalties = _length_penalty(candidate_lengths, length_penalty)[:, :, None]
        # (batch, beam * vocabulary)
        ranking = ops.reshape(
            candidate_scores / penalties, (batch_size, beam_width * vocabulary_size)
        )
        _, best = ops.top_k(ranking, k=beam_width)
        best = ops.cast(best, "int32")
        source_beams = best // vocabulary_size
        next_tokens = best % vocabulary_size
        # (batch, beam * vocabulary)
        flat_candidate_scores = ops.reshape(
            candidate_scores, (batch_size, beam_width * vocabulary_size)
        )
        scores = ops.take_along_axis(flat_candidate_scores, best, axis=1)
        lengths = ops.take_along_axis(candidate_lengths, source_beams, axis=1)
        was_finished = ops.take_along_axis(finished, source_beams, axis=1)
        flat_sources = ops.reshape(source_beams + beam_offsets, (flat_size,))
        state = keras.tree.map_structure(
            lambda tensor: ops.take(tensor, flat_sources, axis=0), state
        )
        next_tokens = ops.where(was_finished, pad_token_id, next_tokens)
        flat_next_tokens = ops.reshape(next_tokens, (flat_size,))
        tokens = _write_column(ops.take(tokens, flat_sources, axis=0), index, flat_next_tokens)
        finished = ops.logical_or(
            was_finished,
            ops.logical_or(
                ops.equal(next_tokens, end_token_id),
                ops.greater_equal(index + 1, beam_maximum_lengths),
            ),
        )
        return index + 1, flat_next_tokens, state, tokens, scores, lengths, finished

    loop_variables = (
        ops.convert_to_tensor(0, dtype="int32"),
        tile(start_tokens),
        state,
        tokens,
        scores,
        lengths,
        finished,
    )
    *_, tokens, scores, lengths, _ = ops.while_loop(condition, body, loop_variables)
    ranking = scores / _length_penalty(lengths, length_penalty)
    best_beams = ops.cast(ops.argmax(ranking, axis=1), "int32")
    best_flat = best_beams + beam_offsets[:, 0]
    best_scores = ops.take_along_axis(scores, best_beams[:, None], axis=1)[:, 0]
    return ops.take(tokens, best_flat, axis=0), best_scores
