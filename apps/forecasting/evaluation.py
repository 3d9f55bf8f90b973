"""Forecast scoring: baselines, metrics and plots on the same test windows.

Baselines: the last observed value, the seasonal naive forecast (the value one season
earlier) and a ridge regression from the whole lookback window (every column, original
units) to every horizon step, fitted on the training windows (scikit-learn's `Ridge`) and kept
in the assets, so `evaluate --data FILE` compares the same baselines. The same
ridge, with its lag count, penalty and an optional square-root transform chosen on the
validation windows (`choose_ridge`), is the strongest linear peer and the model's linear base.
Metrics per forecaster: MAE, RMSE, MASE (MAE over the mean absolute seasonal-naive error on
the training part) and MAE per horizon step; quantile models add interval coverage.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import sklearn.linear_model

from apps.core.app import EvaluationOutputs
from apps.core.metrics import headline
from apps.core.plots import plt
from apps.forecasting.config import ForecastingConfig
from layers.losses import median_index
from pipelines import windows

if TYPE_CHECKING:
    from apps.forecasting.data import SeriesAssets, SeriesDatasets

# The grid `choose_ridge` searches.
RIDGE_LAG_COUNTS = (12, 24, 36, 60, 96, 132, 180)
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
# Transforms applied to every column before the ridge: (forward, inverse) on numpy arrays.
RIDGE_TRANSFORMS = {
    "identity": (lambda values: values, lambda values: values),
    "sqrt": (np.sqrt, lambda values: np.square(np.maximum(values, 0.0))),
}


def last_value_forecast(histories: np.ndarray, horizon: int, targets: int) -> np.ndarray:
    """Repeats each window's last target values: (windows, horizon, targets)."""
    return np.repeat(histories[:, -1:, :targets], horizon, axis=1)


def seasonal_naive_forecast(
    histories: np.ndarray, horizon: int, targets: int, season: int
) -> np.ndarray:
    """Step `h` (1-based) takes the value `season * ceil(h / season)` steps before it."""
    lookback = histories.shape[1]
    if not 1 <= season <= lookback:
        raise ValueError(f"season: expected 1..{lookback} (the lookback), got {season}")
    steps = lookback - season + np.arange(horizon) % season
    return histories[:, steps, :targets]


def fit_ridge(
    histories: np.ndarray, futures: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights (lookback * columns, horizon * targets) and bias; the bias is unpenalized.

    `histories` and `futures` are flattened per window (2-D inputs are used as they are) and
    fitted in float64 by scikit-learn's `Ridge`.
    """
    features = histories.reshape(len(histories), -1).astype(np.float64)
    outputs = futures.reshape(len(futures), -1).astype(np.float64)
    ridge = sklearn.linear_model.Ridge(alpha=alpha).fit(features, outputs)
    return ridge.coef_.T, ridge.intercept_


def ridge_forecast(histories: np.ndarray, weights: np.ndarray, bias: np.ndarray, horizon: int):
    flat = histories.reshape(len(histories), -1) @ weights + bias
    return flat.reshape(len(histories), horizon, -1)  # (windows, horizon, targets)


def fit_transformed_ridge(
    histories: np.ndarray, futures: np.ndarray, lags: int, alpha: float, transform: str
) -> tuple[np.ndarray, np.ndarray]:
    """`fit_ridge` on the last `lags` steps, inputs and outputs in `transform` space."""
    forward, _ = RIDGE_TRANSFORMS[transform]
    return fit_ridge(forward(histories[:, -lags:]), forward(futures), alpha)


def transformed_ridge_forecast(
    histories: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    lags: int,
    transform: str,
    horizon: int,
) -> np.ndarray:
    """The forecast of `fit_transformed_ridge`'s weights, back in original units."""
    forward, inverse = RIDGE_TRANSFORMS[transform]
    return inverse(ridge_forecast(forward(histories[:, -lags:]), weights, bias, horizon))


def choose_ridge(
    train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray]
) -> tuple[int, float, str]:
    """Lag count, alpha and transform of the ridge with the lowest validation MAE.

    `train` and `validation` are (histories, futures) pairs in original units; the square
    root is tried only when every value in them is non-negative.
    """
    (train_histories, train_futures), (validation_histories, validation_truth) = train, validation
    horizon, lookback = validation_truth.shape[1], train_histories.shape[1]
    transforms = ["identity"]
    if all(np.all(values >= 0) for values in (*train, *validation)):
        transforms.append("sqrt")
    best = None
    for lags, alpha, transform in itertools.product(RIDGE_LAG_COUNTS, RIDGE_ALPHAS, transforms):
        if lags > lookback:
            continue
        weights, bias = fit_transformed_ridge(
            train_histories, train_futures, lags, alpha, transform
        )
        forecast = transformed_ridge_forecast(
            validation_histories, weights, bias, lags, transform, horizon
        )
        error = np.abs(forecast - validation_truth).mean()
        if best is None or error < best[0]:
            best = (error, lags, alpha, transform)
    return best[1:]


