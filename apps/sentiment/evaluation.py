"""Sentiment evaluation: accuracy, macro F1, per-class scores and the confusion matrix."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from apps.core import plots
from apps.core.app import Datasets, EvaluationOutputs
from apps.core.metrics import classification_metrics
from apps.sentiment.config import SentimentConfig


def evaluate(
    model: keras.Model, config: SentimentConfig, datasets: Datasets, outputs: EvaluationOutputs
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
        np.asarray(metrics["confusion_matrix"]), label_names, outputs.path("confusion-matrix.png")
    )
    return metrics


def validation_callbacks(
    config: SentimentConfig, datasets: Datasets
) -> list[keras.callbacks.Callback]:
    return []
