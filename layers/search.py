"""Greedy and beam search for recurrent decoders, as one batched `keras.ops.while_loop`.

Both searches drive a `step_function(tokens, state, context) -> (logits, new_state)`:
`tokens` `(batch,)` are the previous tokens, `state` a nested structure of batch-major
tensors that changes every step (the recurrent states), `context` a nested structure of
batch-major tensors that does not (encoder outputs, attention keys, masks), and `logits`
`(batch, vocabulary)`. A search stops when every sequence has produced `end_token_id` or
reached its own maximum length; finished sequences are filled with `pad_token_id`. Nothing
runs a Python loop per token, so a `tf.function` with a `None` batch size exports the whole
search into a SavedModel.

Once some rows are finished, the step function runs only on the unfinished ones (their
tokens, state and context rows gathered): a batch whose outputs end early no longer pays
for its longest output on every row. So `step_function` must treat rows independently
(any batch-major decoder does) and accept any number of rows.

Sampling draws each token from the model's distribution, sharpened or flattened by a
temperature and optionally cut to the `top_k` most probable tokens and to the smallest set
whose probability reaches `top_p` (nucleus sampling). It is stateless: one uniform number per
row and step is drawn up front by `keras.random.uniform` with the given integer seed, and a
token is picked by inverting the cumulative distribution of the kept tokens. So the same
seed and inputs give the same output in every call (an export holds the seed), and a row's
draws do not depend on which other rows are still unfinished.

Every search can block repeated n-grams (`no_repeat_ngram_size` n > 0): before a token is
chosen, each row's logits of the tokens that would complete an n-gram the row has already
produced are lowered to -1e9 (a logits processor over the row's own tokens so far; with
n = 1 no token is produced twice). The end token never repeats, so a row can always end.

Beam search ranks hypotheses by their log-probability divided by the GNMT length penalty
`((5 + length) / 6) ** length_penalty` (`length_penalty=0` ranks by raw log-probability),
so with `beam_width=1` it returns exactly what greedy search returns.

keras_hub's samplers were the first choice; they are not used because they decode into a
fixed-length prompt buffer with one maximum length for the whole batch (no per-sequence
maximum), return no sequence score for greedy decoding and sampling, have no length
penalty, and `TopKSampler`/`TopPSampler` draw from a `keras.random.SeedGenerator`, a variable
whose state each call advances, where an export wants a seeded, stateless draw.

References:
    - Wu et al., "Google's Neural Machine Translation System", 2016 (length penalty).
    - Graves, "Sequence Transduction with Recurrent Neural Networks", 2012 (beam search).
    - Holtzman et al., "The Curious Case of Neural Text Degeneration", 2020 (top-p).
    - Fan et al., "Hierarchical Neural Story Generation", 2018 (top-k).
"""

import keras
from keras import ops

from layers.arguments import check_positive_integers

NEGATIVE_INFINITY = -1e9


def _map_tensors(function, *structures):
    """Applies `function` to every tensor of nested structures, keeping `None` entries."""
    return keras.tree.map_structure(function, *structures, none_is_leaf=False)


def _write_column(buffer, index, values):
    """Returns `buffer` `(batch, length)` with column `index` set to `values` `(batch,)`."""
    positions = ops.arange(ops.shape(buffer)[1], dtype="int32")
    return ops.where(ops.equal(positions, index)[None, :], values[:, None], buffer)


def _check_ngram_size(no_repeat_ngram_size):
    if (
        not isinstance(no_repeat_ngram_size, int)
        or isinstance(no_repeat_ngram_size, bool)
        or no_repeat_ngram_size < 0
    ):
        raise ValueError(
            f"`no_repeat_ngram_size` must be a non-negative integer (0: no blocking). "
            f"Received: no_repeat_ngram_size={no_repeat_ngram_size!r}"
        )


def _shift_left(tokens, count):
    """`tokens` `(rows, length)` moved `count` columns left, the freed columns -1."""
    if count == 0:
        return tokens
    return ops.pad(tokens[:, count:], [[0, 0], [0, count]], constant_values=-1)


