import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from layers.attention_decoder import AttentionDecoder

BATCH, SOURCE_TIME, TARGET_TIME, FEATURES, ENCODER_UNITS, UNITS = 3, 5, 4, 6, 8, 7


def random_inputs(seed=0):
    generator = np.random.default_rng(seed)
    inputs = generator.normal(size=(BATCH, TARGET_TIME, FEATURES)).astype("float32")
    encoder_sequences = generator.normal(size=(BATCH, SOURCE_TIME, ENCODER_UNITS)).astype("float32")
    encoder_mask = np.array([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    return inputs, encoder_sequences, encoder_mask


@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weights_sum_to_one_on_valid_steps_and_zero_on_masked_steps(attention, cell):
    inputs, encoder_sequences, encoder_mask = random_inputs()
    decoder = AttentionDecoder(UNITS, cell=cell, attention=attention)
    outputs, weights = decoder(
        inputs, encoder_sequences, encoder_mask=encoder_mask, return_attention_scores=True
    )
    outputs, weights = keras.ops.convert_to_numpy(outputs), keras.ops.convert_to_numpy(weights)
    assert outputs.shape == (BATCH, TARGET_TIME, UNITS)
    assert weights.shape == (BATCH, TARGET_TIME, SOURCE_TIME)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    masked = np.broadcast_to(~encoder_mask[:, None, :], weights.shape)
    assert np.all(weights[masked] == 0.0)
    assert np.all(weights[~masked] > 0.0)
    # The last sequence has one valid source step: all of the weight goes there.
    np.testing.assert_allclose(weights[2, :, 0], 1.0)


def test_masked_source_steps_do_not_change_outputs():
    inputs, encoder_sequences, encoder_mask = random_inputs()
    decoder = AttentionDecoder(UNITS)
    first = decoder(inputs, encoder_sequences, encoder_mask=encoder_mask)
    changed = encoder_sequences.copy()
    changed[~encoder_mask] = 100.0
    second = decoder(inputs, changed, encoder_mask=encoder_mask)
    np.testing.assert_allclose(first, second, atol=1e-6)


@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_step_by_step_equals_teacher_forcing(attention, cell):
    inputs, encoder_sequences, encoder_mask = random_inputs(1)
    decoder = AttentionDecoder(UNITS, cell=cell, attention=attention)
    generator = np.random.default_rng(2)
    num_states = 2 if cell == "lstm" else 1
    initial_state = [
        generator.normal(size=(BATCH, UNITS)).astype("float32") for _ in range(num_states)
    ]
    outputs, weights = decoder(
        inputs,
        encoder_sequences,
        initial_state=initial_state,
        encoder_mask=encoder_mask,
        return_attention_scores=True,
    )
    keys = decoder.attention_keys(encoder_sequences)
    states = initial_state
    for time in range(TARGET_TIME):
        step_outputs, states, step_weights = decoder.step(
            inputs[:, time], states, encoder_sequences, keys, encoder_mask
        )
        np.testing.assert_allclose(step_outputs, outputs[:, time], atol=1e-5)
        np.testing.assert_allclose(step_weights, weights[:, time], atol=1e-5)


def test_target_mask_zeroes_padded_outputs():
    inputs, encoder_sequences, encoder_mask = random_inputs()
    target_mask = np.array([[True] * 4, [True] * 2 + [False] * 2, [True] * 3 + [False]])
    outputs = AttentionDecoder(UNITS)(
        inputs, encoder_sequences, mask=target_mask, encoder_mask=encoder_mask
    )
    outputs = keras.ops.convert_to_numpy(outputs)
    assert np.all(outputs[~target_mask] == 0.0)


@pytest.mark.parametrize(
    "init_kwargs",
    [
        {"units": UNITS, "attention": "multiplicative", "dropout": 0.1},
        {"units": UNITS, "cell": "gru", "attention": "additive"},
    ],
)
def test_layer(init_kwargs, tmp_path):
    inputs, encoder_sequences, encoder_mask = random_inputs()
    target_mask = np.array([[True] * 4, [True] * 2 + [False] * 2, [True] * 3 + [False]])
    num_states = 2 if init_kwargs.get("cell", "lstm") == "lstm" else 1
    generator = np.random.default_rng(3)
    initial_state = [
        generator.normal(size=(BATCH, UNITS)).astype("float32") for _ in range(num_states)
    ]
    run_layer_test(
        AttentionDecoder,
        init_kwargs,
        (inputs, encoder_sequences),
        tmp_path,
        call_kwargs={
            "initial_state": initial_state,
            "encoder_mask": encoder_mask,
            "return_attention_scores": True,
        },
        mask=target_mask,
        expected_output_shape=[(BATCH, TARGET_TIME, UNITS), (BATCH, TARGET_TIME, SOURCE_TIME)],
    )


@pytest.mark.parametrize(
    "arguments",
    [
        {"units": 0},
        {"units": 4, "cell": "rnn"},
        {"units": 4, "attention": "dot"},
        {"units": 4, "dropout": 1.0},
    ],
)
def test_bad_arguments_name_the_argument(arguments):
    name = [key for key in arguments if key != "units"] or ["units"]
    with pytest.raises(ValueError, match=name[-1]):
        AttentionDecoder(**arguments)
