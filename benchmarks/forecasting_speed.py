"""Forecasting speed: training throughput against a plain Keras reference, serving latency.

The reference is the keras.io `timeseries_weather_forecasting` style: windows from
`keras.utils.timeseries_dataset_from_array`, one `keras.layers.LSTM(32)` and a Dense head for
the horizon, Adam, no XLA. Both train on the same training windows of the preset (sunspots,
lookback 132, horizon 12 for `base`); throughput is windows per second over the timed epochs
after one warm-up epoch. Serving latency is measured on the exported SavedModel loaded with
`tf.saved_model.load`, at batch 1 and 256.

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
from apps.forecasting import APP


def reference_dataset(values: np.ndarray, train_end: int, lookback: int, horizon: int,
                      batch_size: int) -> tf.data.Dataset:
    """keras.io style: inputs are every column, targets the next `horizon` target values."""
    futures = np.stack([values[lookback + step : train_end - horizon + step + 1, 0]
                        for step in range(horizon)], axis=1)  # (windows, horizon)
    return keras.utils.timeseries_dataset_from_array(
        values[: train_end - horizon], futures, sequence_length=lookback, batch_size=batch_size
    )


def reference_model(lookback: int, columns: int, horizon: int) -> keras.Model:
    inputs = keras.Input((lookback, columns))
    hidden = keras.layers.LSTM(32)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(horizon)(hidden))
    model.compile(keras.optimizers.Adam(1e-3), loss="mse")
    return model


def throughput(model: keras.Model, dataset: tf.data.Dataset, epochs: int) -> tuple[float, int]:
    windows = sum(int(tf.shape(targets)[0]) for _, targets in dataset)
    model.fit(dataset, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(dataset, epochs=epochs, verbose=0)
    return windows * epochs / (time.perf_counter() - started), windows


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
    datasets = APP.load_data(config)
    normalized = datasets.assets.normalization.normalize(datasets.series.values)
    normalized = normalized.astype(np.float32)

    reference = reference_model(data.lookback, normalized.shape[1], data.horizon)
    reference_speed, reference_windows = throughput(
        reference,
        reference_dataset(normalized, datasets.splits["train"].end, data.lookback, data.horizon,
                          config.training.batch_size),
        args.epochs,
    )
    model = APP.build_model(config, datasets.assets)
    app_speed, app_windows = throughput(model, datasets.train, args.epochs)
    print("| training | windows | windows/s |\n| --- | --- | --- |")
    print(f"| keras.io-style LSTM(32) + Dense | {reference_windows} | {reference_speed:.0f} |")
    print(f"| app ({config.model.model_type}, {config.model.cell.upper()}({config.model.units}), "
          f"highway {config.model.highway_window}) | {app_windows} | {app_speed:.0f} |")
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
