"""Sentiment evaluation: accuracy, macro F1, per-class scores and the confusion matrix, beside
the TF-IDF logistic regression baseline on the same test texts."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from apps.core import plots
from apps.core.app import Datasets, EvaluationOutputs
from apps.core.metrics import classification_metrics, headline
from apps.sentiment.config import SentimentConfig
from layers.ngram_bag import NgramBag, fit_logistic_regression


def batches_as_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A batched (token ids, label ids) dataset as one zero-padded id array and its labels."""
    ids, labels = [], []
    for batch_ids, batch_labels in dataset:
        ids += list(batch_ids.numpy())
        labels.append(batch_labels.numpy())
    padded = np.zeros((len(ids), max((len(row) for row in ids), default=0)), np.int64)
    for index, row in enumerate(ids):
        padded[index, : len(row)] = row
    return padded, np.concatenate(labels)


def tfidf_baseline(config: SentimentConfig, datasets: Datasets) -> NgramBag | None:
    """The TF-IDF (unigrams and hashed bigrams) logistic regression on the run's own tokens:
    the model's frozen wide part when it has one, else fitted on the training split with C
    chosen on validation; None without a training split (or with a class missing from it)."""
    assets = datasets.assets
    bag = NgramBag(len(assets.vocabulary), len(assets.label_names), config.model.bigram_buckets)
    bag.build((None, None))
    if assets.ngram_bag_weights is not None:
        bag.set_weights(assets.ngram_bag_weights)
        return bag
    if datasets.train is None or datasets.validation is None:
        return None
    train, validation = batches_as_arrays(datasets.train), batches_as_arrays(datasets.validation)
    try:
        fit_logistic_regression(bag, train, validation, config.model.ngram_bag_c_grid)
    except ValueError:
        return None
    return bag


def evaluate(
    model: keras.Model, config: SentimentConfig, datasets: Datasets, outputs: EvaluationOutputs
) -> dict[str, Any]:
    true_ids, predicted_ids, baseline_ids = [], [], []
    baseline = tfidf_baseline(config, datasets)
    for ids, labels in datasets.test:
        true_ids.append(labels.numpy())
        predicted_ids.append(np.argmax(model(ids, training=False), axis=-1))
        if baseline is not None:
            baseline_ids.append(np.argmax(baseline(ids), axis=-1))
    label_names = datasets.assets.label_names
    true_ids = np.concatenate(true_ids)
    metrics = classification_metrics(true_ids, np.concatenate(predicted_ids), label_names)
    plots.confusion_matrix(
        np.asarray(metrics["confusion_matrix"]), label_names, outputs.path("confusion-matrix.png")
    )
    baselines = {}
    if baseline is not None:
        baseline_metrics = classification_metrics(
            true_ids, np.concatenate(baseline_ids), label_names
        )
        metrics["tfidf_logistic_regression"] = {
            name: baseline_metrics[name] for name in ("accuracy", "macro_f1")
        }
        baselines["tfidf_logistic_regression"] = baseline_metrics["accuracy"]
    metrics["headline"] = headline("accuracy", metrics["accuracy"], baselines, True)
    return metrics


def validation_callbacks(
    config: SentimentConfig, datasets: Datasets
) -> list[keras.callbacks.Callback]:
    return []
