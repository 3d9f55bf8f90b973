import functools
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.attention_decoder import AttentionDecoder
from layers.search import beam_search, greedy_search, sample_search

PAD, END, A, B, START = 0, 1, 2, 3, 4


def markov_step(log_table):
    """A decoder whose next-token distribution depends only on the previous token."""
    table = keras.ops.convert_to_tensor(np.log(np.asarray(log_table, "float32")))

    def step(tokens, state, context):
        return keras.ops.take(table, tokens, axis=0), state

    return step


# Rows: previous token; columns: PAD, END, A, B, START.
CHAIN = [
    [1e-9, 1.0, 1e-9, 1e-9, 1e-9],
    [1e-9, 1.0, 1e-9, 1e-9, 1e-9],
    [1e-9, 0.33, 0.34, 0.33, 1e-9],
    [1e-9, 0.9, 0.05, 0.05, 1e-9],
    [1e-9, 0.1, 0.5, 0.4, 1e-9],
]


def test_greedy_follows_the_most_probable_token_and_stops_at_the_maximum_length():
    start = np.full((2,), START, "int32")
    tokens, scores = greedy_search(
        markov_step(CHAIN), {}, {}, start, END, maximum_lengths=np.array([3, 1], "int32")
    )
    np.testing.assert_array_equal(tokens, [[A, A, A], [A, PAD, PAD]])
    np.testing.assert_allclose(scores, np.log([0.5 * 0.34 * 0.34, 0.5]), rtol=1e-5)


def test_beam_search_finds_the_more_probable_sequence_that_greedy_misses():
    start = np.full((1,), START, "int32")
    lengths = np.array([3], "int32")
    tokens, scores = beam_search(markov_step(CHAIN), {}, {}, start, END, lengths, beam_width=2)
    np.testing.assert_array_equal(tokens, [[B, END, PAD]])
    np.testing.assert_allclose(scores, np.log([0.4 * 0.9]), rtol=1e-5)


def test_length_penalty_favours_longer_hypotheses():
    # After START: END 0.55 or A 0.45; after A: END for sure.
    chain = [row[:] for row in CHAIN]
    chain[START] = [1e-9, 0.55, 0.45, 1e-9, 1e-9]
    chain[A] = [1e-9, 0.999, 1e-9, 1e-9, 1e-9]
    start = np.full((1,), START, "int32")
    lengths = np.array([4], "int32")
    short, _ = beam_search(markov_step(chain), {}, {}, start, END, lengths, beam_width=2)
    long, _ = beam_search(
        markov_step(chain), {}, {}, start, END, lengths, beam_width=2, length_penalty=2.0
    )
    np.testing.assert_array_equal(short, [[END, PAD, PAD, PAD]])
    np.testing.assert_array_equal(long, [[A, END, PAD, PAD]])


VOCABULARY, UNITS, SOURCE_TIME, BATCH = 9, 8, 6, 4


def tiny_decoder_step():
    """A random embedding + attention decoder + projection, as a search step function."""
    keras.utils.set_random_seed(3)
    embedding = keras.layers.Embedding(VOCABULARY, 5)
    decoder = AttentionDecoder(UNITS, cell="gru")
    projection = keras.layers.Dense(VOCABULARY)
    generator = np.random.default_rng(0)
    encoder_sequences = generator.normal(size=(BATCH, SOURCE_TIME, 6)).astype("float32")
    encoder_mask = np.arange(SOURCE_TIME)[None, :] < np.array([[6], [4], [2], [5]])
    decoder(embedding(np.zeros((BATCH, 1), "int32")), encoder_sequences)
    projection.build((None, UNITS))
    projection.bias.assign(np.linspace(-1.0, 1.0, VOCABULARY).astype("float32"))

    def step(tokens, state, context):
        outputs, new_state, _ = decoder.step(
            embedding(tokens), state, context["sequences"], context["keys"], context["mask"]
        )
        return projection(outputs) * 3.0, new_state

    state = [generator.normal(size=(BATCH, UNITS)).astype("float32")]
    context = {
        "sequences": encoder_sequences,
        "keys": decoder.attention_keys(encoder_sequences),
        "mask": encoder_mask,
    }
    return step, state, context


