import numpy as np

from apps.forecasting import evaluation


def test_fit_ridge_is_the_centered_closed_form_with_an_unpenalized_bias():
    generator = np.random.default_rng(0)
    histories = generator.normal(size=(40, 6, 2))  # (windows, lookback, columns)
    futures = generator.normal(size=(40, 3, 1)) + 5.0  # (windows, horizon, targets)
    weights, bias = evaluation.fit_ridge(histories, futures, alpha=2.5)
    features, outputs = histories.reshape(40, -1), futures.reshape(40, -1)
    centered = features - features.mean(axis=0)
    expected = np.linalg.solve(
        centered.T @ centered + 2.5 * np.eye(12), centered.T @ (outputs - outputs.mean(axis=0))
    )
    np.testing.assert_allclose(weights, expected, rtol=1e-10)
    np.testing.assert_allclose(bias, outputs.mean(axis=0) - features.mean(axis=0) @ expected)
    forecast = evaluation.ridge_forecast(histories, weights, bias, horizon=3)
    np.testing.assert_allclose(forecast.reshape(40, -1), features @ weights + bias)


def test_fit_ridge_recovers_an_exact_linear_map_with_a_tiny_penalty():
    generator = np.random.default_rng(1)
    features = generator.normal(size=(50, 4))
    true_weights = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0], [-1.0, 1.0]])
    weights, bias = evaluation.fit_ridge(features, features @ true_weights + [7.0, -3.0], 1e-9)
    np.testing.assert_allclose(weights, true_weights, atol=1e-8)
    np.testing.assert_allclose(bias, [7.0, -3.0], atol=1e-8)
