"""Serving speed of every app's export against its Keras model called directly, and the batching
parameters chosen from it.

For each app: the main job's trained work dir (`--runs DIR` holding `DIR/<app>`, as
`scripts/main_job.sh` leaves them in runs/), or else the main job's preset trained for
`--epochs` epochs in a scratch dir. Its export is written (`apps.core.export.export`), loaded
with `tf.saved_model.load` in this process, and `serving_default` is called on batches of 1, 8
and 64 raw requests (the rows of the app's `example_request` repeated: texts, series windows,
image bytes, clips). Beside it, in the same process and on batches of the same sizes, the Keras
model is called directly (`model.predict_on_batch`) on the same requests already preprocessed:
the inputs the app's own endpoint hands the model for them (recorded by running the endpoint
eagerly once). Translation and captioning call their encoder and decoder step by step, not the
model; for them the Keras call is the training graph on the test pipeline's batches of the
same size (teacher forcing: one pass over known targets), a floor that decoding one token at a
time cannot reach, so their ratio shows what the in-graph search costs on top.

Per app and batch size: examples/s (over the median call), p50 and p99 latency of a call.
From these, the batching parameters each app's export ships (`BATCHING` in its serving.py,
written as the version's `batching_params.pbtxt`), by the rule in `choose_batching`.

    python benchmarks/serving_speed.py --runs runs --output benchmarks/results/serving_speed.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from report import replace_section

from apps.client import APP_NAMES, load_app
from apps.core import training
from apps.core.export import export

SECTION_BEGIN = "<!-- serving_speed:begin -->"
SECTION_END = "<!-- serving_speed:end -->"
BATCH_SIZES = (1, 8, 64)
# The main job's preset of each app (scripts/main_job.sh).
MAIN_JOB_PRESETS = {
    "sentiment": "base",
    "forecasting": "quick",
    "translation": "small",
    "captioning": "small",
    "activity": "small",
}
# Batching pays while a batch 8x the size still answers this many times more examples per
# second than the smaller one.
WORTHWHILE_GAIN = 1.25


def repeated(example: dict[str, np.ndarray], names: list[str], rows: int) -> dict[str, tf.Tensor]:
    """The example's rows repeated (in turn) to `rows` rows, for the signature's inputs."""
    count = len(example[names[0]])
    index = np.arange(rows) % count
    return {name: tf.constant(np.asarray(example[name])[index]) for name in names}


def preprocessed_rows(dataset: tf.data.Dataset, rows: int):
    """The model inputs of the first `rows` examples of a batched `(inputs, targets...)`
    dataset, as one batch padded to its longest example (repeated in turn when the split is
    smaller)."""
    inputs = dataset.map(lambda *batch: batch[0]).unbatch().take(rows).padded_batch(rows)
    batch = next(iter(inputs))
    count = len(tf.nest.flatten(batch)[0])
    index = np.arange(rows) % count
    return tf.nest.map_structure(lambda value: tf.gather(value, index), batch)


class RecordingModel:
    """Stands in for the Keras model inside the app's endpoints and records what it is called
    with (the preprocessed inputs)."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.inputs = []

    def __call__(self, inputs, *args, **kwargs):
        self.inputs.append(inputs)
        return self.model(inputs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def preprocessed(app, model, config, assets, request: dict[str, tf.Tensor]):
    """The inputs the app's `serving_default` hands the model for `request`, or None when the
    endpoint does not call the model whole (a search over its encoder and decoder)."""
    recorder = RecordingModel(model)
    serve = app.serving.endpoints(recorder, config, assets).functions["serving_default"]
    tf.config.run_functions_eagerly(True)
    try:
        serve(**request)
    finally:
        tf.config.run_functions_eagerly(False)
    return recorder.inputs[0] if recorder.inputs else None


def timed(call, calls: int) -> list[float]:
    call()  # warm-up: traces and allocates
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float], batch: int) -> dict[str, float]:
    return {
        "examples_per_second": batch / float(np.median(seconds)),
        "p50_ms": 1000 * float(np.percentile(seconds, 50)),
        "p99_ms": 1000 * float(np.percentile(seconds, 99)),
    }


def trained_workdir(app, runs: Path | None, scratch: Path, epochs: int) -> Path:
    if runs is not None and (runs / app.name / training.MODEL_FILE).is_file():
        return runs / app.name
    config = app.presets[MAIN_JOB_PRESETS[app.name]]()
    config.training.epochs = epochs
    workdir = scratch / app.name
    training.train(app, config, workdir)
    return workdir