def test_greedy_equals_step_by_step_argmax_by_hand():
    step, state, context = tiny_decoder_step()
    end_token = 1
    maximum_lengths = np.array([7, 7, 3, 5], "int32")
    start = np.full((BATCH,), 2, "int32")
    tokens, scores = greedy_search(step, state, context, start, end_token, maximum_lengths)

    expected_tokens = np.zeros((BATCH, 7), "int32")
    expected_scores = np.zeros((BATCH,))
    for row in range(BATCH):
        row_state = [state[0][row : row + 1]]
        row_context = {key: value[row : row + 1] for key, value in context.items()}
        previous = np.array([2], "int32")
        for time in range(maximum_lengths[row]):
            logits, row_state = step(previous, row_state, row_context)
            log_probabilities = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits, axis=-1))[
                0
            ]
            previous = np.array([np.argmax(log_probabilities)], "int32")
            expected_tokens[row, time] = previous[0]
            expected_scores[row] += log_probabilities[previous[0]]
            if previous[0] == end_token:
                break
    np.testing.assert_array_equal(tokens, expected_tokens)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-4)


def test_beam_width_one_equals_greedy():
    step, state, context = tiny_decoder_step()
    maximum_lengths = np.array([7, 6, 3, 5], "int32")
    start = np.full((BATCH,), 2, "int32")
    greedy = greedy_search(step, state, context, start, 1, maximum_lengths)
    beam = beam_search(
        step, state, context, start, 1, maximum_lengths, beam_width=1, length_penalty=0.6
    )
    np.testing.assert_array_equal(beam[0], greedy[0])
    np.testing.assert_allclose(beam[1], greedy[1], rtol=1e-5)


def test_wider_beam_scores_at_least_as_well_as_greedy_without_penalty():
    step, state, context = tiny_decoder_step()
    maximum_lengths = np.full((BATCH,), 6, "int32")
    start = np.full((BATCH,), 2, "int32")
    _, greedy_scores = greedy_search(step, state, context, start, 1, maximum_lengths)
    _, beam_scores = beam_search(step, state, context, start, 1, maximum_lengths, beam_width=4)
    assert np.all(keras.ops.convert_to_numpy(beam_scores) >= greedy_scores - 1e-5)


def test_searches_run_in_a_graph_with_an_unknown_batch_size():
    step = markov_step(CHAIN)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def search(maximum_lengths):
        start = tf.fill(tf.shape(maximum_lengths), START)
        greedy, _ = greedy_search(step, {}, {}, start, END, maximum_lengths)
        beam, _ = beam_search(step, {}, {}, start, END, maximum_lengths, beam_width=3)
        return greedy, beam

    greedy, beam = search(tf.constant([3, 2], tf.int32))
    np.testing.assert_array_equal(greedy, [[A, A, A], [A, A, PAD]])
    np.testing.assert_array_equal(beam, [[B, END, PAD], [B, END, PAD]])


def test_bad_beam_width_is_named():
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(markov_step(CHAIN), {}, {}, np.array([START]), END, np.array([2]), 0)


def exhaustive_best(chain, maximum_length, length_penalty):
    """The best (score / length penalty) sequence of the Markov chain, by enumeration."""
    log_table = np.log(np.asarray(chain, "float64"))
    best = (-np.inf, None, None)
    for length in range(1, maximum_length + 1):
        for sequence in itertools.product(range(len(chain)), repeat=length):
            if END in sequence[:-1] or (length < maximum_length and sequence[-1] != END):
                continue
            previous = (START,) + sequence[:-1]
            score = sum(log_table[a, b] for a, b in zip(previous, sequence, strict=True))
            ranking = score / ((5.0 + length) / 6.0) ** length_penalty
            if ranking > best[0]:
                best = (ranking, list(sequence) + [PAD] * (maximum_length - length), score)
    return best[1], best[2]


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 2.0])
def test_beam_as_wide_as_the_search_space_finds_the_exhaustive_best(length_penalty):
    # 5 tokens, 3 steps: at most 25 hypotheses, so a beam of 25 never drops the best one,
    # and the early stop must not cut it short.
    start = np.full((2,), START, "int32")
    lengths = np.array([3, 2], "int32")
    tokens, scores = beam_search(
        markov_step(CHAIN), {}, {}, start, END, lengths, beam_width=25,
        length_penalty=length_penalty,
    )  # fmt: skip
    for row, maximum_length in enumerate(lengths):
        expected_tokens, expected_score = exhaustive_best(CHAIN, maximum_length, length_penalty)
        np.testing.assert_array_equal(tokens[row, :maximum_length], expected_tokens)
        np.testing.assert_allclose(scores[row], expected_score, rtol=1e-5)


