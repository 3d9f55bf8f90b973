"""Captioning quality on emoji (composition split): the app, its nearest-neighbour baseline and a
keras.io-style Transformer reference, in one run, mean of seeds.

For every seed (`data.split_seed` and `training.seed` both set to it) the app's preset trains
as `rnn-caption train` trains it (its epochs, its validation BLEU, early stopping on it, the
best epoch's weights; `--minutes` only caps it), and `evaluation.evaluate` scores greedy and
beam search and the nearest-neighbour baseline (the caption of the training image whose pooled
features, the trained model's, are closest). Then the reference
(`benchmarks/captioning_reference.py`: the same backbone, input size, images and split) trains
for the wall-clock `fit` time the app took on that seed, its best epoch chosen by the same
validation BLEU, and its greedy captions are scored against the same references. An epoch
starts only while the previous one's time still fits in what is left of the budget. (A fixed
budget in minutes bought the app 9 epochs on a quiet machine and 5 under other jobs' load.)

    python benchmarks/captioning_quality.py --preset small --seeds 1,2,3
    python benchmarks/captioning_quality.py --split validation --seeds 1 ...  # model choices

`--split validation` scores the validation split instead of test (for choosing settings;
early stopping then reads the split it is scored on, so use it to compare, not to report).
Prints a markdown table and writes every figure as JSON (`--output`); `--workdir` keeps the
first seed's app model as a work dir for `benchmarks/captioning_speed.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import captioning_reference as reference
import keras
import numpy as np
import tensorflow as tf

from apps.captioning import evaluation
from apps.captioning.app import APP
from apps.captioning.data import image_preprocessing
from apps.core import config as config_lib
from apps.core import training
from apps.core.generation import ValidationBleu, generate_all

METRICS = ("bleu1", "bleu4", "cider", "rouge_l", "exact_match")


class TimeBudget(keras.callbacks.Callback):
    """Stops before an epoch that would not fit in the budget; records every epoch."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        record = {"epoch": epoch + 1, "seconds": round(now - self.epoch_started, 1)}
        record.update({key: round(float(value), 4) for key, value in (logs or {}).items()})
        self.epochs.append(record)
        print(json.dumps(record), flush=True)
        if now - self.started + (now - self.epoch_started) > self.seconds:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.train_seconds = time.perf_counter() - self.started


def best_weights(patience: int) -> keras.callbacks.EarlyStopping:
    return keras.callbacks.EarlyStopping(
        monitor="val_bleu", mode="max", patience=patience, restore_best_weights=True
    )


def figures(budget: TimeBudget, images: int) -> dict:
    seconds = [epoch["seconds"] for epoch in budget.epochs]
    bleus = [epoch["val_bleu"] for epoch in budget.epochs]
    return {
        "train_seconds": round(budget.train_seconds, 1),
        "epochs": len(budget.epochs),
        "best_epoch": int(np.argmax(bleus)) + 1,
        "best_val_bleu": max(bleus),
        "train_images_per_second": round(images / float(np.median(seconds)), 1),
        "history": budget.epochs,
    }


def run_app(config, datasets, seconds: float, workdir: Path | None) -> dict:
    model = training.build_model(APP, config, datasets.assets)
    budget = TimeBudget(seconds)
    callbacks = [
        *evaluation.validation_callbacks(config, datasets),
        budget,
        best_weights(config.training.early_stopping_patience),
    ]
    training.fit(model, datasets, config.training.epochs, callbacks, verbose=2)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        model.save(workdir / training.MODEL_FILE)
        config_lib.save(config, workdir / training.CONFIG_FILE)
        datasets.assets.save(workdir / training.ASSETS_DIR)
    with tempfile.TemporaryDirectory() as scratch:
        metrics = evaluation.evaluate(model, config, datasets, Path(scratch))
    return {
        **figures(budget, len(datasets.images.train.paths)),
        "parameters": model.count_params(),
        "scores": metrics["scores"],
        "samples": metrics["samples"],
    }


