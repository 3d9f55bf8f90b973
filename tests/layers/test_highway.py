import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from layers.highway import LinearForecast, LinearHighway


def test_selects_the_last_value_with_hand_set_weights():
    layer = LinearHighway(window=2, horizon=3)
    inputs = np.arange(8, dtype=np.float32).reshape(1, 4, 2)  # series 0: 0,2,4,6; 1: 1,3,5,7
    layer.build(inputs.shape)
    layer.dense.set_weights([np.array([[0, 0, 0], [1, 1, 1]], np.float32), np.zeros(3)])
    np.testing.assert_allclose(layer(inputs), [[[6, 7], [6, 7], [6, 7]]])


def test_layer(tmp_path):
    inputs = np.random.default_rng(0).normal(size=(8, 6, 2)).astype(np.float32)
    run_layer_test(
        LinearHighway,
        {"window": 4, "horizon": 2},
        (inputs,),
        tmp_path,
        expected_output_shape=(8, 2, 2),
    )


def test_rejects_a_window_longer_than_the_input():
    with pytest.raises(ValueError, match="window"):
        LinearHighway(window=5, horizon=2)(np.zeros((1, 3, 1), np.float32))
    with pytest.raises(ValueError, match="horizon"):
        LinearHighway(window=2, horizon=0)


@pytest.mark.parametrize(
    ("transform", "forward", "inverse"),
    [
        ("sqrt", np.sqrt, lambda values: np.square(np.maximum(values, 0.0))),
        ("log", np.log, np.exp),
    ],
)
def test_linear_forecast_is_the_ridge_in_original_transformed_units(transform, forward, inverse):
    rng = np.random.default_rng(0)
    mean, std = np.array([50.0, 3.0]), np.array([20.0, 2.0])
    original = rng.uniform(1.0, 100.0, size=(5, 6, 2))
    kernel = rng.normal(size=(4 * 2, 3)) * 0.1  # (window * columns, horizon * targets)
    bias = rng.normal(size=3)
    layer = LinearForecast(
        4, horizon=3, targets=1, transform=transform, input_mean=mean, input_std=std
    )
    normalized = ((original - mean) / std).astype(np.float32)
    layer.build(normalized.shape)
    layer.dense.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    expected = inverse(forward(original[:, -4:]).reshape(5, -1) @ kernel + bias)[..., None]
    np.testing.assert_allclose(layer(normalized) * std[0] + mean[0], expected, rtol=1e-4, atol=1e-3)


def test_a_log_forecast_stays_finite_on_values_outside_its_domain():
    layer = LinearForecast(2, horizon=1, targets=1, transform="log")
    layer.build((1, 2, 1))
    layer.dense.set_weights([np.array([[0.0], [-5.0]], np.float32), np.zeros(1, np.float32)])
    # log(0) is floored: -5 * log(1e-30) = 345, capped before the exponential (float32 max 3e38).
    forecast = keras.ops.convert_to_numpy(layer(np.array([[[3.0], [0.0]]], np.float32)))
    np.testing.assert_allclose(forecast, np.exp(80.0).astype(np.float32), rtol=1e-5)


@pytest.mark.parametrize("trainable", [True, False])
def test_linear_forecast_layer(trainable, tmp_path):
    inputs = np.random.default_rng(0).normal(size=(4, 6, 2)).astype(np.float32)
    init_kwargs = {
        "window": 3,
        "horizon": 2,
        "targets": 2,
        "transform": "sqrt",
        "input_mean": [1.0, 2.0],
        "input_std": [2.0, 4.0],
        "trainable": trainable,
    }
    run_layer_test(
        LinearForecast, init_kwargs, (inputs,), tmp_path, expected_output_shape=(4, 2, 2)
    )


def test_a_frozen_linear_forecast_stays_frozen_in_a_model():
    layer = LinearForecast(3, horizon=2, targets=1, trainable=False)
    inputs = keras.Input((6, 1))
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer="sgd", loss="mse")
    before = [weights.copy() for weights in layer.get_weights()]
    model.fit(np.ones((4, 6, 1)), np.zeros((4, 2, 1)), epochs=1, verbose=0)
    assert not model.trainable_weights
    for weights, start in zip(layer.get_weights(), before, strict=True):
        np.testing.assert_array_equal(weights, start)


def test_linear_forecast_rejects_bad_arguments():
    with pytest.raises(ValueError, match="transform"):
        LinearForecast(2, 1, 1, transform="cube")
    with pytest.raises(ValueError, match="input_std"):
        LinearForecast(2, 1, 1, input_mean=[0.0])
    with pytest.raises(ValueError, match="window"):
        LinearForecast(5, 1, 1)(np.zeros((1, 3, 1), np.float32))