def test_beam_search_stops_once_no_hypothesis_can_catch_up():
    # After START: END with 0.9. Every other path costs more than log(0.9) after one step.
    chain = [row[:] for row in CHAIN]
    chain[START] = [1e-9, 0.9, 0.05, 0.05, 1e-9]
    calls = []
    markov = markov_step(chain)

    def counting_step(tokens, state, context):
        calls.append(1)
        return markov(tokens, state, context)

    start = np.full((1,), START, "int32")
    tokens, _ = beam_search(counting_step, {}, {}, start, END, np.array([10]), beam_width=3)
    np.testing.assert_array_equal(tokens[0, :2], [END, PAD])
    assert len(calls) <= 2


def test_none_entries_of_the_context_pass_through_gathering_and_beam_tiling():
    # The rows finish at different steps, so the later steps gather the unfinished rows.
    step, state, context = tiny_decoder_step()

    def checking_step(tokens, state, context):
        if context["unused"] is not None or context["mask"] is not None:
            raise AssertionError("a None entry of the context became a tensor")
        return step(tokens, state, context)

    maximum_lengths = np.array([7, 2, 3, 5], "int32")
    start = np.full((BATCH,), 2, "int32")
    without_mask = dict(context, mask=None, unused=None)
    all_valid = dict(context, mask=np.ones((BATCH, SOURCE_TIME), bool))
    for search in (greedy_search, functools.partial(beam_search, beam_width=3)):
        tokens, scores = search(checking_step, state, without_mask, start, 1, maximum_lengths)
        expected_tokens, expected_scores = search(step, state, all_valid, start, 1, maximum_lengths)
        np.testing.assert_array_equal(tokens, expected_tokens)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)


def test_sampling_at_a_tiny_temperature_equals_greedy():
    step, state, context = tiny_decoder_step()
    maximum_lengths = np.array([7, 6, 3, 5], "int32")
    start = np.full((BATCH,), 2, "int32")
    greedy = greedy_search(step, state, context, start, 1, maximum_lengths)
    for seed in (0, 1):
        sampled = sample_search(
            step, state, context, start, 1, maximum_lengths, seed=seed, temperature=1e-4
        )
        np.testing.assert_array_equal(sampled[0], greedy[0])
        np.testing.assert_allclose(sampled[1], greedy[1], rtol=1e-5)


def constant_step(probabilities):
    """A step whose next-token distribution is the same for every row and token."""
    logits = keras.ops.log(keras.ops.convert_to_tensor(probabilities, "float32"))

    def step(tokens, state, context):
        return keras.ops.broadcast_to(
            logits, (keras.ops.shape(tokens)[0], len(probabilities))
        ), state

    return step


def sample_once(probabilities, rows, **sampling):
    """`rows` single-token draws from `probabilities` (END is never in reach here)."""
    start = np.full((rows,), START, "int32")
    tokens, scores = sample_search(
        constant_step(probabilities), {}, {}, start, -1, np.ones((rows,), "int32"), **sampling
    )
    return keras.ops.convert_to_numpy(tokens)[:, 0], keras.ops.convert_to_numpy(scores)