def run_reference(config, datasets, seconds: float, args) -> dict:
    tokenizer = datasets.assets.tokenizer()
    images = datasets.images
    train_captions = [refs[0] for refs in evaluation.canonical_references(tokenizer, images.train)]
    keras.utils.set_random_seed(config.training.seed)
    model = reference.ImageCaptioningModel(
        reference.make_vectorizer(train_captions, config.model.max_caption_length),
        config.model.backbone, config.data.image_size, config.model.small_cnn_filters,
        backbone_trainable=config.model.backbone_training != "frozen",
        embed_dim=args.reference_width, ff_dim=args.reference_width,
        sequence_length=config.model.max_caption_length,
    )  # fmt: skip
    preprocess = image_preprocessing(config)
    batch_size = config.training.batch_size
    validation_captions = [
        refs[0] for refs in evaluation.canonical_references(tokenizer, images.validation)
    ]
    train = reference.make_dataset(
        model, preprocess, images.train.paths, train_captions, batch_size, config.training.seed
    )
    validation = reference.make_dataset(
        model, preprocess, images.validation.paths, validation_captions, batch_size
    )
    steps = int(train.cardinality())
    model.compile(
        optimizer=keras.optimizers.Adam(
            reference.LRSchedule(
                args.reference_learning_rate, max(1, args.reference_planned_epochs * steps // 15)
            )
        ),
        loss=reference.masked_loss,
        metrics=[reference.masked_accuracy],
    )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def caption(image_bytes):
        return model.caption(preprocess(image_bytes))

    budget = TimeBudget(seconds)
    callbacks = [
        ValidationBleu(
            lambda _: caption,
            images.validation.image_bytes(),
            evaluation.canonical_references(tokenizer, images.validation),
        ),
        budget,
        best_weights(config.training.early_stopping_patience),
    ]
    model.fit(train, validation_data=validation, epochs=1000, callbacks=callbacks, verbose=2)
    started = time.perf_counter()
    captions = generate_all(caption, images.test.image_bytes())
    decode_seconds = time.perf_counter() - started
    references = evaluation.canonical_references(tokenizer, images.test)
    scores = evaluation.caption_metrics(references, captions)
    scores["images_per_second"] = len(captions) / decode_seconds
    return {
        **figures(budget, len(images.train.paths)),
        "parameters": model.count_params(),
        "scores": {"greedy": scores},
        "samples": [
            {"image": path, "references": refs, "greedy": text}
            for path, refs, text in list(zip(images.test.paths, references, captions, strict=True))[
                :5
            ]
        ],
    }


def run_seed(args, seed: int, workdir: Path | None) -> dict:
    config = APP.presets[args.preset]()
    config_lib.apply_overrides(config, args.overrides)
    config.data.split_seed = seed
    config.training.seed = seed
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    datasets = APP.data.load_data(config)
    load_seconds = time.perf_counter() - started
    if args.split == "validation":
        datasets = dataclasses.replace(
            datasets,
            test=datasets.validation,
            images=dataclasses.replace(datasets.images, test=datasets.images.validation),
        )
    print(json.dumps({"seed": seed, "data": datasets.summary}, ensure_ascii=False), flush=True)
    run = {"seed": seed, "data": datasets.summary, "load_seconds": round(load_seconds, 1)}
    if "app" in args.models:
        run["app"] = run_app(config, datasets, args.minutes * 60, workdir)
    if "reference" in args.models:
        seconds = run["app"]["train_seconds"] if "app" in run else args.minutes * 60
        run["reference"] = run_reference(config, datasets, seconds, args)
    return run


def mean_table(runs: list[dict]) -> tuple[dict, str]:
    """Mean (and standard deviation) over the seeds of every method's figures."""
    methods = {}
    for run in runs:
        for model in ("app", "reference"):
            if model not in run:
                continue
            for search, scores in run[model]["scores"].items():
                name = search if search == "nearest_neighbour" else f"{model} {search}"
                methods.setdefault(name, []).append(scores)
    seconds = {
        model: [run[model]["train_seconds"] for run in runs if model in run]
        for model in ("app", "reference")
    }
    means = {
        name: {
            metric: {"mean": float(np.mean([s[metric] for s in scores])),
                     "std": float(np.std([s[metric] for s in scores]))}
            for metric in METRICS
        }
        for name, scores in methods.items()
    }  # fmt: skip
    lines = [
        f"| method (mean of {len(runs)} seeds) | " + " | ".join(METRICS) + " |",
        "| --- |" + " --- |" * len(METRICS),
    ]
    for name, values in means.items():
        cells = [
            f"{values[m]['mean'] * (100 if m == 'exact_match' else 1):.2f}"
            f" ± {values[m]['std'] * (100 if m == 'exact_match' else 1):.2f}"
            for m in METRICS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for model, values in seconds.items():
        if values:
            lines.append(f"\n{model} training seconds per seed: {values}")
    return means, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument(
        "--minutes", type=float, default=30.0,
        help="the app's fit cap (the reference gets the app's time; alone, this budget)",
    )  # fmt: skip
    parser.add_argument("--models", default="app,reference")
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--reference-width", type=int, default=512, help="keras.io: 512")
    parser.add_argument(
        "--reference-learning-rate", type=float, default=1e-4,
        help="keras.io: 1e-4 after its warm-up",
    )  # fmt: skip
    parser.add_argument(
        "--reference-planned-epochs", type=int, default=30,
        help="keras.io's EPOCHS: its warm-up is 1/15 of these epochs' steps",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", help="save the first seed's app model here (for captioning_speed.py)"
    )
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args()
    runs = []
    for index, seed in enumerate(int(seed) for seed in args.seeds.split(",")):
        runs.append(
            run_seed(args, seed, Path(args.workdir) if index == 0 and args.workdir else None)
        )
        # Written after every seed, so that an interrupted run keeps the seeds it finished.
        means, table = mean_table(runs)
        results = {
            "preset": args.preset, "overrides": args.overrides, "split": args.split,
            "minutes": args.minutes, "means": means, "runs": runs,
        }  # fmt: skip
        if args.output:
            Path(args.output).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(table, flush=True)


if __name__ == "__main__":
    main()
