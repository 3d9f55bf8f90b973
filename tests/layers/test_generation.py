import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from layers.attention_decoder import AttentionDecoder
from layers.generation import (
    BeamSearch,
    Encoding,
    Generator,
    GreedySearch,
    Sampling,
    attention_context,
)
from layers.recurrent_encoder import RecurrentEncoder

PAD, UNKNOWN, START, END = 0, 1, 2, 3
VOCABULARY, UNITS = 12, 8


def translation_parts():
    """A random source embedding + encoder, target embedding, attention decoder, logits."""
    keras.utils.set_random_seed(4)
    source_embedding = keras.layers.Embedding(VOCABULARY, 6, mask_zero=True)
    encoder = RecurrentEncoder(UNITS // 2, cell="gru", bidirectional=True, return_state=True)
    target_embedding = keras.layers.Embedding(VOCABULARY, 6, mask_zero=True)
    decoder = AttentionDecoder(UNITS, cell="gru")
    logits = keras.layers.Dense(VOCABULARY)
    sources = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0], [2, 9, 4, 3, 0]], "int32")
    sequences, states = encoder(source_embedding(sources))
    decoder(target_embedding(sources), sequences, initial_state=states)
    logits.build((None, UNITS))
    # A large bias on the suppressed tokens: the generator must still never produce them.
    logits.bias.assign(np.where(np.arange(VOCABULARY) < 3, 5.0, 0.0).astype("float32"))

    def encode(source_ids):
        mask = ops.not_equal(source_ids, PAD)
        sequences, states = encoder(source_embedding(source_ids), mask=mask, training=False)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1) - 2
        return Encoding(states, attention_context(decoder, sequences, mask), lengths=lengths)

    generator = Generator(
        encode, target_embedding, decoder, logits, start_token_id=START, end_token_id=END,
        suppressed_token_ids=(PAD, START), max_length=9, length_ratio=1.5, length_offset=2,
    )  # fmt: skip
    return generator, sources


def teacher_forced_logits(generator, sources, tokens):
    """The logits of the decoder's training path on `[START] tokens` (no step function)."""
    encoding = generator.encode(sources)
    target_in = np.concatenate([np.full((len(sources), 1), START), tokens[:, :-1]], axis=1)
    outputs = generator.decoder(
        generator.embedding(target_in), encoding.context["encoder_sequences"],
        initial_state=encoding.state, encoder_mask=encoding.context["encoder_mask"],
    )  # fmt: skip
    return ops.convert_to_numpy(generator.output_layer(outputs)) + ops.convert_to_numpy(
        generator.suppression
    )


def test_greedy_tokens_are_the_argmax_of_the_teacher_forced_decoder():
    generator, sources = translation_parts()
    tokens, scores = generator.generate(sources, GreedySearch())
    tokens = ops.convert_to_numpy(tokens)
    logits = teacher_forced_logits(generator, sources, tokens)
    log_probabilities = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    maximum = ops.convert_to_numpy(generator.maximum_lengths(generator.encode(sources), 3))
    for row in range(len(sources)):
        length = next((t + 1 for t in range(maximum[row]) if tokens[row, t] == END), maximum[row])
        np.testing.assert_array_equal(tokens[row, :length], np.argmax(logits[row, :length], -1))
        assert np.all(tokens[row, length:] == PAD)
        expected = log_probabilities[row, np.arange(length), tokens[row, :length]].sum()
        np.testing.assert_allclose(scores[row], expected, rtol=1e-4)


def test_length_policy_scales_the_encoded_lengths_and_clips_them():
    generator, sources = translation_parts()
    # Source tokens without [START]/[END]: 3, 1, 2 -> ceil(1.5 * n) + 2 = 7, 4, 5.
    maximum = generator.maximum_lengths(generator.encode(sources), 3)
    np.testing.assert_array_equal(maximum, [7, 4, 5])
    encoding = Encoding(state=None, context={}, lengths=np.array([0, 100], "int32"))
    np.testing.assert_array_equal(generator.maximum_lengths(encoding, 2), [2, 9])
    generator.length_ratio = None
    np.testing.assert_array_equal(generator.maximum_lengths(encoding, 2), [9, 9])