def point_metrics(forecast: np.ndarray, truth: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE and MASE over everything; MAE per horizon step (averaged over targets)."""
    errors = forecast - truth
    absolute = np.abs(errors)
    return {
        "mae": float(absolute.mean()),
        "rmse": float(np.sqrt((errors**2).mean())),
        "mase": float((absolute.mean(axis=(0, 1)) / scale).mean()),
        "mae_per_step": absolute.mean(axis=(0, 2)).tolist(),
    }


def interval_coverage(
    quantile_forecast: np.ndarray, truth: np.ndarray, levels: tuple[float, ...]
) -> dict[str, float]:
    """Share of truths inside [lowest, highest] quantile, against the nominal share."""
    low, high = np.argmin(levels), np.argmax(levels)
    inside = (truth >= quantile_forecast[..., low]) & (truth <= quantile_forecast[..., high])
    return {
        "interval": f"{levels[low]:g}-{levels[high]:g}",
        "coverage": float(inside.mean()),
        "nominal": float(levels[high] - levels[low]),
        "mean_width": float((quantile_forecast[..., high] - quantile_forecast[..., low]).mean()),
    }


def plot_forecasts(
    times: np.ndarray,
    truth: np.ndarray,
    forecast_steps: np.ndarray,
    forecasts: dict[str, np.ndarray],
    target_names: list[str],
    output: Path,
    interval: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Truth over the test part and back-to-back forecasts (step indices `forecast_steps`)."""
    figure, axes = plt.subplots(
        len(target_names), 1, figsize=(11, 3.2 * len(target_names)), squeeze=False
    )
    for index, (axis, name) in enumerate(zip(axes[:, 0], target_names, strict=True)):
        axis.plot(times, truth[:, index], color="black", linewidth=1.2, label="truth")
        forecast_times = times[forecast_steps]
        if interval is not None:
            axis.fill_between(
                forecast_times,
                interval[0][:, index],
                interval[1][:, index],
                color="tab:blue",
                alpha=0.2,
                label="interval",
            )
        for label, values in forecasts.items():
            axis.plot(forecast_times, values[:, index], linewidth=1.0, label=label)
        axis.set_ylabel(name)
        axis.legend(loc="upper left", fontsize="small")
    axes[0, 0].set_title("forecasts on the test part (windows laid back to back)")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)


def plot_step_errors(step_errors: dict[str, list[float]], output: Path) -> None:
    """MAE per horizon step, one line per forecaster."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, errors in step_errors.items():
        axis.plot(np.arange(1, len(errors) + 1), errors, marker="o", label=label)
    axis.set_xlabel("horizon step")
    axis.set_ylabel("MAE (original units)")
    axis.set_title("error per horizon step on the test windows")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)


def model_inputs(
    normalized: np.ndarray,
    starts: np.ndarray,
    config: ForecastingConfig,
    assets: SeriesAssets,
) -> dict[str, np.ndarray]:
    """The model's inputs for the windows at `starts` of the normalized series."""
    lookback, horizon = config.data.lookback, config.data.horizon
    targets = len(assets.target_columns)
    histories, futures = windows.window_arrays(
        normalized, starts, lookback, horizon, targets=normalized.shape[1]
    )
    inputs = {"history": histories}
    if assets.known_future_indices:
        inputs["future_covariates"] = futures[..., assets.known_future_indices]
    if config.model.model_type == "autoregressive":
        inputs["teacher_targets"] = np.zeros((len(starts), horizon, targets), np.float32)
    return inputs


