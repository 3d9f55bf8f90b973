"""Forecasting speed: training throughput against a plain Keras reference, serving latency.

The reference is the keras.io `timeseries_weather_forecasting` style: windows from
`keras.utils.timeseries_dataset_from_array`, one `keras.layers.LSTM(32)` and a Dense head for
the horizon, Adam, no XLA. Both train on the same training windows of the preset (sunspots,
lookback 132, horizon 12 for `base`); after one warm-up epoch each, the two models train
alternately one epoch at a time, so both see the same machine load, and throughput is
windows per second over the timed epochs. Serving latency is measured on the exported
SavedModel loaded with `tf.saved_model.load`, at batch 1 and 256.

    python benchmarks/forecasting_speed.py --preset base --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from apps.core import config as config_lib
from apps.core import export
from apps.forecasting.app import APP


def reference_dataset(
    values: np.ndarray, train_end: int, lookback: int, horizon: int, batch_size: int
) -> tf.data.Dataset:
    """keras.io style: inputs are every column, targets the next `horizon` target values."""
    futures = np.stack(
        [values[lookback + step : train_end - horizon + step + 1, 0] for step in range(horizon)],
        axis=1,
    )  # (windows, horizon)
    return keras.utils.timeseries_dataset_from_array(
        values[: train_end - horizon], futures, sequence_length=lookback, batch_size=batch_size
    )


def reference_model(lookback: int, columns: int, horizon: int) -> keras.Model:
    inputs = keras.Input((lookback, columns))
    hidden = keras.layers.LSTM(32)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(horizon)(hidden))
    model.compile(keras.optimizers.Adam(1e-3), loss="mse")
    return model


def alternating_throughput(
    runs: dict[str, tuple[keras.Model, tf.data.Dataset]], epochs: int
) -> dict[str, tuple[float, int]]:
    """Windows per second and windows per epoch of each model, timed epoch by epoch in turn."""
    windows = {
        name: sum(int(tf.shape(targets)[0]) for _, targets in dataset)
        for name, (_, dataset) in runs.items()
    }
    seconds = dict.fromkeys(runs, 0.0)
    for model, dataset in runs.values():
        model.fit(dataset, epochs=1, verbose=0)
    for _ in range(epochs):
        for name, (model, dataset) in runs.items():
            started = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0)
            seconds[name] += time.perf_counter() - started
    return {name: (windows[name] * epochs / seconds[name], windows[name]) for name in runs}


def latency(function, request: dict[str, tf.Tensor], calls: int) -> tuple[float, float]:
    function(**request)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function(**request)
        times.append(time.perf_counter() - started)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = config_lib.apply_overrides(APP.make_config(args.preset), args.overrides)
    keras.utils.set_random_seed(config.training.seed)
    data = config.data
    datasets = APP.data.load_data(config)
    normalized = datasets.assets.normalization.normalize(datasets.series.values)
    normalized = normalized.astype(np.float32)

    reference = reference_model(data.lookback, normalized.shape[1], data.horizon)
    reference_data = reference_dataset(
        normalized,
        datasets.splits["train"].end,
        data.lookback,
        data.horizon,
        config.training.batch_size,
    )
    model = APP.model.build_model(config, datasets.assets)
    speeds = alternating_throughput(
        {"reference": (reference, reference_data), "app": (model, datasets.train)}, args.epochs
    )
    (reference_speed, reference_windows), (app_speed, app_windows) = (
        speeds["reference"],
        speeds["app"],
    )
    print("| training | windows | windows/s |\n| --- | --- | --- |")
    print(f"| keras.io-style LSTM(32) + Dense | {reference_windows} | {reference_speed:.0f} |")
    settings = config.model
    print(
        f"| app ({settings.model_type}, {settings.cell.upper()}({settings.units}) over "
        f"{settings.recurrent_window or data.lookback} steps, highway "
        f"{settings.highway_window}, linear base {settings.linear_base}) | {app_windows} | "
        f"{app_speed:.0f} |"
    )
    print(f"speed-up: {app_speed / reference_speed:.2f}x\n")

    with tempfile.TemporaryDirectory() as root:
        version = export.export(APP, model, config, datasets.assets, Path(root))
        serve = tf.saved_model.load(str(version)).signatures["serving_default"]
        print("| serving batch | p50 ms | p99 ms |\n| --- | --- | --- |")
        for batch, calls in ((1, 300), (256, 60)):
            history = normalized[: data.lookback][None].repeat(batch, axis=0)
            history = datasets.assets.normalization.denormalize(history).astype(np.float32)
            p50, p99 = latency(serve, {"history": tf.constant(history)}, calls)
            print(f"| {batch} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
