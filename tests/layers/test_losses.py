import keras
import numpy as np
import pytest

from layers.losses import (
    MaskedSequenceCrossentropy,
    MedianAbsoluteError,
    PinballLoss,
    TokenAccuracy,
)


def test_pinball_loss_against_hand_computed_values():
    loss = PinballLoss(quantiles=(0.1, 0.5, 0.9))
    y_true = np.array([[1.0], [2.0]], dtype=np.float32)  # (batch, 1)
    y_pred = np.array([[[0.0, 2.0, 1.0]], [[3.0, 2.0, 0.0]]], dtype=np.float32)
    # Example 1: errors 1, -1, 0 -> 0.1, 0.5, 0.0. Example 2: errors -1, 0, 2 -> 0.9, 0, 1.8.
    expected = np.mean([(0.1 + 0.5 + 0.0) / 3, (0.9 + 0.0 + 1.8) / 3])
    assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-6)


def test_median_pinball_is_half_the_absolute_error():
    y_true = np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32)
    y_pred = np.zeros((4, 3, 2, 1), dtype=np.float32)
    value = float(PinballLoss(quantiles=(0.5,))(y_true, y_pred))
    assert value == pytest.approx(0.5 * np.abs(y_true).mean(), rel=1e-5)


def test_serialization_and_bad_levels():
    loss = PinballLoss(quantiles=(0.2, 0.8))
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, PinballLoss) and restored.quantiles == (0.2, 0.8)
    with pytest.raises(ValueError, match="quantiles"):
        PinballLoss(quantiles=(0.5, 1.0))


def test_learns_quantiles_of_a_uniform_target():
    keras.utils.set_random_seed(1)  # the Dense start, whatever ran before in the process
    rng = np.random.default_rng(1)
    targets = rng.uniform(0.0, 1.0, size=(2048, 1)).astype(np.float32)
    inputs = np.ones((2048, 1), dtype=np.float32)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(3), keras.layers.Reshape((1, 3))]
    )
    model.compile(keras.optimizers.Adam(0.05), loss=PinballLoss((0.1, 0.5, 0.9)))
    model.fit(inputs, targets, epochs=40, batch_size=256, verbose=0)
    np.testing.assert_allclose(
        model.predict(inputs[:1], verbose=0)[0, 0], [0.1, 0.5, 0.9], atol=0.05
    )


def test_median_absolute_error_scores_the_quantile_nearest_one_half():
    y_true = np.array([[1.0, 2.0], [0.0, -1.0]], dtype=np.float32)  # (batch, horizon)
    y_pred = np.zeros((2, 2, 3), dtype=np.float32)
    y_pred[..., 1] = [[0.0, 5.0], [1.0, -1.0]]  # the median column; the others must not count
    y_pred[..., 0], y_pred[..., 2] = -100.0, 100.0
    metric = MedianAbsoluteError(quantiles=(0.1, 0.45, 0.9))
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx((1.0 + 3.0 + 1.0 + 0.0) / 4)
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert restored.quantiles == (0.1, 0.45, 0.9) and restored.name == "mae"


def test_masked_sequence_crossentropy_averages_the_non_padding_tokens():
    logits = np.zeros((2, 3, 4), dtype=np.float32)
    logits[0, 0] = [0.0, np.log(3.0), 0.0, 0.0]  # p(1) = 3 / 6
    targets = np.array([[1, 2, 0], [3, 0, 0]])
    # Tokens: -log(1/2), -log(1/4), -log(1/4); the padding counts for nothing.
    expected = (np.log(2.0) + 2 * np.log(4.0)) / 3
    loss = MaskedSequenceCrossentropy(pad_id=0)
    assert float(loss(targets, logits)) == pytest.approx(expected, rel=1e-6)
    # pad_id=3: the last example's token is padding now, the zeros are targets.
    others = (np.log(2.0) + 4 * np.log(4.0)) / 5
    assert float(MaskedSequenceCrossentropy(pad_id=3)(targets, logits)) == pytest.approx(
        others, rel=1e-6
    )
    assert float(loss(np.zeros((1, 2)), np.zeros((1, 2, 4)))) == 0.0


def test_label_smoothing_mixes_in_the_uniform_distribution():
    logits = np.array([[[2.0, 0.0, -1.0]]], dtype=np.float32)
    log_probabilities = logits[0, 0] - np.log(np.exp(logits[0, 0]).sum())
    targets = 0.8 * np.eye(3)[1] + 0.2 / 3
    expected = -(targets * log_probabilities).sum()
    loss = MaskedSequenceCrossentropy(pad_id=0, label_smoothing=0.2)
    assert float(loss(np.array([[1]]), logits)) == pytest.approx(expected, rel=1e-6)


def test_masked_sequence_crossentropy_serializes_its_arguments():
    loss = MaskedSequenceCrossentropy(pad_id=5, label_smoothing=0.1)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MaskedSequenceCrossentropy)
    assert (restored.pad_id, restored.label_smoothing) == (5, 0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedSequenceCrossentropy(label_smoothing=1.0)


def test_token_accuracy_counts_weighted_tokens_across_batches_of_any_length():
    metric = TokenAccuracy()
    # A batch of long rows (2 of 6 weighted tokens right) and one of short rows (2 of 2 right).
    long_true = np.array([[1, 2, 1, 2], [1, 2, 0, 0]])
    long_pred = keras.ops.one_hot(np.array([[1, 2, 0, 0], [0, 0, 1, 1]]), 3)
    metric.update_state(long_true, long_pred, (long_true != 0).astype("float32"))
    short_true = np.array([[1], [2]])
    metric.update_state(short_true, keras.ops.one_hot(short_true, 3), np.ones((2, 1), "float32"))
    assert float(metric.result()) == pytest.approx(4 / 8)
    # Keras' row-averaging accuracy weighs the short batch more: not the token accuracy.
    keras_metric = keras.metrics.SparseCategoricalAccuracy()
    keras_metric.update_state(long_true, long_pred, (long_true != 0).astype("float32"))
    keras_metric.update_state(short_true, keras.ops.one_hot(short_true, 3), np.ones((2, 1)))
    assert float(keras_metric.result()) != pytest.approx(4 / 8)
    metric.reset_state()
    metric.update_state([[1, 2, 0]], [[[0, 1, 0], [0, 1, 0], [1, 0, 0]]], [[1.0, 1.0, 0.0]])
    assert float(metric.result()) == pytest.approx(0.5)
