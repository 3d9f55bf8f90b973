"""The forecasting export: `history` in original units -> `forecast` (and `quantiles`).

Inputs: `history` float32 (batch, lookback, columns) with the target columns first, in the
units of the training data, and `future_covariates` float32 (batch, horizon, known) when the
model reads known future covariates, and `last_time` float64 (batch,), the time of the last
history step (seconds since 1970-01-01 UTC for dates, the number for a numeric time column),
when it reads calendar features (`data.calendar_terms`): the graph computes their terms over
the forecast steps from it (`pipelines.calendar`). NaN or infinity in an input stops the
request with an InvalidArgument error that names it, and so does a history of the wrong length
or width (the signature declares the shape, but a signature call does not enforce it).
Outputs: `forecast` float32 (batch, horizon, targets) and, for quantile models, `quantiles`
float32 (batch, horizon, targets, levels), sorted along the levels, and `quantile_levels`
float32 (batch, levels), the sorted levels (e.g. 0.1, 0.5, 0.9) that name them.

The `stream` signature serves a stream one observation at a time from a stateless server:
it takes `observation` float32 (batch, columns), the new step, and `state` float32 (batch,
lookback, columns), the window the model read at the step before (the client keeps it; the
first one is the series' last `lookback` steps before the stream), plus `future_covariates`
and `last_time` (the observation's time) when the model reads them; it returns the outputs of
`serving_default` on the window that ends with the observation, and that window as the new
`state`. The model reads nothing else from the past (the recurrent encoder runs over the window
afresh), so stepping a series through it answers as `serving_default` does on each window.
"""

from __future__ import annotations

import csv
import inspect
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from apps.core.app import Batching, Endpoints, Request, Stream
from apps.core.errors import UserError
from apps.forecasting import data
from apps.forecasting.config import DataConfig, ForecastingConfig
from apps.forecasting.data import SeriesAssets
from layers.losses import median_index
from pipelines import calendar as calendar_terms
from pipelines.errors import DataError, listing
from pipelines.sources import time_series

# TF Serving's batching for these signatures, from benchmarks/serving_speed.py
# (benchmarks/RESULTS-serving.md).
BATCHING = Batching(max_batch_size=64, allowed_batch_sizes=(1, 8, 64), batch_timeout_micros=4100)

if TYPE_CHECKING:
    import argparse