def test_sampling_draws_from_the_model_distribution_and_scores_its_log_probability():
    probabilities = [0.1, 0.2, 0.3, 0.4]
    tokens, scores = sample_once(probabilities, 4000, seed=0)
    frequencies = np.bincount(tokens, minlength=4) / 4000
    np.testing.assert_allclose(frequencies, probabilities, atol=0.025)
    np.testing.assert_allclose(scores, np.log(np.take(probabilities, tokens)), rtol=1e-5)


def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p():
    probabilities = [0.05, 0.3, 0.5, 0.15]
    # 0.5 < 0.7 <= 0.5 + 0.3: tokens 2 and 1, renormalized to 0.625 and 0.375.
    tokens, _ = sample_once(probabilities, 4000, seed=1, top_p=0.7)
    assert set(tokens) == {1, 2}
    assert np.mean(tokens == 2) == pytest.approx(0.625, abs=0.025)
    tokens, _ = sample_once(probabilities, 500, seed=1, top_p=0.45)
    assert set(tokens) == {2}
    tokens, _ = sample_once(probabilities, 4000, seed=1, top_p=0.9)
    assert set(tokens) == {1, 2, 3}


def test_top_k_never_emits_a_token_outside_the_k_best():
    generator = np.random.default_rng(7)
    for trial in range(5):
        vocabulary = int(generator.integers(5, 30))
        k = int(generator.integers(1, vocabulary))
        table = generator.normal(size=(vocabulary, vocabulary)).astype("float32") * 3.0

        def step(tokens, state, context, table=table):
            return keras.ops.take(table, tokens, axis=0), state

        start = generator.integers(0, vocabulary, size=64).astype("int32")
        tokens, _ = sample_search(
            step, {}, {}, start, -1, np.full((64,), 6, "int32"), seed=trial,
            temperature=float(generator.uniform(0.5, 3.0)), top_k=k,
        )  # fmt: skip
        tokens = keras.ops.convert_to_numpy(tokens)
        previous = np.concatenate([start[:, None], tokens[:, :-1]], axis=1)
        allowed = np.argsort(-table, axis=1)[:, :k]  # (vocabulary, k)
        for row, column in np.ndindex(tokens.shape):
            assert tokens[row, column] in allowed[previous[row, column]]


def test_same_seed_same_sample_different_seed_different_sample():
    step, state, context = tiny_decoder_step()
    maximum_lengths = np.full((BATCH,), 7, "int32")
    start = np.full((BATCH,), 2, "int32")

    def sample(seed):
        tokens, _ = sample_search(
            step, state, context, start, 1, maximum_lengths, seed=seed, temperature=2.0
        )
        return keras.ops.convert_to_numpy(tokens)

    np.testing.assert_array_equal(sample(3), sample(3))
    assert not np.array_equal(sample(3), sample(4))


def test_sampling_runs_in_a_graph_with_an_unknown_batch_size():
    step = markov_step(CHAIN)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def sample(maximum_lengths):
        start = tf.fill(tf.shape(maximum_lengths), START)
        return sample_search(step, {}, {}, start, END, maximum_lengths, seed=5, top_p=0.9)

    first, second = sample(tf.constant([3, 2, 3], tf.int32)), sample(tf.constant([3, 2, 3]))
    np.testing.assert_array_equal(first[0], second[0])
    assert first[0].shape == (3, 3) and np.all(first[0].numpy()[1, 2:] == PAD)


@pytest.mark.parametrize(
    ("arguments", "name"),
    [({"seed": 1.5}, "seed"), ({"seed": 1, "temperature": 0.0}, "temperature"),
     ({"seed": 1, "top_k": 0}, "top_k"), ({"seed": 1, "top_p": 0.0}, "top_p")],
)  # fmt: skip
def test_bad_sampling_arguments_are_named(arguments, name):
    with pytest.raises(ValueError, match=name):
        sample_search(markov_step(CHAIN), {}, {}, np.array([START]), END, np.array([2]),
                      **arguments)  # fmt: skip


