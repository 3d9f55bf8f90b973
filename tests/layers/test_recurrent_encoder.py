import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from layers.recurrent_encoder import RecurrentEncoder

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 6
LENGTHS = np.array([5, 3, 1])


@pytest.fixture(autouse=True)
def seed():
    keras.utils.set_random_seed(7)


def random_sequences(features=FEATURES):
    return np.random.default_rng(0).normal(size=(BATCH, TIME, features)).astype("float32")


def right_padded_mask():
    return np.arange(TIME)[None, :] < LENGTHS[:, None]  # (batch, time)


def reference_layer(cell, **kwargs):
    layer_class = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    return layer_class(UNITS, return_sequences=True, return_state=True, **kwargs)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_layer_matches_keras_layer(cell):
    inputs = random_sequences()
    encoder = RecurrentEncoder(UNITS, cell=cell, return_state=True)
    sequences, states = encoder(inputs)
    reference = reference_layer(cell)
    reference.build(inputs.shape)
    reference.set_weights(encoder.recurrent_layers[0].get_weights())
    expected_sequences, *expected_states = reference(inputs)

    np.testing.assert_allclose(sequences, expected_sequences, rtol=1e-5, atol=1e-6)
    assert len(states) == (2 if cell == "lstm" else 1)
    for state, expected_state in zip(states, expected_states, strict=True):
        np.testing.assert_allclose(state, expected_state, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_masked_steps_match_unpadded_rows(cell):
    inputs = random_sequences()
    encoder = RecurrentEncoder(UNITS, cell=cell, return_state=True)
    sequences, states = encoder(inputs, mask=right_padded_mask())
    reference = reference_layer(cell)
    reference.build(inputs.shape)
    reference.set_weights(encoder.recurrent_layers[0].get_weights())

    for row, length in enumerate(LENGTHS):
        expected_sequences, *expected_states = reference(inputs[row : row + 1, :length])
        np.testing.assert_allclose(
            sequences[row, :length], expected_sequences[0], rtol=1e-5, atol=1e-6
        )
        # The final hidden state is the output at the last valid step.
        np.testing.assert_allclose(states[0][row], sequences[row, length - 1], rtol=1e-5)
        for state, expected_state in zip(states, expected_states, strict=True):
            np.testing.assert_allclose(state[row], expected_state[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("use_mask", [False, True])
def test_bidirectional_states_are_forward_and_backward_concatenated(cell, use_mask):
    inputs = random_sequences()
    mask = right_padded_mask() if use_mask else None
    encoder = RecurrentEncoder(UNITS, cell=cell, bidirectional=True, return_state=True)
    sequences, states = encoder(inputs, mask=mask)
    reference = keras.layers.Bidirectional(reference_layer(cell))
    reference.build(inputs.shape)
    reference.set_weights(encoder.recurrent_layers[0].get_weights())
    expected_sequences, *directional_states = reference(inputs, mask=mask)
    num_states = len(directional_states) // 2

    assert encoder.output_units == encoder.state_units == 2 * UNITS
    assert sequences.shape == (BATCH, TIME, 2 * UNITS)
    valid = right_padded_mask() if use_mask else np.ones((BATCH, TIME), bool)
    np.testing.assert_allclose(
        np.asarray(sequences)[valid], np.asarray(expected_sequences)[valid], rtol=1e-5, atol=1e-6
    )
    assert len(states) == num_states
    for index, state in enumerate(states):
        forward, backward = directional_states[index], directional_states[num_states + index]
        assert state.shape == (BATCH, 2 * UNITS)
        np.testing.assert_allclose(
            state, np.concatenate([forward, backward], axis=-1), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("merge_mode", ["sum", "ave", "mul"])
def test_merge_modes_keep_units_and_states_stay_concatenated(merge_mode):
    encoder = RecurrentEncoder(UNITS, bidirectional=True, merge_mode=merge_mode, return_state=True)
    sequences, states = encoder(random_sequences())
    assert encoder.output_units == UNITS
    assert sequences.shape == (BATCH, TIME, UNITS)
    assert [state.shape for state in states] == [(BATCH, 2 * UNITS)] * 2


def zero_all_weights(layer):
    layer.set_weights([np.zeros_like(weight) for weight in layer.get_weights()])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_residual_passes_input_through_zeroed_layers(cell):
    # With every weight zero an LSTM or GRU outputs zeros, so each layer's output is its input.
    inputs = random_sequences(features=UNITS)
    residual_encoder = RecurrentEncoder(UNITS, num_layers=3, cell=cell)
    plain_encoder = RecurrentEncoder(UNITS, num_layers=3, cell=cell, residual=False)
    for encoder in (residual_encoder, plain_encoder):
        encoder.build(inputs.shape)
        zero_all_weights(encoder)

    assert residual_encoder.residual_flags == [True, True, True]
    np.testing.assert_allclose(residual_encoder(inputs), inputs, atol=1e-7)
    np.testing.assert_allclose(plain_encoder(inputs), np.zeros_like(inputs), atol=1e-7)


def test_residual_matches_manual_composition():
    inputs = random_sequences()
    mask = right_padded_mask()
    encoder = RecurrentEncoder(UNITS, num_layers=3, bidirectional=True, merge_mode="sum")
    outputs = encoder(inputs, mask=mask)

    # The first layer changes the width (4 -> 6), so only layers 2 and 3 add their input.
    assert encoder.residual_flags == [False, True, True]
    first, second, third = encoder.recurrent_layers
    expected = first(inputs, mask=mask)
    expected = second(expected, mask=mask) + expected
    expected = third(expected, mask=mask) + expected
    valid = right_padded_mask()
    np.testing.assert_allclose(
        np.asarray(outputs)[valid], np.asarray(expected)[valid], rtol=1e-5, atol=1e-6
    )


def test_dropout_only_in_training():
    inputs = random_sequences()
    encoder = RecurrentEncoder(UNITS, num_layers=2, dropout=0.5)
    inference = encoder(inputs, training=False)
    np.testing.assert_allclose(encoder(inputs, training=False), inference)
    assert not np.allclose(encoder(inputs, training=True), inference)
    assert len(encoder.dropout_layers) == 1


def test_mask_from_embedding_is_consumed_and_propagated():
    token_values = np.array([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]])
    embedding = keras.layers.Embedding(10, FEATURES, mask_zero=True)
    encoder = RecurrentEncoder(UNITS, num_layers=2, return_state=True)
    sequences, states = encoder(embedding(token_values))
    truncated_sequences, truncated_states = encoder(embedding(token_values[:1, :3]))

    np.testing.assert_array_equal(sequences._keras_mask, token_values != 0)
    assert all(getattr(state, "_keras_mask", None) is None for state in states)
    np.testing.assert_allclose(sequences[0, :3], truncated_sequences[0], rtol=1e-5, atol=1e-6)
    for state, truncated_state in zip(states, truncated_states, strict=True):
        np.testing.assert_allclose(state[0], truncated_state[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_final_output_only_equals_the_sequences_at_the_last_valid_step(cell):
    inputs, mask = random_sequences(), right_padded_mask()
    stacked = dict(units=UNITS, num_layers=2, cell=cell, return_state=True)
    sequences, states = RecurrentEncoder(**stacked)(inputs, mask=mask)
    keras.utils.set_random_seed(7)
    final, final_states = RecurrentEncoder(**stacked, return_sequences=False)(inputs, mask=mask)
    assert final.shape == (BATCH, UNITS)
    # Same weights (same seed); the residual of the last layer applies to sequences only.
    np.testing.assert_allclose(final, states[0], rtol=1e-5, atol=1e-6)
    for state, final_state in zip(states, final_states, strict=True):
        np.testing.assert_allclose(final_state, state, rtol=1e-5, atol=1e-6)


def test_bidirectional_final_output_covers_the_whole_sequence_both_ways():
    inputs, mask = random_sequences(), right_padded_mask()
    encoder = RecurrentEncoder(UNITS, cell="gru", bidirectional=True, return_sequences=False)
    final = encoder(inputs, mask=mask)
    # Forward half: the state after the last valid step; backward half: after the first.
    forward = keras.layers.GRU(UNITS, return_sequences=True)
    backward = keras.layers.GRU(UNITS, return_sequences=True, go_backwards=True)
    layer = encoder.recurrent_layers[0]
    forward.build(inputs.shape)
    backward.build(inputs.shape)
    forward.set_weights(layer.forward_layer.get_weights())
    backward.set_weights(layer.backward_layer.get_weights())
    for row, length in enumerate(LENGTHS):
        valid = inputs[row : row + 1, :length]
        np.testing.assert_allclose(final[row, :UNITS], forward(valid)[0, -1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(final[row, UNITS:], backward(valid)[0, -1], rtol=1e-5, atol=1e-6)


def test_symbolic_shapes():
    tokens = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(10, FEATURES, mask_zero=True)(tokens)
    encoder = RecurrentEncoder(UNITS, cell="gru", bidirectional=True, return_state=True)
    sequences, states = encoder(embedded)
    assert sequences.shape == (None, None, 2 * UNITS)
    assert [state.shape for state in states] == [(None, 2 * UNITS)]
    assert sequences._keras_mask is not None
    final = RecurrentEncoder(UNITS, bidirectional=True, return_sequences=False)(embedded)
    assert final.shape == (None, 2 * UNITS)
    assert getattr(final, "_keras_mask", None) is None


def test_invalid_arguments_name_argument_and_value():
    with pytest.raises(ValueError, match=r"cell.*'rnn'"):
        RecurrentEncoder(UNITS, cell="rnn")
    with pytest.raises(ValueError, match=r"merge_mode.*'first'"):
        RecurrentEncoder(UNITS, merge_mode="first")
    with pytest.raises(ValueError, match=r"num_layers.*0"):
        RecurrentEncoder(UNITS, num_layers=0)
    with pytest.raises(ValueError, match=r"units.*-1"):
        RecurrentEncoder(-1)
    with pytest.raises(ValueError, match=r"dropout.*1.5"):
        RecurrentEncoder(UNITS, dropout=1.5)


@pytest.mark.parametrize(
    ("init_kwargs", "output_shapes"),
    [
        (
            {
                "units": UNITS,
                "num_layers": 2,
                "cell": "gru",
                "bidirectional": True,
                "merge_mode": "ave",
                "residual": False,
                "dropout": 0.25,
                "return_state": True,
            },
            [(BATCH, TIME, UNITS), (BATCH, 2 * UNITS)],
        ),
        (
            {"units": UNITS, "num_layers": 2, "bidirectional": True, "return_sequences": False},
            [(BATCH, 2 * UNITS)],
        ),
        ({"units": UNITS, "return_state": True}, [(BATCH, TIME, UNITS)] + [(BATCH, UNITS)] * 2),
    ],
)
def test_layer(init_kwargs, output_shapes, tmp_path):
    run_layer_test(
        RecurrentEncoder,
        init_kwargs,
        (random_sequences(),),
        tmp_path,
        mask=right_padded_mask(),
        expected_output_shape=output_shapes,
    )