def endpoints(model: keras.Model, config: ForecastingConfig, assets: SeriesAssets) -> Endpoints:
    data, quantiles = config.data, tuple(config.model.quantiles)
    targets, columns = len(assets.target_columns), len(assets.columns)
    known_future = assets.known_future_indices
    mean = tf.constant(assets.normalization.mean, tf.float32)
    std = tf.constant(assets.normalization.std, tf.float32)
    target_mean, target_std = mean[:targets], std[:targets]
    sorted_quantiles = tf.constant(sorted(quantiles), tf.float32)
    # A point model whose residual the gate dropped (its head all zeros) is its linear base.
    base_only = (
        config.model.linear_base
        and config.model.model_type == "direct"
        and not quantiles
        and not any(np.any(weights) for weights in model.get_layer("head").get_weights())
    )
    calendar = assets.calendar
    # The inputs after the history (or the stream's observation and state).
    extra_inputs = []
    if known_future:
        extra_inputs.append(
            tf.TensorSpec(
                [None, data.horizon, len(known_future)], tf.float32, name="future_covariates"
            )
        )
    if calendar is not None:
        extra_inputs.append(tf.TensorSpec([None], tf.float64, name="last_time"))

    def forecast(history, future_covariates=None, last_time=None):
        shape_check = tf.debugging.assert_equal(
            tf.shape(history)[1:],
            tf.constant([data.lookback, columns]),
            message=f"history must have shape [batch, {data.lookback}, {columns}] "
            f"(lookback, columns)",
        )
        with tf.control_dependencies([shape_check]):
            history = tf.debugging.assert_all_finite(
                history, "history holds NaN or infinity; send finite values only"
            )
        inputs = {"history": (history - mean) / std}
        if future_covariates is not None:
            future_covariates = tf.debugging.assert_all_finite(
                future_covariates, "future_covariates holds NaN or infinity"
            )
            known_mean = tf.gather(mean, known_future)
            known_std = tf.gather(std, known_future)
            inputs["future_covariates"] = (future_covariates - known_mean) / known_std
        if config.model.model_type == "autoregressive":
            batch = tf.shape(history)[0]
            inputs["teacher_targets"] = tf.zeros([batch, data.horizon, targets], tf.float32)
        if calendar is not None:
            last_time = tf.debugging.assert_all_finite(
                last_time, "last_time holds NaN or infinity; send the time of the last step"
            )
            inputs["calendar"] = calendar.terms(last_time, data.horizon)
        if base_only:
            base_inputs = inputs["history"]
            if assets.linear_calendar:
                base_inputs = [base_inputs, inputs["calendar"]]
            normalized = model.get_layer("linear_base")(base_inputs)
        else:
            normalized = model(inputs, training=False)
        if not quantiles:
            return {"forecast": normalized * target_std + target_mean}
        # Sorting the levels undoes quantile crossing (monotone rearrangement).
        levels = tf.sort(normalized * target_std[:, None] + target_mean[:, None], axis=-1)
        tiled_levels = tf.tile(sorted_quantiles[None, :], [tf.shape(history)[0], 1])
        return {
            "forecast": levels[..., median_index(quantiles)],
            "quantiles": levels,
            "quantile_levels": tiled_levels,
        }

    def step(observation, state, future_covariates=None, last_time=None):
        shape_check = tf.debugging.assert_equal(
            tf.shape(observation)[1:],
            tf.constant([columns]),
            message=f"observation must have shape [batch, {columns}] (columns)",
        )
        with tf.control_dependencies([shape_check]):
            # (batch, lookback, columns): the window moved on by the new step
            window = tf.concat([state[:, 1:], observation[:, None, :]], axis=1)
        return {**forecast(window, future_covariates, last_time), "state": window}

    signature = [
        tf.TensorSpec([None, data.lookback, columns], tf.float32, name="history"),
        *extra_inputs,
    ]
    stream_signature = [
        tf.TensorSpec([None, columns], tf.float32, name="observation"),
        tf.TensorSpec([None, data.lookback, columns], tf.float32, name="state"),
        *extra_inputs,
    ]
    return Endpoints(
        functions={
            "serving_default": tf.function(taking(forecast, signature), input_signature=signature),
            "stream": tf.function(taking(step, stream_signature), input_signature=stream_signature),
        }
    )


def taking(function, specs: list[tf.TensorSpec]):
    """`function` as a function of exactly the inputs named by `specs`, in their order (a
    signature's input names are its function's parameter names)."""

    def call(*args):
        return function(**{spec.name: value for spec, value in zip(specs, args, strict=True)})

    call.__signature__ = inspect.Signature(
        [inspect.Parameter(spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for spec in specs]
    )
    return call


def example_request(config: ForecastingConfig) -> dict[str, np.ndarray]:
    """Three real windows of the series, the last ending `horizon` steps before its end (so
    that known future covariates are known for each), and for `stream` the same windows as
    the window before each and its last step."""
    series = data.read_series(config)
    lookback, horizon = config.data.lookback, config.data.horizon
    values = series.values.astype(np.float32)  # (steps, columns)
    ends = [len(values) - horizon * shift for shift in (3, 2, 1)]
    request = {
        "history": np.stack([values[end - lookback : end] for end in ends]),
        "observation": np.stack([values[end - 1] for end in ends]),
        "state": np.stack([values[end - lookback - 1 : end - 1] for end in ends]),
    }
    if config.data.calendar_terms:
        # The time of each window's last step (the stream's observation); unused by a model
        # whose series had no season.
        last_times = calendar_terms.time_values(series.times)
        request["last_time"] = np.asarray([last_times[end - 1] for end in ends])
    known_future = [series.columns.index(name) for name in config.data.known_future_columns]
    if known_future:
        request["future_covariates"] = np.stack(
            [values[end : end + horizon][:, known_future] for end in ends]
        )
    return request


def read_series_file(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec], minimum: int
) -> time_series.TimeSeries:
    """The CSV series of `--input`, checked against the model's columns, at least `minimum`
    steps long."""
    if input_file is None or inputs:
        raise UserError("forecasting predict reads one series: --input FILE.csv only")
    if "future_covariates" in input_specs:
        raise UserError(
            "this model needs future covariates; predict from CSV supports history only"
        )
    columns = input_specs["state" if "state" in input_specs else "history"].shape[-1]
    series = time_series.load_time_series(str(input_file))
    if len(series.columns) != columns:
        raise DataError(
            f"{input_file}: {len(series.columns)} value columns "
            f"({listing(series.columns)}), but the model reads {columns} (the training "
            f"columns, targets first, after the time column)"
        )
    time_series.check_length(series, minimum, "the model's lookback")
    report = time_series.missing_report(
        series,
        DataConfig.max_missing_fraction,
        "fill the gaps in the file (the limit is data.max_missing_fraction's default)",
    )
    if report:
        print(f"note: {report}", file=sys.stderr)
    return series


