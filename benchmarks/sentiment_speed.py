"""Sentiment speed: training throughput against a padded plain-Keras reference, serving latency.

Training, side by side in one process on the same training split of `mr`:

- app: the app's pipeline (length-bucketed batches, padding only to each batch's longest
  snippet) and model, built by `APP.data.load_data` / `APP.model.build_model` from the preset;
- reference: the same architecture in plain Keras layers (masked Embedding, SpatialDropout1D,
  Bidirectional GRU, GlobalMaxPooling1D + GlobalAveragePooling1D, Dropout, Dense), same
  optimizer, fed numpy arrays of the same token ids padded/truncated to ONE length that covers
  99% of the training snippets (the keras.io `bidirectional_lstm_imdb` style: no bucketing,
  no XLA). The app's optimizer is AdamW with a fused update kernel (`FusedAdamW`, same math);
  the reference uses Keras' own `keras.optimizers.AdamW` unless `--reference-optimizer fused`
  gives it the app's, which isolates what bucketing alone gains.

The two models' epochs alternate (app, reference, app, ...) so that load from other jobs on
the machine hits both alike; the first epoch of each (tracing, cache filling) is not counted.
Throughput = training examples / epoch seconds, no validation inside the timed epochs.

Serving: the trained app model is exported with `apps.core.export.export` to a temporary
folder and timed in a fresh process that imports only tensorflow and tensorflow_text: p50 and
p99 latency of `serving_default` at batch 1 and batch 64 on test snippets, after warmup.

    python benchmarks/sentiment_speed.py --epochs 4 --results benchmarks/RESULTS-sentiment.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from report import replace_section

from apps.core import config as config_lib
from apps.core import export
from apps.core import training as training_lib
from apps.sentiment import data as data_lib
from apps.sentiment.app import APP
from pipelines import text as text_lib

SECTION_BEGIN = "<!-- sentiment_speed:begin -->"
SECTION_END = "<!-- sentiment_speed:end -->"

SERVING_CLIENT = r"""
import json, sys, time
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers TF Text ops, if the export uses any)

model_dir, texts_file, warmup, batch_one, batch_many, many_size = sys.argv[1:7]
texts = json.loads(open(texts_file).read())
serve = tf.saved_model.load(model_dir).signatures["serving_default"]


def request(batch):
    outputs = serve(text=tf.constant(batch))
    return {name: value.numpy() for name, value in outputs.items()}


def batches(size, count):
    return [
        [texts[(start * size + i) % len(texts)] for i in range(size)] for start in range(count)
    ]


def timed(size, count):
    for batch in batches(size, int(warmup)):
        request(batch)
    latencies = []
    for batch in batches(size, count):
        started = time.perf_counter()
        request(batch)
        latencies.append(1000 * (time.perf_counter() - started))
    latencies.sort()
    def quantile(q):
        return latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))]
    return {"batch_size": size, "requests": count, "p50_ms": quantile(0.5),
            "p99_ms": quantile(0.99), "mean_ms": sum(latencies) / len(latencies)}


