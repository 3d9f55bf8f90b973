"""Sentiment quality: the app's preset against TF-IDF + logistic regression, K-fold CV on `mr`.

For each fold of a seeded K-fold split (test = fold k, validation = 10% of the rest, the app's
own `data.folds` / `data.fold` rule), side by side in one process:

- the app's preset (default `base`) trained from scratch through `apps.core.training.train`,
  its best checkpoint (by validation accuracy) scored by `APP.evaluation.evaluate` on the test fold;
- the peer: TF-IDF on word uni+bigrams (sublinear tf) + logistic regression, fitted on the
  same training part, C chosen on the same validation part from `C_GRID`.

    python benchmarks/sentiment_quality.py --folds 10
    python benchmarks/sentiment_quality.py --folds 5 --set training.learning_rate=1e-3

Prints a markdown table, writes the figures as JSON (`--output`) and, with `--results FILE`,
replaces the quality section of that markdown file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from report import replace_section
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from apps.core import config as config_lib
from apps.core import training
from apps.core.app import EvaluationOutputs
from apps.sentiment import data as data_lib
from apps.sentiment.app import APP

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
SECTION_BEGIN = "<!-- sentiment_quality:begin -->"
SECTION_END = "<!-- sentiment_quality:end -->"


def fold_config(preset: str, overrides: list[str], folds: int, fold: int, split_seed: int):
    config = APP.presets[preset]()
    config_lib.apply_overrides(config, overrides)
    config.data.folds = folds
    config.data.fold = fold
    config.data.split_seed = split_seed
    return config


def tfidf_logistic_regression(config) -> dict:
    """The peer on the same split as the app: C chosen on validation, fitted on train."""
    examples = data_lib.read_examples(config)
    texts = np.asarray(examples.texts, dtype=object)
    labels = np.asarray(examples.labels, dtype=object)
    splits = data_lib.split_indices(examples.texts, config)
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    train_features = vectorizer.fit_transform(texts[splits["train"]])
    validation_features = vectorizer.transform(texts[splits["validation"]])
    best = None
    for c in C_GRID:
        classifier = LogisticRegression(C=c, max_iter=2000)
        classifier.fit(train_features, labels[splits["train"]])
        validation_accuracy = classifier.score(validation_features, labels[splits["validation"]])
        if best is None or validation_accuracy > best[0]:
            best = (validation_accuracy, c, classifier)
    validation_accuracy, c, classifier = best
    seconds = time.perf_counter() - started
    test_accuracy = classifier.score(
        vectorizer.transform(texts[splits["test"]]), labels[splits["test"]]
    )
    return {
        "test_accuracy": float(test_accuracy),
        "validation_accuracy": float(validation_accuracy),
        "C": c,
        "train_seconds": seconds,
        "split": {name: len(indices) for name, indices in splits.items()},
    }


def app_model(config, workdir: Path) -> dict:
    """Trains the app's model from scratch and scores its best checkpoint on the test fold."""
    started = time.perf_counter()
    _, datasets = training.train(APP, config, workdir)
    seconds = time.perf_counter() - started
    best_model = keras.saving.load_model(workdir / training.MODEL_FILE)
    metrics = APP.evaluation.evaluate(best_model, config, datasets, EvaluationOutputs(workdir))
    history = (workdir / training.HISTORY_FILE).read_text().splitlines()
    header = history[0].split(",")
    validation_accuracies = [
        float(row.split(",")[header.index("val_accuracy")]) for row in history[1:]
    ]
    return {
        "test_accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "validation_accuracy": max(validation_accuracies),
        "best_epoch": int(np.argmax(validation_accuracies)) + 1,
        "epochs_run": len(validation_accuracies),
        "train_seconds": seconds,
        "split": datasets.summary["split"],
    }


