"""Sentiment evaluation: accuracy, macro F1, per-class scores and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from apps.core import plots
from apps.core.app import Datasets
from apps.sentiment.config import SentimentConfig


def classification_metrics(
    true_ids: np.ndarray, predicted_ids: np.ndarray, label_names: list[str]
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix."""
    classes = len(label_names)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (true_ids, predicted_ids), 1)
    true_positives = np.diag(matrix).astype(np.float64)
    precision = np.divide(
        true_positives, matrix.sum(axis=0), out=np.zeros(classes), where=matrix.sum(axis=0) > 0
    )
    recall = np.divide(
        true_positives, matrix.sum(axis=1), out=np.zeros(classes), where=matrix.sum(axis=1) > 0
    )
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros(classes),
        where=precision + recall > 0,
    )
    return {
        "accuracy": float(true_positives.sum() / max(matrix.sum(), 1)),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f)}
            for name, p, r, f in zip(label_names, precision, recall, f1, strict=True)
        },
        "confusion_matrix": matrix.tolist(),
    }


def evaluate(
    model: keras.Model, config: SentimentConfig, datasets: Datasets, workdir: Path
) -> dict[str, Any]:
    true_ids, predicted_ids = [], []
    for ids, labels in datasets.test:
        true_ids.append(labels.numpy())
        predicted_ids.append(np.argmax(model(ids, training=False), axis=-1))
    label_names = datasets.assets.label_names
    metrics = classification_metrics(
        np.concatenate(true_ids), np.concatenate(predicted_ids), label_names
    )
    plots.confusion_matrix(
        np.asarray(metrics["confusion_matrix"]), label_names, workdir / "confusion-matrix.png"
    )
    return metrics


def validation_callbacks(
    config: SentimentConfig, datasets: Datasets
) -> list[keras.callbacks.Callback]:
    return []