results = [timed(1, int(batch_one)), timed(int(many_size), int(batch_many))]
suite = ("apps", "layers", "pipelines")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in suite)
print(json.dumps({"latency": results, "suite_modules_loaded": loaded}))
"""


def reference_model(
    config, vocabulary_size: int, num_classes: int, optimizer: str = "keras"
) -> keras.Model:
    """The app's architecture from plain Keras layers, compiled with AdamW (Keras' or fused)."""
    model, training = config.model, config.training
    token_ids = keras.Input(shape=(None,), dtype="int64")
    x = keras.layers.Embedding(vocabulary_size, model.embedding_dim, mask_zero=True)(token_ids)
    x = keras.layers.SpatialDropout1D(model.embedding_dropout)(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(model.units, return_sequences=True))(x)
    pooled = keras.layers.Concatenate()(
        [keras.layers.GlobalMaxPooling1D()(x), keras.layers.GlobalAveragePooling1D()(x)]
    )
    x = keras.layers.Dropout(model.dropout)(pooled)
    probabilities = keras.layers.Dense(num_classes, activation="softmax")(x)
    reference = keras.Model(token_ids, probabilities, name="padded_reference")
    adamw = (
        training_lib.optimizer(training)
        if optimizer == "fused"
        else keras.optimizers.AdamW(
            learning_rate=training.learning_rate,
            weight_decay=training.weight_decay,
            global_clipnorm=training.clip_norm or None,
        )
    )
    reference.compile(
        optimizer=adamw,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return reference


def padded_training_arrays(config, assets) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """Training ids padded to the 99th-percentile length, labels, that length, test texts."""
    examples = data_lib.read_examples(config)
    texts = np.asarray(examples.texts, dtype=object)
    labels = np.asarray(examples.labels, dtype=object)
    splits = data_lib.split_indices(examples.texts, config)
    vectorizer = text_lib.make_vectorizer(assets.vocabulary)
    ids = text_lib.token_ids(
        vectorizer,
        text_lib.clean_text(
            tf.constant(texts[splits["train"]].tolist()), config.model.max_characters
        ),
        config.model.max_length,
    ).numpy()
    lengths = np.count_nonzero(ids, axis=1)
    length = int(np.ceil(np.quantile(lengths, 0.99)))
    padded = keras.utils.pad_sequences(
        [row[:count] for row, count in zip(ids, lengths, strict=True)],
        maxlen=length,
        padding="post",
        truncating="post",
    )
    label_index = {name: index for index, name in enumerate(assets.label_names)}
    label_ids = np.asarray([label_index[label] for label in labels[splits["train"]]], np.int32)
    return padded, label_ids, length, texts[splits["test"]].tolist()


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def training_throughput(config, datasets, epochs: int, reference_optimizer: str) -> dict:
    """Alternates app and reference epochs; examples/s over the epochs after the first."""
    assets = datasets.assets
    ids, label_ids, padded_length, _ = padded_training_arrays(config, assets)
    examples = len(label_ids)
    keras.utils.set_random_seed(config.training.seed)
    app_model = APP.model.build_model(config, assets)
    reference = reference_model(
        config, len(assets.vocabulary), len(assets.label_names), reference_optimizer
    )
    timers = {"app": EpochTimer(), "reference": EpochTimer()}
    for epoch in range(epochs):
        app_model.fit(
            datasets.train,
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=[timers["app"]],
            verbose=0,
        )
        reference.fit(
            ids,
            label_ids,
            batch_size=config.training.batch_size,
            shuffle=True,
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=[timers["reference"]],
            verbose=0,
        )
        print(
            f"epoch {epoch + 1}: app {timers['app'].seconds[-1]:.1f} s, "
            f"reference {timers['reference'].seconds[-1]:.1f} s",
            flush=True,
        )
    rates = {
        name: [examples / seconds for seconds in timer.seconds[1:]]
        for name, timer in timers.items()
    }
    ratios = [a / r for a, r in zip(rates["app"], rates["reference"], strict=True)]
    return {
        "training_examples": examples,
        "batch_size": config.training.batch_size,
        "reference_padded_length": padded_length,
        "app_length_boundaries": assets.length_boundaries,
        "optimizers": {
            "app": type(app_model.optimizer).__name__,
            "reference": type(reference.optimizer).__name__,
        },
        "epoch_seconds": {name: timer.seconds for name, timer in timers.items()},
        "examples_per_second": {name: statistics.fmean(values) for name, values in rates.items()},
        "ratio_per_epoch_pair": ratios,
        "ratio": statistics.fmean(rates["app"]) / statistics.fmean(rates["reference"]),
        "ratio_median_of_pairs": statistics.median(ratios),
        "parameters": {"app": app_model.count_params(), "reference": reference.count_params()},
        "app_model": app_model,
    }


def serving_latency(
    config, model, assets, test_texts, warmup: int, batch_one: int, batch_many: int, many_size: int
) -> dict:
    with tempfile.TemporaryDirectory(prefix="sentiment-speed-") as scratch:
        version = export.export(APP, model, config, assets, Path(scratch) / "saved_models")
        texts_file = Path(scratch) / "texts.json"
        texts_file.write_text(json.dumps(test_texts))
        completed = subprocess.run(
            [
                sys.executable,
                "-c",
                SERVING_CLIENT,
                str(version),
                str(texts_file),
                str(warmup),
                str(batch_one),
                str(batch_many),
                str(many_size),
            ],
            capture_output=True,
            text=True,
            cwd="/",
            check=False,
            env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
    if completed.returncode != 0:
        raise RuntimeError(f"serving client failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def markdown(results: dict) -> str:
    speed, serving = results["training"], results["serving"]
    rates = speed["examples_per_second"]
    lines = [
        f"Training throughput, `{results['preset']}` preset "
        f"(overrides: {results['overrides'] or 'none'}), {speed['training_examples']} training "
        f"snippets, batch {speed['batch_size']}, {len(speed['epoch_seconds']['app'])} epochs "
        "each, alternating app and reference epochs in one process; the first epoch of each "
        "is not counted.",
        "",
        "| model | input | optimizer | examples/s | epoch seconds (all) |",
        "|---|---|---|---|---|",
        f"| app (pipeline + model) | length-bucketed, boundaries "
        f"{speed['app_length_boundaries']} | {speed['optimizers']['app']} | {rates['app']:.0f} | "
        f"{', '.join(f'{s:.1f}' for s in speed['epoch_seconds']['app'])} |",
        f"| plain Keras reference | every snippet padded to {speed['reference_padded_length']} "
        f"tokens (99% of snippets) | {speed['optimizers']['reference']} | "
        f"{rates['reference']:.0f} | "
        f"{', '.join(f'{s:.1f}' for s in speed['epoch_seconds']['reference'])} |",
        "",
        f"- speed ratio app / reference: **{speed['ratio']:.2f}x** (per epoch pair: "
        f"{', '.join(f'{r:.2f}' for r in speed['ratio_per_epoch_pair'])}; median "
        f"{speed['ratio_median_of_pairs']:.2f}); parameters "
        f"{speed['parameters']['app']:,} vs {speed['parameters']['reference']:,}",
        "",
        "Serving latency of the exported SavedModel (`serving_default`, raw text in) in a fresh "
        "process importing only tensorflow and tensorflow_text, after "
        f"{results['serving_warmup']} warmup requests per batch size:",
        "",
        "| batch | requests | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|",
    ]
    for row in serving["latency"]:
        lines.append(
            f"| {row['batch_size']} | {row['requests']} | {row['p50_ms']:.1f} "
            f"| {row['p99_ms']:.1f} | {row['mean_ms']:.1f} |"
        )
    lines += [
        "",
        f"Measured {results['date']} on 2 shared CPU cores, no GPU; 1-minute load average "
        f"{results['load_average']['start']:.1f} at the start and "
        f"{results['load_average']['end']:.1f} at the end (above 2, other jobs shared the "
        "cores: absolute figures are noisy, the ratio less so, as both models' epochs "
        "alternate).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=4, help="per model; the first is warmup")
    parser.add_argument(
        "--reference-optimizer",
        choices=("keras", "fused"),
        default="keras",
        help="keras.optimizers.AdamW (the bar) or the app's FusedAdamW",
    )
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-one-requests", type=int, default=200)
    parser.add_argument("--batch-many-requests", type=int, default=50)
    parser.add_argument("--batch-many-size", type=int, default=64)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/sentiment_speed.json"))
    parser.add_argument("--results", type=Path, default=None)
    arguments = parser.parse_args()
    config = APP.presets[arguments.preset]()
    config_lib.apply_overrides(config, arguments.overrides)
    load_at_start = os.getloadavg()[0]
    keras.utils.set_random_seed(config.training.seed)
    datasets = APP.data.load_data(config)
    training = training_throughput(
        config, datasets, arguments.epochs, arguments.reference_optimizer
    )
    app_model = training.pop("app_model")
    _, _, _, test_texts = padded_training_arrays(config, datasets.assets)
    serving = serving_latency(
        config,
        app_model,
        datasets.assets,
        test_texts,
        arguments.warmup,
        arguments.batch_one_requests,
        arguments.batch_many_requests,
        arguments.batch_many_size,
    )
    results = {
        "dataset": "mr",
        "preset": arguments.preset,
        "overrides": arguments.overrides,
        "config": config_lib.to_dict(config),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": {"start": load_at_start, "end": os.getloadavg()[0]},
        "training": training,
        "serving_warmup": arguments.warmup,
        "serving": serving,
    }
    arguments.output.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print(table)
    if arguments.results:
        replace_section(arguments.results, table, SECTION_BEGIN, SECTION_END)


if __name__ == "__main__":
    main()