def test_suppressed_tokens_are_never_generated():
    generator, sources = translation_parts()
    for search in (GreedySearch(), BeamSearch(3), Sampling(seed=0, temperature=3.0)):
        tokens, _ = generator.generate(sources, search)
        produced = ops.convert_to_numpy(tokens)
        assert not np.isin(produced[produced != PAD], [PAD, START]).any(), search


def test_a_feature_grid_without_mask_decodes_in_one_graph_like_single_rows():
    # Captioning's shape: image features (batch, 2 x 3 grid, channels), no mask, no lengths.
    keras.utils.set_random_seed(5)
    embedding = keras.layers.Embedding(VOCABULARY, 6)
    decoder = AttentionDecoder(UNITS, cell="lstm", attention="multiplicative")
    logits = keras.layers.Dense(VOCABULARY)
    initial = keras.layers.Dense(UNITS, activation="tanh")
    features = np.random.default_rng(0).normal(size=(5, 2, 3, 4)).astype("float32")
    decoder(embedding(np.zeros((1, 1), "int32")), features.reshape(5, 6, 4)[:1])
    logits.build((None, UNITS))

    def encode(images):
        grid = ops.reshape(images, (ops.shape(images)[0], -1, 4))  # (batch, 6, channels)
        mean = initial(ops.mean(grid, axis=1))
        return Encoding([mean, mean], attention_context(decoder, grid))

    generator = Generator(encode, embedding, decoder, logits, START, END, max_length=6,
                          suppressed_token_ids=(PAD, START))  # fmt: skip

    @tf.function(input_signature=[tf.TensorSpec([None, 2, 3, 4], tf.float32)])
    def caption(images):
        return generator.generate(images, BeamSearch(width=3, length_penalty=0.6))

    tokens, scores = caption(features)
    assert tokens.shape == (5, 6)
    for row in (0, 3):
        single_tokens, single_scores = caption(features[row : row + 1])
        np.testing.assert_array_equal(single_tokens[0], tokens[row])
        np.testing.assert_allclose(single_scores[0], scores[row], atol=1e-5)


class CellDecoder(keras.layers.Layer):
    """A decoder with no encoder context: one GRU cell step."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.cell = keras.layers.GRUCell(units)

    def step(self, inputs, states):
        outputs, new_states = self.cell(inputs, states)
        return outputs, new_states


def test_text_generation_without_context_samples_from_a_prompt_reproducibly():
    keras.utils.set_random_seed(6)
    embedding = keras.layers.Embedding(VOCABULARY, 5)
    decoder = CellDecoder(UNITS)
    logits = keras.layers.Dense(VOCABULARY)
    embedding.build()
    decoder.cell.build((None, 5))
    logits.build((None, UNITS))

    def encode(prompt_last_tokens):
        batch = ops.shape(prompt_last_tokens)[0]
        return Encoding([ops.zeros((batch, UNITS))], {}, start_tokens=prompt_last_tokens)

    generator = Generator(encode, embedding, decoder, logits, START, END, max_length=8)
    prompt = np.array([4, 5, 6, 4], "int32")
    first, _ = generator.generate(prompt, Sampling(seed=1, temperature=1.5, top_k=5))
    again, _ = generator.generate(prompt, Sampling(seed=1, temperature=1.5, top_k=5))
    other, _ = generator.generate(prompt, Sampling(seed=2, temperature=1.5, top_k=5))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    greedy, greedy_scores = generator.generate(prompt, GreedySearch())
    cold, cold_scores = generator.generate(prompt, Sampling(seed=2, temperature=1e-4))
    np.testing.assert_array_equal(cold, greedy)
    np.testing.assert_allclose(cold_scores, greedy_scores, rtol=1e-5)
    # Rows 0 and 3 share their prompt: greedy gives them the same text.
    np.testing.assert_array_equal(greedy[0], greedy[3])


def test_bad_arguments_are_named():
    generator, _ = translation_parts()
    with pytest.raises(ValueError, match="width"):
        BeamSearch(width=0)
    with pytest.raises(ValueError, match="max_length"):
        Generator(None, generator.embedding, generator.decoder, generator.output_layer,
                  START, END, max_length=0)  # fmt: skip
    with pytest.raises(ValueError, match="length_ratio"):
        Generator(None, generator.embedding, generator.decoder, generator.output_layer,
                  START, END, length_ratio=-1.0)  # fmt: skip