def summarize(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def markdown(results: dict) -> str:
    app_name = f"app `{results['preset']}`"
    lines = [
        f"{results['folds']}-fold CV on `mr` (split_seed {results['split_seed']}; test = fold k, "
        f"validation = 10% of the rest; overrides: {results['overrides'] or 'none'}). "
        "Peer: TF-IDF word 1-2 grams, sublinear tf, logistic regression with C chosen on the "
        f"validation part from {list(C_GRID)}, fitted on the training part.",
        "",
        f"| fold | {app_name} test acc | val acc | best epoch / run | train s "
        "| TF-IDF+LR test acc | C | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fold in results["per_fold"]:
        app, peer = fold["app"], fold["tfidf_lr"]
        lines.append(
            f"| {fold['fold']} | {app['test_accuracy']:.4f} | {app['validation_accuracy']:.4f} "
            f"| {app['best_epoch']} / {app['epochs_run']} | {app['train_seconds']:.0f} "
            f"| {peer['test_accuracy']:.4f} | {peer['C']:g} | {peer['train_seconds']:.1f} |"
        )
    summary = results["summary"]
    lines += [
        "",
        f"- {app_name}: mean test accuracy **{summary['app']['mean']:.4f}** "
        f"(std {summary['app']['std']:.4f} over folds), "
        f"{summary['app_train_seconds']['mean']:.0f} s training per fold on average",
        f"- TF-IDF + LR: mean test accuracy **{summary['tfidf_lr']['mean']:.4f}** "
        f"(std {summary['tfidf_lr']['std']:.4f}), "
        f"{summary['tfidf_lr_train_seconds']['mean']:.1f} s per fold (C grid included)",
        f"- paired difference app - peer: {summary['difference']['mean']:+.4f} "
        f"(std {summary['difference']['std']:.4f}, standard error "
        f"{summary['difference_standard_error']:.4f}); app ahead on "
        f"{summary['folds_app_ahead']} of {len(results['per_fold'])} folds run",
        f"- wall time of the whole run: {results['wall_seconds'] / 60:.0f} min "
        "(2 shared CPU cores, other jobs running concurrently)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--only-folds", default="", help="comma-separated subset, e.g. 0,1")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/sentiment_quality.json"))
    parser.add_argument("--results", type=Path, default=None)
    arguments = parser.parse_args()
    folds = (
        [int(fold) for fold in arguments.only_folds.split(",")]
        if arguments.only_folds
        else list(range(arguments.folds))
    )
    started = time.perf_counter()
    per_fold = []
    with tempfile.TemporaryDirectory(prefix="sentiment-quality-") as scratch:
        for fold in folds:
            config = fold_config(
                arguments.preset, arguments.overrides, arguments.folds, fold, arguments.split_seed
            )
            peer = tfidf_logistic_regression(config)
            app = app_model(config, Path(scratch) / f"fold-{fold}")
            per_fold.append({"fold": fold, "app": app, "tfidf_lr": peer})
            print(
                f"fold {fold}: app {app['test_accuracy']:.4f} ({app['train_seconds']:.0f} s), "
                f"tfidf+lr {peer['test_accuracy']:.4f} (C={peer['C']:g})",
                flush=True,
            )
            keras.backend.clear_session()
    app_accuracies = [fold["app"]["test_accuracy"] for fold in per_fold]
    peer_accuracies = [fold["tfidf_lr"]["test_accuracy"] for fold in per_fold]
    differences = [a - p for a, p in zip(app_accuracies, peer_accuracies, strict=True)]
    difference = summarize(differences)
    results = {
        "dataset": "mr",
        "preset": arguments.preset,
        "overrides": arguments.overrides,
        "config": config_lib.to_dict(
            fold_config(
                arguments.preset, arguments.overrides, arguments.folds, 0, arguments.split_seed
            )
        ),
        "folds": arguments.folds,
        "split_seed": arguments.split_seed,
        "per_fold": per_fold,
        "summary": {
            "app": summarize(app_accuracies),
            "tfidf_lr": summarize(peer_accuracies),
            "difference": difference,
            "difference_standard_error": difference["std"] / len(differences) ** 0.5,
            "folds_app_ahead": sum(value > 0 for value in differences),
            "app_train_seconds": summarize([f["app"]["train_seconds"] for f in per_fold]),
            "tfidf_lr_train_seconds": summarize([f["tfidf_lr"]["train_seconds"] for f in per_fold]),
        },
        "wall_seconds": time.perf_counter() - started,
    }
    arguments.output.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print(table)
    if arguments.results:
        replace_section(arguments.results, table, SECTION_BEGIN, SECTION_END)


if __name__ == "__main__":
    main()