def random_logits_step(vocabulary_size, positions, seed):
    """A decoder whose logits are random numbers indexed by its state (a position that
    advances every step) and the previous token, mostly by the previous token (so that
    unblocked searches loop)."""
    rng = np.random.default_rng(seed)
    shape = (positions, vocabulary_size, vocabulary_size)
    table = 3.0 * rng.normal(size=shape[1:]) + rng.normal(size=shape)
    table[:, :, PAD] = -1e9
    table[:, :, START] = -1e9
    table[:, :, END] -= 8.0  # long outputs, so that repeats would be frequent
    # (positions * previous tokens, vocabulary)
    table = keras.ops.convert_to_tensor(table.astype("float32").reshape(-1, vocabulary_size))

    def step(tokens, state, context):
        rows = keras.ops.minimum(state[:, 0], positions - 1) * vocabulary_size + tokens
        return keras.ops.take(table, rows, axis=0), state + 1

    return step


def repeated_ngrams(row, size):
    row = row[: row.index(END)] if END in row else [token for token in row if token != PAD]
    ngrams = [tuple(row[index : index + size]) for index in range(len(row) - size + 1)]
    return len(ngrams) - len(set(ngrams))


SEARCHES = {
    "greedy": lambda step, state, start, lengths, size: greedy_search(
        step, state, {}, start, END, lengths, no_repeat_ngram_size=size
    ),
    "beam": lambda step, state, start, lengths, size: beam_search(
        step,
        state,
        {},
        start,
        END,
        lengths,
        beam_width=3,
        length_penalty=1.0,
        no_repeat_ngram_size=size,
    ),
    "sampling": lambda step, state, start, lengths, size: sample_search(
        step, state, {}, start, END, lengths, seed=3, no_repeat_ngram_size=size
    ),
}


@pytest.mark.parametrize("search", sorted(SEARCHES))
@pytest.mark.parametrize("size", [1, 2, 3])
def test_no_search_emits_a_repeated_ngram_on_random_logits(search, size):
    steps, batch, vocabulary_size = 14, 16, 9
    step = random_logits_step(vocabulary_size, batch + steps, seed=size)
    state = np.arange(batch, dtype="int32")[:, None]  # every row its own logits
    start = np.full((batch,), START, "int32")
    lengths = np.full((batch,), steps, "int32")
    unblocked, _ = SEARCHES[search](step, state, start, lengths, 0)
    blocked, scores = SEARCHES[search](step, state, start, lengths, size)
    unblocked, blocked = np.asarray(unblocked).tolist(), np.asarray(blocked).tolist()
    assert sum(repeated_ngrams(row, size) for row in unblocked) > 0  # the test can fail
    assert [repeated_ngrams(row, size) for row in blocked] == [0] * batch
    assert np.all(np.isfinite(scores)) and np.all(np.asarray(scores) > -1e8)


def test_ngram_blocking_lowers_exactly_the_tokens_that_complete_a_seen_ngram():
    from layers.search import block_repeated_ngrams

    history = np.array([[5, 6, 7, 5, 6, 0], [5, 6, 5, 6, 0, 0]], "int32")
    logits = np.zeros((2, 9), "float32")
    blocked = np.asarray(block_repeated_ngrams(logits, history, 5, 2)) < -1e8
    assert np.flatnonzero(blocked[0]).tolist() == [7]  # last token 6, seen "6 7"
    blocked = np.asarray(block_repeated_ngrams(logits, history, 4, 2)) < -1e8
    assert np.flatnonzero(blocked[1]).tolist() == [5]  # last token 6, seen "6 5"
    blocked = np.asarray(block_repeated_ngrams(logits, history, 5, 3)) < -1e8
    assert np.flatnonzero(blocked[0]).tolist() == [7]  # "5 6" seen, followed by 7
    blocked = np.asarray(block_repeated_ngrams(logits, history, 3, 1)) < -1e8
    assert np.flatnonzero(blocked[0]).tolist() == [5, 6, 7]
    np.testing.assert_array_equal(block_repeated_ngrams(logits, history, 5, 0), logits)


def test_bad_ngram_size_is_named():
    start = np.full((1,), START, "int32")
    with pytest.raises(ValueError, match="no_repeat_ngram_size=-1"):
        greedy_search(
            markov_step(CHAIN), {}, {}, start, END, np.array([3]), no_repeat_ngram_size=-1
        )
