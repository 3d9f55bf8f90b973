import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_testing import run_layer_test

from layers.pooling import SequencePooling

# Three rows of (time=4, features=2) with 4, 2 and 0 valid steps.
INPUTS = np.array(
    [
        [[1.0, -2.0], [3.0, -4.0], [5.0, -6.0], [7.0, -8.0]],
        [[-1.0, -5.0], [-3.0, -2.0], [100.0, 100.0], [100.0, 100.0]],
        [[9.0, 9.0], [9.0, 9.0], [9.0, 9.0], [9.0, 9.0]],
    ],
    dtype="float32",
)
MASK = np.array(
    [[True, True, True, True], [True, True, False, False], [False, False, False, False]]
)


@pytest.fixture(autouse=True)
def seed():
    keras.utils.set_random_seed(3)


def test_masked_mean():
    expected = [[4.0, -5.0], [-2.0, -3.5], [0.0, 0.0]]
    np.testing.assert_allclose(SequencePooling(("mean",))(INPUTS, mask=MASK), expected)


def test_masked_max_with_negative_values():
    expected = [[7.0, -2.0], [-1.0, -2.0], [0.0, 0.0]]
    np.testing.assert_allclose(SequencePooling(("max",))(INPUTS, mask=MASK), expected)


def test_last_valid_step_with_varied_lengths():
    inputs = np.arange(3 * 5 * 2, dtype="float32").reshape(3, 5, 2)  # (batch, time, features)
    lengths = np.array([5, 2, 1])
    mask = np.arange(5)[None, :] < lengths[:, None]
    expected = inputs[np.arange(3), lengths - 1]
    np.testing.assert_allclose(SequencePooling("last")(inputs, mask=mask), expected)


def test_without_mask_every_step_is_valid():
    pooled = SequencePooling(("last", "mean", "max"))(INPUTS)
    expected = np.concatenate([INPUTS[:, -1], INPUTS.mean(axis=1), INPUTS.max(axis=1)], axis=-1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-6)


def test_modes_are_concatenated_in_order():
    pooled = SequencePooling(("max", "last", "mean"))(INPUTS, mask=MASK)
    expected = [
        [7.0, -2.0, 7.0, -8.0, 4.0, -5.0],
        [-1.0, -2.0, -3.0, -2.0, -2.0, -3.5],
        [0.0] * 6,
    ]
    np.testing.assert_allclose(pooled, expected)


def test_attention_weights_sum_to_one_over_valid_steps():
    pooling = SequencePooling(("attention",), attention_units=3)
    pooled = pooling(INPUTS, mask=MASK)
    weights = np.asarray(pooling.attention_weights(INPUTS, mask=MASK))

    assert weights.shape == (3, 4)
    np.testing.assert_allclose(weights.sum(axis=1), [1.0, 1.0, 0.0], rtol=1e-6)
    assert np.all(weights[~MASK] == 0.0)
    assert np.all(weights[MASK] > 0.0)
    np.testing.assert_allclose(pooled, np.einsum("bt,btf->bf", weights, INPUTS), rtol=1e-5)
    np.testing.assert_allclose(pooled[2], [0.0, 0.0])


def test_attention_matches_hand_computed_scores():
    pooling = SequencePooling(("attention",))
    pooled = pooling(INPUTS, mask=MASK)
    hidden_kernel, hidden_bias = pooling.attention_hidden.get_weights()
    (score_kernel,) = pooling.attention_score.get_weights()
    assert hidden_kernel.shape == (2, 2)  # attention_units defaults to the input width

    row = INPUTS[1, :2]  # the two valid steps of row 1
    scores = (np.tanh(row @ hidden_kernel + hidden_bias) @ score_kernel)[:, 0]
    weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    np.testing.assert_allclose(pooled[1], weights @ row, rtol=1e-5)


def test_all_masked_row_gives_zeros_and_finite_gradients():
    pooling = SequencePooling(("last", "mean", "max", "attention"))
    inputs = keras.Variable(INPUTS)
    with tf.GradientTape() as tape:
        pooled = pooling(inputs, mask=MASK)
        loss = keras.ops.sum(pooled)
    gradients = tape.gradient(loss, [inputs, *pooling.trainable_variables])

    np.testing.assert_array_equal(pooled[2], np.zeros(8))
    assert np.all(np.isfinite(pooled))
    assert all(np.all(np.isfinite(gradient)) for gradient in gradients)


def test_float16_masked_attention_and_max_stay_finite():
    pooling = SequencePooling(("max", "attention"), dtype="float16")
    pooled = np.asarray(pooling(INPUTS.astype("float16"), mask=MASK))
    assert pooled.dtype == np.float16
    assert np.all(np.isfinite(pooled))
    np.testing.assert_array_equal(pooled[2], np.zeros(4))


def test_mask_is_consumed_and_not_propagated():
    tokens = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    pooled = SequencePooling(("mean", "attention"))(embedded)
    assert pooled.shape == (None, 8)
    assert getattr(pooled, "_keras_mask", None) is None

    embedding = keras.layers.Embedding(10, 4, mask_zero=True)
    token_values = np.array([[3, 4, 0, 0], [5, 0, 0, 0]])
    pooling = SequencePooling(("mean",))
    embedded_values = np.asarray(embedding(token_values))
    np.testing.assert_allclose(
        pooling(embedding(token_values)),
        [embedded_values[0, :2].mean(axis=0), embedded_values[1, 0]],
        rtol=1e-6,
    )


def test_compute_output_shape():
    pooling = SequencePooling(("last", "attention"))
    assert pooling.compute_output_shape((None, 7, 5)) == (None, 10)


def test_invalid_modes_name_argument_and_value():
    with pytest.raises(ValueError, match=r"modes.*'median'"):
        SequencePooling(("mean", "median"))
    with pytest.raises(ValueError, match=r"modes"):
        SequencePooling(())
    with pytest.raises(ValueError, match=r"attention_units.*0"):
        SequencePooling(("attention",), attention_units=0)
    with pytest.raises(ValueError, match=r"attention"):
        SequencePooling(("mean",)).attention_weights(INPUTS)


def test_modes_come_back_from_config_as_a_tuple():
    pooling = SequencePooling(["max", "attention"], attention_units=6)
    assert SequencePooling.from_config(pooling.get_config()).modes == ("max", "attention")


@pytest.mark.parametrize(
    ("init_kwargs", "width"),
    [
        ({"modes": ("last", "max", "mean", "attention"), "attention_units": 3}, 8),
        ({"modes": "max"}, 2),
    ],
)
def test_layer(init_kwargs, width, tmp_path):
    run_layer_test(
        SequencePooling,
        init_kwargs,
        (INPUTS,),
        tmp_path,
        mask=MASK,
        expected_output_shape=(3, width),
    )