def block_repeated_ngrams(logits, history, index, ngram_size):
    """Lowers to -1e9 the logits of the tokens that would repeat an n-gram of `history`.

    Args:
        logits: `(rows, vocabulary)`, the next-token logits.
        history: int `(rows, length)`, each row's tokens so far in columns `0 .. index - 1`
            (later columns are ignored).
        index: the number of tokens produced so far (a scalar tensor or int).
        ngram_size: n; 0 returns `logits` unchanged.

    Returns:
        float32 `(rows, vocabulary)`: a token is blocked when the row's last n - 1 tokens
        followed by it form an n-gram that already occurs in the row.
    """
    if ngram_size == 0:
        return logits
    logits = ops.cast(logits, "float32")
    history = ops.cast(history, "int32")
    index = ops.convert_to_tensor(index, "int32")
    length = ops.shape(history)[1]
    # Column j matches when history[j : j + n - 1] equals the last n - 1 tokens.
    matches = ops.less_equal(ops.arange(length, dtype="int32"), index - ngram_size)[None, :]
    for offset in range(ngram_size - 1):
        position = ops.clip(index - (ngram_size - 1) + offset, 0, ops.maximum(length - 1, 0))
        recent = ops.take(history, ops.reshape(position, (1,)), axis=1)  # (rows, 1)
        matches = ops.logical_and(matches, ops.equal(_shift_left(history, offset), recent))
    following = ops.maximum(_shift_left(history, ngram_size - 1), 0)  # (rows, length)
    rows = ops.shape(history)[0]
    matches = ops.broadcast_to(matches, ops.shape(following))
    row_ids = ops.broadcast_to(ops.arange(rows, dtype="int32")[:, None], ops.shape(following))
    indices = ops.reshape(ops.stack([row_ids, following], axis=-1), (-1, 2))  # (rows * length, 2)
    counts = ops.scatter(
        indices, ops.reshape(ops.cast(matches, "float32"), (-1,)), (rows, logits.shape[-1])
    )
    return ops.where(counts > 0.0, NEGATIVE_INFINITY, logits)


def _best_log_probabilities(logits, count):
    """The `count` largest log-softmax values of each row of `logits` and their tokens.

    Returns float32 `(rows, count)` and int32 `(rows, count)`, best first, the lower token
    first among equal values. For `count > 1` only the kept values are normalized, with the
    log-softmax formula `(x - max) - log(sum(exp(x - max)))`.
    """
    logits = ops.cast(logits, "float32")
    if count == 1:
        log_probabilities = ops.log_softmax(logits, axis=-1)
        tokens = ops.cast(ops.argmax(log_probabilities, axis=-1), "int32")[:, None]
        return ops.take_along_axis(log_probabilities, tokens, axis=1), tokens
    values, tokens = ops.top_k(logits, k=count)
    tokens = ops.cast(tokens, "int32")
    maximum = values[:, :1]  # (rows, 1)
    log_normalizers = ops.log(ops.sum(ops.exp(logits - maximum), axis=-1, keepdims=True))
    return (values - maximum) - log_normalizers, tokens


def _step_unfinished(step_function, select, tokens, state, context, finished):
    """Runs `step_function` on the rows that are not finished; returns `(selected, state)`.

    `select` maps the step's logits `(rows, vocabulary)` to a structure of `(rows, ...)`
    tensors (the few best tokens), so only those are spread back to all rows. Finished rows
    keep their state and get another row's `selected` values, which the searches ignore.
    When no row is finished, the step runs on all rows without gathering.
    """
    unfinished = ops.logical_not(finished)

    def all_rows():
        logits, new_state = step_function(tokens, state, context)
        return select(logits), new_state

    def unfinished_rows():
        rows = ops.cast(ops.nonzero(unfinished)[0], "int32")

        def gather(tensor):
            return ops.take(tensor, rows, axis=0)

        logits, new_state = step_function(
            gather(tokens),
            _map_tensors(gather, state),
            _map_tensors(gather, context),
        )
        # Each row's place among the unfinished rows (finished rows: the one before).
        places = ops.maximum(ops.cumsum(ops.cast(unfinished, "int32")) - 1, 0)

        def spread(tensor):
            return ops.take(tensor, places, axis=0)

        def keep_finished(new, old):
            # (rows, 1, ...) for broadcasting over the state's other axes
            keep = ops.reshape(unfinished, (-1,) + (1,) * (len(old.shape) - 1))
            return ops.where(keep, spread(new), old)

        selected = _map_tensors(spread, select(logits))
        return selected, _map_tensors(keep_finished, new_state, state)

    return ops.cond(ops.all(unfinished), all_rows, unfinished_rows)


