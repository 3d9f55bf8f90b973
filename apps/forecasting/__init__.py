"""rnn-forecast: forecast the next steps of time series (point forecasts or quantiles).

Data (--data): sunspots (monthly, pmdarima), seattle-weather (daily, vega_datasets), or your own
CSV file: a time column (the first, or --set data.time_column=...), target columns (every
other column, or --set data.target_columns=a,b) and optional covariate columns
(--set data.covariate_columns=c). Empty cells are interpolated (--set data.missing=fail to
refuse them). Presets: base (sunspots benchmark), quick (the main job), weather, tiny (tests).

predict --input FILE reads a CSV whose first column is the time and whose other columns are the
model's columns in training order (targets first); it forecasts the steps after the file's end
and writes CSV (time, each target, and each target's quantiles).

Example:
  rnn-forecast train --workdir runs/forecast --preset quick
  rnn-forecast evaluate --workdir runs/forecast
  rnn-forecast export --workdir runs/forecast
  rnn-forecast tail --data sunspots --steps 48 --output recent.csv
  rnn-forecast predict --model saved_models/forecasting --input recent.csv --output next.csv
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apps.core import cli
from apps.core.app import App
from apps.core.errors import UserError
from apps.forecasting import config, data, evaluation, model, search_space, serving
from layers.losses import median_index
from pipelines.errors import DataError
from pipelines.sources import time_series


def model_inputs(
    normalized: np.ndarray,
    starts: np.ndarray,
    config: config.ForecastingConfig,
    assets: data.SeriesAssets,
) -> dict[str, np.ndarray]:
    """The model's inputs for the windows at `starts` of the normalized series."""
    lookback, horizon = config.data.lookback, config.data.horizon
    targets = len(assets.target_columns)
    histories, futures = data.window_arrays(
        normalized, starts, lookback, horizon, targets=normalized.shape[1]
    )
    inputs = {"history": histories}
    if assets.known_future_indices:
        inputs["future_covariates"] = futures[..., assets.known_future_indices]
    if config.model.model_type == "autoregressive":
        inputs["teacher_targets"] = np.zeros((len(starts), horizon, targets), np.float32)
    return inputs


def future_times(times: np.ndarray, horizon: int) -> list[str]:
    """The `horizon` time stamps after `times`, continuing its regular frequency."""
    if np.issubdtype(times.dtype, np.datetime64):
        index = pd.DatetimeIndex(times[-max(3, min(len(times), 50)) :])
        frequency = pd.infer_freq(index) if len(index) >= 3 else None
        if frequency is not None:
            following = pd.date_range(index[-1], periods=horizon + 1, freq=frequency)[1:]
        else:
            following = index[-1] + (index[-1] - index[-2]) * np.arange(1, horizon + 1)
        daily = all(stamp == stamp.normalize() for stamp in following)
        return [stamp.strftime("%Y-%m-%d" if daily else "%Y-%m-%dT%H:%M:%S") for stamp in following]
    step = times[-1] - times[-2] if len(times) > 1 else 1
    return [str(times[-1] + step * offset) for offset in range(1, horizon + 1)]


def run_tail(app: App, args) -> None:
    """`tail`: the last `--steps` rows of `--data` (recipe columns, targets first) as CSV."""
    if args.steps < 1:
        raise UserError(f"--steps: expected a positive integer, got {args.steps}")
    series = time_series.load_time_series(args.data)
    frame = pd.DataFrame(series.values[-args.steps :], columns=list(series.columns))
    times = pd.Index(series.times[-args.steps :])
    if isinstance(times, pd.DatetimeIndex):
        times = times.strftime("%Y-%m-%d")
    frame.insert(0, "time", times)
    text = frame.to_csv(index=False, float_format="%.6g")
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)


