"""Each forecasting model type learns a noiseless sine far below the last-value baseline."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from apps.forecasting import config as config_lib
from apps.forecasting import evaluation
from apps.forecasting.app import APP
from apps.forecasting.evaluation import model_inputs
from pipelines import windows


def write_sine(path, steps=320, period=12.0):
    t = np.arange(steps)
    frame = pd.DataFrame(
        {
            "month": pd.date_range("1990-01-01", periods=steps, freq="MS").strftime("%Y-%m-%d"),
            "level": 50.0 + 20.0 * np.sin(2 * np.pi * t / period),
            "signal": np.sin(2 * np.pi * (t + 1) / period),
        }
    )
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def sine_csv(tmp_path_factory):
    return write_sine(tmp_path_factory.mktemp("sine") / "sine.csv")


@pytest.mark.parametrize(
    ("overrides", "epochs"),
    [
        ({"model_type": "direct"}, 6),
        ({"model_type": "autoregressive"}, 6),
        ({"model_type": "encoder-decoder", "known_future": True}, 6),
        ({"model_type": "direct", "quantiles": (0.1, 0.5, 0.9), "highway_window": 12}, 6),
        ({"model_type": "autoregressive", "quantiles": (0.1, 0.5, 0.9), "cell": "lstm"}, 6),
    ],
    ids=[
        "direct",
        "autoregressive",
        "encoder-decoder-known-future",
        "direct-quantile-highway",
        "autoregressive-quantile-lstm",
    ],
)
def test_model_learns_a_sine(sine_csv, overrides, epochs):
    keras.utils.set_random_seed(0)
    config = config_lib.tiny()
    config.data.source = sine_csv
    config.data.target_columns = ("level",)
    if overrides.pop("known_future", False):
        config.data.covariate_columns = ("signal",)
        config.data.known_future_columns = ("signal",)
    for key, value in overrides.items():
        setattr(config.model, key, value)
    config.training.epochs = epochs
    app = APP
    datasets = app.data.load_data(config)
    model = app.model.build_model(config, datasets.assets)
    model.fit(datasets.train, validation_data=datasets.validation, epochs=epochs, verbose=0)

    assets, series = datasets.assets, datasets.series
    normalized = assets.normalization.normalize(series.values).astype(np.float32)
    starts = datasets.test_starts
    output = model.predict(model_inputs(normalized, starts, config, assets), verbose=0)
    if config.model.quantiles:
        assert output.shape == (len(starts), 4, 1, 3)
        output = output[..., 1]
    forecast = assets.normalization.denormalize(output, columns=[0])
    _, truth = windows.window_arrays(series.values, starts, 16, 4, targets=1)
    histories, _ = windows.window_arrays(series.values, starts, 16, 4, targets=1)
    last_value_error = np.abs(histories[:, -1:, :1] - truth).mean()
    model_error = np.abs(forecast - truth).mean()
    assert model_error < 0.2 * last_value_error, (model_error, last_value_error)


def test_least_squares_highway_start_is_the_linear_forecast(sine_csv):
    """A sine obeys a linear recurrence, so the warm-started model is exact before training."""
    config = config_lib.tiny()
    config.data.source = sine_csv
    config.data.target_columns = ("level",)
    config.model.highway_window = 16
    config.model.highway_alpha = 1e-6
    app = APP
    datasets = app.data.load_data(config)
    assert np.shape(datasets.assets.highway_kernel) == (16, 4)
    model = app.model.build_model(config, datasets.assets)
    inputs, targets = next(iter(datasets.test))
    np.testing.assert_allclose(model.predict(inputs, verbose=0), targets, atol=1e-3)
    config.model.highway_least_squares = False
    cold = app.model.build_model(config, app.data.load_data(config).assets)
    assert np.abs(cold.predict(inputs, verbose=0) - targets.numpy()).mean() > 0.05


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_autoregressive_model_with_dropout_trains(sine_csv, cell):
    """The decoder cell's dropout mask must not outlive one call (one traced graph)."""
    keras.utils.set_random_seed(0)
    config = config_lib.tiny()
    config.data.source = sine_csv
    config.data.target_columns = ("level",)
    config.model.model_type = "autoregressive"
    config.model.cell = cell
    config.model.dropout = 0.3
    app = APP
    datasets = app.data.load_data(config)
    model = app.model.build_model(config, datasets.assets)
    history = model.fit(
        datasets.train.take(2), validation_data=datasets.validation.take(1), epochs=2, verbose=0
    )
    assert np.all(np.isfinite(history.history["loss"] + history.history["val_loss"]))


def test_linear_base_start_is_the_validation_chosen_ridge(sine_csv):
    """Untrained, the model with a linear base forecasts exactly the evaluation's chosen ridge."""
    config = config_lib.tiny()
    config.data.source = sine_csv
    config.data.target_columns = ("level",)
    config.model.linear_base = True
    app = APP
    datasets = app.data.load_data(config)
    assets, series = datasets.assets, datasets.series
    assert config.evaluation.ridge_lags == (12, 16)  # the season's multiples, and the lookback
    assert assets.linear_lags in (12, 16)
    model = app.model.build_model(config, assets)
    assert not model.get_layer("linear_base").trainable_weights
    starts = datasets.test_starts
    normalized = assets.normalization.normalize(series.values).astype(np.float32)
    output = model.predict(model_inputs(normalized, starts, config, assets), verbose=0)
    histories, _ = windows.window_arrays(series.values, starts, 16, 4, targets=1)
    expected = evaluation.choice_forecast(
        histories,
        np.asarray(assets.linear_kernel),
        np.asarray(assets.linear_bias),
        assets.ridge_choice,
        horizon=4,
    )
    np.testing.assert_allclose(
        assets.normalization.denormalize(output, columns=[0]), expected, atol=1e-2
    )