def _length_penalty(lengths, length_penalty):
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, length_penalty)


def greedy_search(
    step_function,
    state,
    context,
    start_tokens,
    end_token_id,
    maximum_lengths,
    pad_token_id=0,
    no_repeat_ngram_size=0,
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
        no_repeat_ngram_size: block every n-gram of this size from occurring twice in a
            sequence (0: no blocking; see the module docstring).

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
    _check_ngram_size(no_repeat_ngram_size)

    def logits_step(index, tokens, state, context):
        logits, new_state = step_function(tokens, state, context)
        return (logits,), new_state

    return _decode_one_path(
        logits_step, lambda outputs: _best_log_probabilities(outputs[0], 1),
        state, context, start_tokens, end_token_id, maximum_lengths, pad_token_id,
        no_repeat_ngram_size,
    )  # fmt: skip


def _decode_one_path(
    step_function, select, state, context, start_tokens, end_token_id, maximum_lengths,
    pad_token_id, no_repeat_ngram_size,
):  # fmt: skip
    """The loop of greedy search and sampling: one hypothesis per sequence.

    `step_function(index, tokens, state, context)` also receives the step's index and returns
    a tuple whose first entry is the logits (repeated n-grams are blocked in them), and
    `select` maps that tuple to `(log_probabilities, tokens)`, each `(rows, 1)`.
    """
    start_tokens = ops.cast(start_tokens, "int32")
    maximum_lengths = ops.cast(maximum_lengths, "int32")
    batch_size = ops.shape(start_tokens)[0]
    total_length = ops.max(maximum_lengths, initial=1)
    tokens = ops.full((batch_size, total_length), pad_token_id, dtype="int32")
    scores = ops.zeros((batch_size,), dtype="float32")
    finished = ops.zeros((batch_size,), dtype="bool")

    def condition(index, previous_tokens, state, tokens, scores, finished):
        return ops.logical_and(ops.less(index, total_length), ops.logical_not(ops.all(finished)))

    def body(index, previous_tokens, state, tokens, scores, finished):
        def blocking_step(previous_tokens, state_and_history, context):
            state, history = state_and_history
            (logits, *others), new_state = step_function(index, previous_tokens, state, context)
            logits = block_repeated_ngrams(logits, history, index, no_repeat_ngram_size)
            return (logits, *others), (new_state, history)

        (next_scores, next_tokens), (state, _) = _step_unfinished(
            blocking_step, select, previous_tokens, (state, tokens), context, finished
        )
        next_scores, next_tokens = next_scores[:, 0], next_tokens[:, 0]
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
    no_repeat_ngram_size=0,
):
    """Keeps the `beam_width` best hypotheses per sequence and returns the best one.

    Finished hypotheses stay in the beam with their final score and compete with the
    unfinished ones; candidates are ranked by log-probability divided by the length penalty.
    A sequence stops as soon as no unfinished hypothesis can outrank its best finished one
    (this does not change the result, it only saves steps).

    Args:
        step_function, state, context, start_tokens, end_token_id, maximum_lengths,
        pad_token_id, no_repeat_ngram_size: as in `greedy_search` (repeated n-grams are
            blocked within each hypothesis).
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
    check_positive_integers(beam_width=beam_width)
    _check_ngram_size(no_repeat_ngram_size)
    start_tokens = ops.cast(start_tokens, "int32")
    maximum_lengths = ops.cast(maximum_lengths, "int32")
    batch_size = ops.shape(start_tokens)[0]
    total_length = ops.max(maximum_lengths, initial=1)
    flat_size = batch_size * beam_width

    def tile(tensor):
        return ops.repeat(tensor, beam_width, axis=0)  # (batch * beam, ...)

    state = _map_tensors(tile, state)
    context = _map_tensors(tile, context)
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
    # The candidates of a finished hypothesis: padding, then the lowest other tokens.
    other_tokens = ops.arange(beam_width - 1, dtype="int32")
    other_tokens = other_tokens + ops.cast(other_tokens >= pad_token_id, "int32")
    finished_tokens = ops.concatenate([ops.full((1,), pad_token_id, "int32"), other_tokens])
    finished_log_probabilities = ops.where(
        ops.equal(ops.arange(beam_width), 0), 0.0, NEGATIVE_INFINITY
    )
    maximum_penalties = _length_penalty(beam_maximum_lengths, length_penalty)

    def cannot_improve(scores, lengths, finished):
        """Per sequence: no unfinished hypothesis can outrank the best finished one.

        Scores only fall as tokens are added, and the penalty of a longer hypothesis is at
        most the larger of its current and its maximum length's, so `score / that penalty`
        bounds what an unfinished hypothesis can still reach.
        """
        penalties = _length_penalty(lengths, length_penalty)
        best_finished = ops.max(ops.where(finished, scores / penalties, -float("inf")), axis=1)
        reachable = scores / ops.maximum(penalties, maximum_penalties)
        best_reachable = ops.max(ops.where(finished, -float("inf"), reachable), axis=1)
        return ops.greater(best_finished, best_reachable)

    # Flat index of each sequence's first beam: (batch, 1)
    beam_offsets = ops.arange(batch_size, dtype="int32")[:, None] * beam_width

    def condition(index, previous_tokens, state, tokens, scores, lengths, finished):
        return ops.logical_and(ops.less(index, total_length), ops.logical_not(ops.all(finished)))

    def best_candidates(logits):
        # Only each hypothesis's `count` best tokens can be among the `beam_width` best
        # candidates, so only those are ranked (the whole vocabulary when it is smaller).
        vocabulary_size = logits.shape[-1]
        count = beam_width if vocabulary_size is None else min(beam_width, vocabulary_size)
        return _best_log_probabilities(logits, count)

    def body(index, previous_tokens, state, tokens, scores, lengths, finished):
        def blocking_step(previous_tokens, state_and_history, context):
            state, history = state_and_history
            logits, new_state = step_function(previous_tokens, state, context)
            logits = block_repeated_ngrams(logits, history, index, no_repeat_ngram_size)
            return logits, (new_state, history)

        (top_log_probabilities, top_tokens), (state, _) = _step_unfinished(
            blocking_step, best_candidates, previous_tokens, (state, tokens), context,
            ops.reshape(finished, (flat_size,)),
        )  # fmt: skip
        count = top_tokens.shape[-1]
        # (batch, beam, count)
        top_log_probabilities = ops.reshape(top_log_probabilities, (batch_size, beam_width, count))
        top_tokens = ops.reshape(top_tokens, (batch_size, beam_width, count))
        # A finished hypothesis can only continue with padding, at no cost; its other
        # candidates are the lowest other tokens at NEGATIVE_INFINITY.
        top_log_probabilities = ops.where(
            finished[:, :, None], finished_log_probabilities[:count], top_log_probabilities
        )
        top_tokens = ops.where(finished[:, :, None], finished_tokens[:count], top_tokens)
        candidate_scores = scores[:, :, None] + top_log_probabilities
        candidate_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")
        penalties = _length_penalty(candidate_lengths, length_penalty)[:, :, None]
        # (batch, beam * count)
        ranking = ops.reshape(candidate_scores / penalties, (batch_size, beam_width * count))
        _, best = ops.top_k(ranking, k=beam_width)
        best = ops.cast(best, "int32")
        source_beams = best // count
        # (batch, beam * count)
        flat_top_tokens = ops.reshape(top_tokens, (batch_size, beam_width * count))
        next_tokens = ops.take_along_axis(flat_top_tokens, best, axis=1)
        # (batch, beam * count)
        flat_candidate_scores = ops.reshape(candidate_scores, (batch_size, beam_width * count))
        scores = ops.take_along_axis(flat_candidate_scores, best, axis=1)
        lengths = ops.take_along_axis(candidate_lengths, source_beams, axis=1)
        was_finished = ops.take_along_axis(finished, source_beams, axis=1)
        flat_sources = ops.reshape(source_beams + beam_offsets, (flat_size,))
        state = _map_tensors(lambda tensor: ops.take(tensor, flat_sources, axis=0), state)
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
        finished = ops.logical_or(finished, cannot_improve(scores, lengths, finished)[:, None])
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


def _sample_tokens(logits, uniforms, temperature, top_k, top_p):
    """Samples one token per row of `logits` by inverting the filtered cumulative distribution.

    `uniforms` `(rows,)` are the rows' draws in [0, 1). Returns the model's log-probabilities
    of the sampled tokens (without temperature and filtering) float32 `(rows, 1)` and the
    tokens int32 `(rows, 1)`, the layout of `_best_log_probabilities`.
    """
    logits = ops.cast(logits, "float32")
    vocabulary_size = logits.shape[-1]
    count = vocabulary_size if top_k is None else min(top_k, vocabulary_size)
    sorted_logits, sorted_tokens = ops.top_k(logits / temperature, k=count)
    probabilities = ops.softmax(sorted_logits, axis=-1)
    if top_p < 1.0:
        mass_before = ops.cumsum(probabilities, axis=-1) - probabilities
        probabilities = ops.where(mass_before < top_p, probabilities, 0.0)
    cumulative = ops.cumsum(probabilities, axis=-1)
    thresholds = uniforms[:, None] * cumulative[:, -1:]  # (rows, 1)
    kept = ops.sum(ops.cast(probabilities > 0.0, "int32"), axis=-1, keepdims=True)
    places = ops.sum(ops.cast(cumulative <= thresholds, "int32"), axis=-1, keepdims=True)
    places = ops.minimum(places, kept - 1)
    tokens = ops.cast(ops.take_along_axis(sorted_tokens, places, axis=1), "int32")
    log_probabilities = ops.log_softmax(logits, axis=-1)
    return ops.take_along_axis(log_probabilities, tokens, axis=1), tokens


def sample_search(
    step_function,
    state,
    context,
    start_tokens,
    end_token_id,
    maximum_lengths,
    seed,
    temperature=1.0,
    top_k=None,
    top_p=1.0,
    pad_token_id=0,
    no_repeat_ngram_size=0,
):
    """Decodes by sampling every token from the model's (temperature-scaled, cut) distribution.

    Args:
        step_function, state, context, start_tokens, end_token_id, maximum_lengths,
        pad_token_id, no_repeat_ngram_size: as in `greedy_search` (blocked tokens are never
            drawn).
        seed: integer seed of the draws; the same seed and inputs give the same output.
        temperature: the logits are divided by it before sampling, > 0; values near 0 give
            greedy search, 1 the model's distribution, larger values flatter ones.
        top_k: sample among the `top_k` most probable tokens only (`None`: all).
        top_p: sample among the smallest set of most probable tokens whose probability reaches
            `top_p`, in (0, 1] (1: no cut). Applied after `top_k`.

    Returns:
        `(tokens, scores)` as in `greedy_search`; `scores` are the model's log-probabilities
        of the sampled tokens, before temperature and cuts.

    Example:

    ```python
    tokens, scores = sample_search(step, state, context, start_tokens, end_token_id=3,
                                   maximum_lengths=lengths, seed=7, temperature=0.8, top_p=0.9)
    ```
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
    if not temperature > 0.0:
        raise ValueError(f"`temperature` must be positive. Received: temperature={temperature!r}")
    if top_k is not None:
        check_positive_integers(top_k=top_k)
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"`top_p` must be in (0, 1]. Received: top_p={top_p!r}")
    _check_ngram_size(no_repeat_ngram_size)
    batch_size = ops.shape(start_tokens)[0]
    total_length = ops.max(ops.cast(maximum_lengths, "int32"), initial=1)
    uniforms = keras.random.uniform((batch_size, total_length), seed=seed)

    def sampling_step(index, tokens, state, context):
        context, row_uniforms = context
        logits, new_state = step_function(tokens, state, context)
        return (logits, ops.take(row_uniforms, index, axis=1)), new_state

    def select(outputs):
        logits, step_uniforms = outputs
        return _sample_tokens(logits, step_uniforms, temperature, top_k, top_p)

    return _decode_one_path(
        sampling_step, select, state, (context, uniforms), start_tokens, end_token_id,
        maximum_lengths, pad_token_id, no_repeat_ngram_size,
    )  # fmt: skip