class ForecastingApp(App):
    __doc__ = __doc__
    name = "forecasting"
    command = "rnn-forecast"
    config_class = config.ForecastingConfig
    presets = config.PRESETS
    default_preset = "base"
    # Mean absolute error of the (median) forecast on the validation windows, normalized units.
    monitor = "val_mae"
    monitor_mode = "min"
    assets_class = data.SeriesAssets

    def __init__(self):
        # What `read_inputs` learned from the predict file, for `format_outputs`.
        self.prediction_times = np.array([])
        self.prediction_columns: list[str] = []

    def load_data(self, config, assets=None, whole_as_test=False) -> data.SeriesDatasets:
        return data.load_data(config, assets, whole_as_test)

    def build_model(self, config, assets):
        return model.build_model(config, assets)

    def evaluate(self, trained_model, config, datasets, workdir: Path) -> dict[str, Any]:
        assets, series, splits = datasets.assets, datasets.series, datasets.splits
        lookback, horizon = config.data.lookback, config.data.horizon
        targets = len(assets.target_columns)
        quantiles = tuple(config.model.quantiles)
        normalized = assets.normalization.normalize(series.values).astype(np.float32)
        starts = datasets.test_starts
        histories, truth = data.window_arrays(series.values, starts, lookback, horizon, targets)

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
            "last_value": evaluation.last_value_forecast(histories, horizon, targets),
            "seasonal_naive": evaluation.seasonal_naive_forecast(
                histories, horizon, targets, config.evaluation.season
            ),
        }
        if "train" in splits:
            train_starts = data.windows.window_starts(splits["train"], lookback, horizon)
            train_histories, train_futures = data.window_arrays(
                series.values, train_starts, lookback, horizon, targets
            )
            weights, bias = evaluation.fit_ridge(
                train_histories, train_futures, config.evaluation.ridge_alpha
            )
            forecasts["ridge"] = evaluation.ridge_forecast(histories, weights, bias, horizon)

        scale = np.asarray(assets.seasonal_scale)
        metrics = {
            name: evaluation.point_metrics(values, truth, scale)
            for name, values in forecasts.items()
        }
        if len(quantiles) > 1:
            metrics["model"]["interval"] = evaluation.interval_coverage(levels, truth, quantiles)
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
        evaluation.plot_forecasts(
            np.asarray(series.times[first:last]),
            series.values[first:last, :targets],
            forecast_steps - first,
            shown,
            assets.target_columns,
            workdir / "forecasts.png",
            interval,
        )
        evaluation.plot_step_errors(
            {
                name: values["mae_per_step"]
                for name, values in metrics.items()
                if isinstance(values, dict)
            },
            workdir / "error-per-step.png",
        )
        return metrics

    def endpoints(self, trained_model, config, assets):
        return serving.endpoints(trained_model, config, assets)

    def example_request(self, config) -> dict[str, np.ndarray]:
        series = data.read_series(config)
        return serving.example_request(
            config, len(series.columns), len(config.data.known_future_columns)
        )

    def read_inputs(self, inputs, input_file, input_specs) -> dict[str, np.ndarray]:
        if input_file is None or inputs:
            raise UserError("forecasting predict reads one series: --input FILE.csv only")
        if "future_covariates" in input_specs:
            raise UserError(
                "this model needs future covariates; predict from CSV supports history only"
            )
        _, lookback, columns = input_specs["history"].shape
        series = time_series.load_time_series(str(input_file))
        if len(series.columns) != columns:
            raise DataError(
                f"{input_file}: {len(series.columns)} value columns "
                f"({', '.join(series.columns)}), but the model reads {columns} (the training "
                f"columns, targets first, after the time column)"
            )
        time_series.check_length(series, lookback, "the model's lookback")
        self.prediction_columns = list(series.columns)
        self.prediction_times = series.times
        return {"history": series.values[None, -lookback:, :]}

    def format_outputs(self, request, outputs) -> list[dict[str, Any]]:
        forecast = outputs["forecast"][0]  # (horizon, targets)
        horizon, targets = forecast.shape
        names = self.prediction_columns[:targets] or [f"target_{index}" for index in range(targets)]
        if len(self.prediction_times) > 1:
            times = future_times(self.prediction_times, horizon)
        else:
            times = [str(step) for step in range(1, horizon + 1)]
        rows = []
        for step in range(horizon):
            row = {"time": times[step]}
            for index, name in enumerate(names):
                row[name] = float(forecast[step, index])
                if "quantiles" in outputs:
                    for level_index, value in enumerate(outputs["quantiles"][0, step, index]):
                        row[f"{name}_quantile_{level_index}"] = float(value)
            rows.append(row)
        return rows

    def write_predictions(self, rows, output: Path | None) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["time"])
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: f"{value:.6g}" if isinstance(value, float) else value
                    for key, value in row.items()
                }
            )
        if output is None:
            sys.stdout.write(buffer.getvalue())
        else:
            output.write_text(buffer.getvalue())

    def add_commands(self, commands) -> None:
        tail = commands.add_parser(
            "tail", help="write the last steps of a dataset as CSV (an input for predict)"
        )
        tail.add_argument("--data", required=True, help="a dataset name or CSV file")
        tail.add_argument("--steps", type=int, required=True, help="how many last steps")
        tail.add_argument("--output", help="write here instead of stdout")
        tail.set_defaults(run=run_tail)

    def search_space(self, hp, config):
        return search_space.search_space(hp, config)


APP = ForecastingApp()


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