def evaluate(
    trained_model: keras.Model,
    config: ForecastingConfig,
    datasets: SeriesDatasets,
    outputs: EvaluationOutputs,
) -> dict[str, Any]:
    """Scores the test windows against the baselines; plots forecasts and errors per step."""
    assets, series = datasets.assets, datasets.series
    lookback, horizon = config.data.lookback, config.data.horizon
    targets = len(assets.target_columns)
    quantiles = tuple(config.model.quantiles)
    normalized = assets.normalization.normalize(series.values).astype(np.float32)
    starts = datasets.test_starts
    histories, truth = windows.window_arrays(series.values, starts, lookback, horizon, targets)

    output = trained_model.predict(
        model_inputs(normalized, starts, config, assets), batch_size=256, verbose=0
    )
    target_columns = list(range(targets))
    if quantiles:
        levels = assets.normalization.denormalize(
            np.moveaxis(output, -1, 0), columns=target_columns
        )
        # (windows, horizon, targets, quantiles), sorted as the export sorts them
        levels = np.sort(np.moveaxis(levels, 0, -1), axis=-1)
        forecast = levels[..., median_index(quantiles)]
    else:
        forecast = assets.normalization.denormalize(output, columns=target_columns)
    forecasts = {
        "model": forecast,
        "last_value": last_value_forecast(histories, horizon, targets),
        "seasonal_naive": seasonal_naive_forecast(
            histories, horizon, targets, config.evaluation.season
        ),
    }
    if assets.ridge_kernel:  # fitted on the training windows (data.load_data)
        weights, bias = np.asarray(assets.ridge_kernel), np.asarray(assets.ridge_bias)
        forecasts["ridge"] = ridge_forecast(histories, weights, bias, horizon)

    scale = np.asarray(assets.seasonal_scale)
    metrics = {name: point_metrics(values, truth, scale) for name, values in forecasts.items()}
    if len(quantiles) > 1:
        metrics["model"]["interval"] = interval_coverage(levels, truth, quantiles)
    best_baseline = min(
        (name for name in metrics if name != "model"), key=lambda name: metrics[name]["mae"]
    )
    metrics["best_baseline"] = best_baseline
    metrics["mae_ratio_to_best_baseline"] = metrics["model"]["mae"] / max(
        metrics[best_baseline]["mae"], 1e-12
    )

    tiles = np.arange(0, len(starts), horizon)
    if config.evaluation.plot_steps:
        tiles = tiles[: max(1, config.evaluation.plot_steps // horizon)]
    forecast_steps = (starts[tiles][:, None] + lookback + np.arange(horizon)).reshape(-1)
    first, last = forecast_steps[0], forecast_steps[-1] + 1

    def tiled(values):
        return values[tiles].reshape(-1, targets)  # (steps, targets)

    shown = {"model": tiled(forecast)}
    if "ridge" in forecasts:
        shown["ridge"] = tiled(forecasts["ridge"])
    interval = None
    if len(quantiles) > 1:
        low, high = int(np.argmin(quantiles)), int(np.argmax(quantiles))
        interval = (tiled(levels[..., low]), tiled(levels[..., high]))
    plot_forecasts(
        np.asarray(series.times[first:last]),
        series.values[first:last, :targets],
        forecast_steps - first,
        shown,
        assets.target_columns,
        outputs.path("forecasts.png"),
        interval,
    )
    plot_step_errors(
        {
            name: values["mae_per_step"]
            for name, values in metrics.items()
            if isinstance(values, dict)
        },
        outputs.path("error-per-step.png"),
    )
    metrics["headline"] = headline(
        "mae",
        metrics["model"]["mae"],
        {name: metrics[name]["mae"] for name in forecasts if name != "model"},
        higher_is_better=False,
    )
    return metrics


def validation_callbacks(
    config: ForecastingConfig, datasets: SeriesDatasets
) -> list[keras.callbacks.Callback]:
    return []
