"""Translation quality on ding-de-en: the app's preset against an nmt_with_attention reference.

Both models train on the same seeded split of the app (`data.make_splits`: deduplicated by
source, 5% validation, 5% test) for the same wall-clock budget of `fit` time: epochs run
while the last epoch still fits in what is left. The weights of the epoch with the lowest
validation loss are scored on the test split with corpus BLEU (`keras_hub.metrics.Bleu`,
13a tokenization) against the same references (lower-cased, NFC, as the app's tokenizer
normalizes them):

- `app`: `APP.data.load_data` / `APP.model.build_model`, the decoding chosen on validation
  (`APP.choose_after_training`), `APP.evaluation.evaluate` (greedy and beam search; BLEU
  is now sacreBLEU's, lower-cased, against the raw references: keras-hub's Bleu against the
  lower-cased references before).
- `reference`: `benchmarks/translation_reference.py`, after the TensorFlow tutorial.

    python benchmarks/translation_quality.py app --minutes 15 --output app.json
    python benchmarks/translation_quality.py reference --minutes 15 --output reference.json

Each run prints its figures and writes them as JSON; the app's run also saves its model as
a work dir (`--workdir`) for `benchmarks/translation_speed.py`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from apps.core import config as config_lib
from apps.core import training
from apps.core.app import EvaluationOutputs
from apps.core.metrics import corpus_bleu
from apps.translation import data as data_lib
from apps.translation.app import APP
from apps.translation.evaluation import canonical_targets


class TimeBudget(keras.callbacks.Callback):
    """Stops before an epoch that would not fit in the budget; remembers the best weights."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.epochs = []

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        self.best_loss, self.best_weights = float("inf"), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        record = {"epoch": epoch + 1, "seconds": round(now - self.epoch_started, 1)}
        record.update({key: round(float(value), 4) for key, value in (logs or {}).items()})
        self.epochs.append(record)
        print(json.dumps(record), flush=True)
        if logs["val_loss"] < self.best_loss:
            self.best_loss, self.best_weights = logs["val_loss"], self.model.get_weights()
            self.best_epoch = epoch + 1
        if now - self.started + (now - self.epoch_started) > self.seconds:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)
        self.train_seconds = time.perf_counter() - self.started


def target_tokens(dataset) -> int:
    return int(sum(np.count_nonzero(targets) for _, targets, _ in dataset))


def training_figures(config, budget, train, model, preprocessing_seconds: float) -> dict:
    """Seeds, times, epochs and throughput of a budgeted run (the app's and the reference's)."""
    epoch_seconds = [epoch["seconds"] for epoch in budget.epochs]
    return {
        "seed": config.training.seed,
        "split_seed": config.data.split_seed,
        "preprocessing_seconds": round(preprocessing_seconds, 1),
        "train_seconds": round(budget.train_seconds, 1),
        "epochs": budget.epochs,
        "best_epoch": budget.best_epoch,
        "train_target_tokens_per_second": round(
            target_tokens(train) / float(np.median(epoch_seconds)), 1
        ),
        "parameters": model.count_params(),
    }


def run_app(args) -> dict:
    config = APP.presets[args.preset]()
    config_lib.apply_overrides(config, args.overrides)
    keras.utils.set_random_seed(config.training.seed)
    started = time.perf_counter()
    datasets = APP.data.load_data(config)
    preprocessing_seconds = time.perf_counter() - started
    model = APP.model.build_model(config, datasets.assets)
    budget = TimeBudget(args.minutes * 60)
    # With `training.ema_momentum`, validated and scored on the averaged weights, as in `train`.
    into_average, out_of_average = training.averaged_weights(config.training)
    model.fit(datasets.train, validation_data=datasets.validation, epochs=1000,
              callbacks=[*into_average, budget, *out_of_average], verbose=2)  # fmt: skip
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model.save(workdir / training.MODEL_FILE)
    datasets.assets.save(workdir / training.ASSETS_DIR)
    config = APP.choose_after_training(model, config, datasets)
    config_lib.save(config, workdir / training.CONFIG_FILE)
    metrics = APP.evaluation.evaluate(model, config, datasets, EvaluationOutputs(workdir))
    return {
        "model": f"app preset {args.preset} {' '.join(args.overrides)}".strip(),
        "data": datasets.summary,
        **training_figures(config, budget, datasets.train, model, preprocessing_seconds),
        **metrics,
    }


def run_reference(args) -> dict:
    import translation_reference as reference

    config = APP.presets[args.preset]()
    config_lib.apply_overrides(config, args.overrides)
    keras.utils.set_random_seed(config.training.seed)
    _, splits = data_lib.make_splits(config)
    started = time.perf_counter()
    model = reference.Translator.from_pairs(
        splits.train, units=args.units, vocabulary_size=args.vocabulary_size
    )
    train = reference.make_dataset(model, splits.train, shuffle=True)
    validation = reference.make_dataset(model, splits.validation, shuffle=False)
    preprocessing_seconds = time.perf_counter() - started
    model.compile(optimizer="adam", loss=reference.masked_loss,
                  metrics=[reference.masked_accuracy])  # fmt: skip
    budget = TimeBudget(args.minutes * 60)
    model.fit(train, validation_data=validation, epochs=1000, callbacks=[budget], verbose=2)
    sources = [source for source, _ in splits.test]
    from pipelines.tokenizers import SentenceTokenizer

    canonical = SentenceTokenizer(["[PAD]", "[UNK]", "[START]", "[END]"], lowercase=True)
    references = canonical_targets(canonical, splits.test)
    translations = []
    decode_started = time.perf_counter()
    for start in range(0, len(sources), 64):
        translations += model.translate(tf.constant(sources[start : start + 64]))
    decode_seconds = time.perf_counter() - decode_started
    source_ids = model.context_vectorizer(tf.constant(sources))
    return {
        "model": f"reference nmt_with_attention units={args.units} "
                 f"vocabulary={args.vocabulary_size}",
        "split": {name: len(getattr(splits, name)) for name in ("train", "validation", "test")},
        **training_figures(config, budget, train, model, preprocessing_seconds),
        "bleu_greedy": corpus_bleu([[text] for text in references], translations),
        "sentences_per_second_greedy": len(sources) / decode_seconds,
        "test_source_unknown_rate": float(np.mean(source_ids.flat_values.numpy() == 1)),
        "outputs_with_unknown": float(np.mean(["[UNK]" in text for text in translations])),
        "samples": [{"source": s, "reference": r, "greedy": t}
                    for s, r, t in list(zip(sources, references, translations, strict=True))[:5]],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["app", "reference"])
    parser.add_argument("--minutes", type=float, default=15.0, help="fit wall-clock budget")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workdir", default="/tmp/rnn-suite-benchmarks/translation-app")
    parser.add_argument("--units", type=int, default=256, help="reference only")
    parser.add_argument("--vocabulary-size", type=int, default=5000, help="reference only")
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args()
    results = run_app(args) if args.model == "app" else run_reference(args)
    text = json.dumps(results, indent=2, ensure_ascii=False, default=float)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