def measure_app(app, workdir: Path, scratch: Path, calls: int) -> dict:
    config, model, assets = training.load_trained(app, workdir)
    version = export(app, model, config, assets, scratch / "saved_models")
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    names = list(signature.structured_input_signature[1])
    example = app.serving.example_request(config)
    test = None
    results = {"workdir": str(workdir), "export": {}, "keras": {}, "keras_inputs": "the same"}
    for batch in BATCH_SIZES:
        request = repeated(example, names, batch)
        inputs = preprocessed(app, model, config, assets, request)
        if inputs is None:
            test = test or app.data.load_data(config, assets).test
            inputs = preprocessed_rows(test, batch)
            results["keras_inputs"] = "test pipeline, teacher forced"
        served = timed(lambda request=request: signature(**request), calls)
        direct = timed(lambda inputs=inputs: model.predict_on_batch(inputs), calls)
        results["export"][batch] = summary(served, batch)
        results["keras"][batch] = summary(direct, batch)
        print(
            f"{app.name} batch {batch}: export {batch / np.median(served):.1f} examples/s, "
            f"Keras {batch / np.median(direct):.1f}",
            flush=True,
        )
    results["batching"] = choose_batching(results["export"])
    return results


def choose_batching(export_results: dict[int, dict[str, float]]) -> dict[str, object]:
    """The batching parameters from the export's measured throughput.

    `max_batch_size`: the largest measured size whose throughput is still `WORTHWHILE_GAIN`
    times the next smaller size's (past it, bigger batches only add waiting);
    `allowed_batch_sizes`: the measured sizes up to it (TF Serving pads a batch to the next
    one); `batch_timeout_micros`: the p50 of one request alone, so a request waits for company
    at most about as long as it takes to answer on its own.
    """
    sizes = sorted(export_results)
    largest = sizes[0]
    for smaller, larger in zip(sizes, sizes[1:], strict=False):
        gain = (
            export_results[larger]["examples_per_second"]
            / export_results[smaller]["examples_per_second"]
        )
        if gain < WORTHWHILE_GAIN:
            break
        largest = larger
    return {
        "max_batch_size": largest,
        "allowed_batch_sizes": [size for size in sizes if size <= largest],
        "batch_timeout_micros": int(round(export_results[sizes[0]]["p50_ms"] * 10)) * 100,
    }


def markdown(results: dict) -> str:
    lines = [
        "Per app, one process: `serving_default` of the loaded export on raw requests against "
        "`model.predict_on_batch` on the same requests preprocessed (translation and "
        "captioning: the teacher-forced training graph on test batches of the same size, one "
        "pass, no search). Examples/s over the median call; p50 / p99 ms per call.",
        "",
        "| app | batch | export ex/s | export p50 / p99 ms | Keras ex/s | Keras p50 / p99 ms "
        "| export / Keras |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, app_results in results["apps"].items():
        for batch in BATCH_SIZES:
            served, direct = app_results["export"][batch], app_results["keras"][batch]
            lines.append(
                f"| {name} | {batch} | {served['examples_per_second']:.1f} | "
                f"{served['p50_ms']:.1f} / {served['p99_ms']:.1f} | "
                f"{direct['examples_per_second']:.1f} | "
                f"{direct['p50_ms']:.1f} / {direct['p99_ms']:.1f} | "
                f"{served['examples_per_second'] / direct['examples_per_second']:.2f} |"
            )
    lines += ["", "Batching parameters chosen from the export's figures (`choose_batching`):", ""]
    lines += ["| app | max_batch_size | allowed_batch_sizes | batch_timeout_micros |"]
    lines += ["| --- | --- | --- | --- |"]
    for name, app_results in results["apps"].items():
        batching = app_results["batching"]
        allowed = ", ".join(map(str, batching["allowed_batch_sizes"]))
        lines.append(
            f"| {name} | {batching['max_batch_size']} | {allowed} | "
            f"{batching['batch_timeout_micros']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default=",".join(MAIN_JOB_PRESETS))
    parser.add_argument("--runs", type=Path, help="trained work dirs, one per app (runs/<app>)")
    parser.add_argument("--epochs", type=int, default=1, help="training without --runs")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per batch size")
    parser.add_argument("--output", help="write the figures here as JSON")
    parser.add_argument("--results", help="replace the serving section of this markdown file")
    args = parser.parse_args()
    results = {"calls": args.calls, "apps": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.apps.split(","):
            if name not in APP_NAMES:
                parser.error(f"--apps: unknown app {name!r}; apps: {', '.join(APP_NAMES)}")
            app = load_app(name)
            keras.utils.set_random_seed(0)
            workdir = trained_workdir(app, args.runs, Path(scratch), args.epochs)
            results["apps"][name] = measure_app(app, workdir, Path(scratch), args.calls)
            if args.output:
                Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print(table)
    if args.results:
        replace_section(Path(args.results), table, SECTION_BEGIN, SECTION_END)


if __name__ == "__main__":
    main()