def read_inputs(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
) -> Request:
    """The last `lookback` rows of a CSV series (and the time of the last, for a model that
    reads calendar features); its times and columns name the forecast."""
    lookback = input_specs["history"].shape[1]
    series = read_series_file(inputs, input_file, input_specs, lookback)
    request = {"history": series.values[None, -lookback:, :]}
    if "last_time" in input_specs:
        request["last_time"] = calendar_terms.time_values(series.times[-1:])
    return Request(request, details={"columns": list(series.columns), "times": series.times})


def read_stream(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
) -> list[Stream]:
    """A CSV series as one stream: its first `lookback` rows are the start `state`, then each
    later row is one `observation`; each answer is the forecast from that row on (`origin`)."""
    lookback = input_specs["state"].shape[1]
    series = read_series_file(inputs, input_file, input_specs, lookback + 1)
    values = series.values.astype(np.float32)
    last_times = calendar_terms.time_values(series.times)
    with_time = "last_time" in input_specs
    steps = [
        Request(
            {"observation": values[None, step]}
            | ({"last_time": last_times[step : step + 1]} if with_time else {}),
            details={
                "columns": list(series.columns),
                "times": series.times[max(0, step - 49) : step + 1],
                "origin": stamps_text(series.times[max(0, step - 49) : step + 1])[-1],
            },
        )
        for step in range(lookback, len(values))
    ]
    return [Stream(state=values[None, :lookback], steps=steps)]


def stamps_text(stamps: np.ndarray) -> list[str]:
    """Time stamps as the forecast rows write them: dates when every one falls on midnight."""
    if not np.issubdtype(stamps.dtype, np.datetime64):
        return [str(stamp) for stamp in stamps]
    index = pd.DatetimeIndex(stamps)
    daily = all(stamp == stamp.normalize() for stamp in index)
    return [stamp.strftime("%Y-%m-%d" if daily else "%Y-%m-%dT%H:%M:%S") for stamp in index]


def future_times(times: np.ndarray, horizon: int) -> list[str]:
    """The `horizon` time stamps after `times`, continuing its regular frequency."""
    if np.issubdtype(times.dtype, np.datetime64):
        index = pd.DatetimeIndex(times[-max(3, min(len(times), 50)) :])
        frequency = pd.infer_freq(index) if len(index) >= 3 else None
        if frequency is not None:
            following = pd.date_range(index[-1], periods=horizon + 1, freq=frequency)[1:]
        else:
            following = index[-1] + (index[-1] - index[-2]) * np.arange(1, horizon + 1)
        return stamps_text(following.to_numpy())
    step = times[-1] - times[-2] if len(times) > 1 else 1
    return [str(times[-1] + step * offset) for offset in range(1, horizon + 1)]


def format_outputs(request: Request, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per forecast step: its time, each target and each target's quantiles, named by
    their levels (`sunspots_q0.1`); a stream's rows start with the `origin` they follow."""
    forecast = outputs["forecast"][0]  # (horizon, targets)
    horizon, targets = forecast.shape
    names = request.details["columns"][:targets] or [f"target_{index}" for index in range(targets)]
    if len(request.details["times"]) > 1:
        times = future_times(request.details["times"], horizon)
    else:
        times = [str(step) for step in range(1, horizon + 1)]
    rows = []
    origin = {"origin": request.details["origin"]} if "origin" in request.details else {}
    for step in range(horizon):
        row = {**origin, "time": times[step]}
        for index, name in enumerate(names):
            row[name] = float(forecast[step, index])
            if "quantiles" in outputs:
                levels = outputs["quantile_levels"][0]
                for level, value in zip(levels, outputs["quantiles"][0, step, index], strict=True):
                    row[f"{name}_q{float(level):g}"] = float(value)
        rows.append(row)
    return rows


def write_predictions(rows: list[dict[str, Any]], output: Path | None) -> None:
    """The forecast rows as CSV."""
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


def run_tail(args: argparse.Namespace) -> None:
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
