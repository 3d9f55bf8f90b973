"""Activity evaluation: the shared classification metrics, the confusion matrix, and the
frame-averaging baseline side by side, per class.

The baseline (the same CNN, its frame features averaged over the real frames, no recurrence)
is trained here, on the training split with the run's optimizer settings for
`evaluation.baseline_epochs` epochs, early-stopped on validation accuracy, and kept as
`frame-averaging-baseline.keras` in the work dir; `evaluate --data` (no training split) scores
that kept baseline. On moving-digits it cannot beat chance within a time-reversal pair
(left/right, up/down, in/out, clockwise/anticlockwise): a clip and its reversal have the same
frame average.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from apps.activity.config import ActivityConfig
from apps.activity.model import build_baseline, uses_backbone
from apps.core import plots, training
from apps.core.app import Datasets, EvaluationOutputs
from apps.core.metrics import classification_metrics, headline
from layers.backbone import UnfreezeBackbone

BASELINE_FILE = "frame-averaging-baseline.keras"


def predicted_ids(model: keras.Model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """(true label ids, predicted label ids) over a batched dataset."""
    true_ids, predicted = [], []
    for inputs, labels in dataset:
        true_ids.append(labels.numpy())
        predicted.append(np.argmax(model(inputs, training=False), axis=-1))
    return np.concatenate(true_ids), np.concatenate(predicted)


def frame_averaging_baseline(
    config: ActivityConfig, datasets: Datasets, workdir: Path
) -> keras.Model | None:
    """The baseline trained on `datasets.train` (and kept), or the kept one, or None."""
    path = workdir / BASELINE_FILE
    if datasets.train is None:
        return keras.saving.load_model(path) if path.is_file() else None
    if config.evaluation.baseline_epochs < 1:
        return None
    keras.utils.set_random_seed(config.training.seed)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(training.dtype_policy(config.training.mixed_precision))
    try:
        baseline = build_baseline(config, datasets.assets)
    finally:
        keras.config.set_dtype_policy(previous)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy",
        mode="max",
        patience=config.training.early_stopping_patience,
        restore_best_weights=True,
    )
    training.fit(baseline, datasets, config.evaluation.baseline_epochs, [early_stopping], verbose=2)
    baseline.save(path)
    return baseline


def evaluate(
    model: keras.Model, config: ActivityConfig, datasets: Datasets, outputs: EvaluationOutputs
) -> dict[str, Any]:
    label_names = datasets.assets.label_names
    true_ids, model_ids = predicted_ids(model, datasets.test)
    metrics = classification_metrics(true_ids, model_ids, label_names)
    plots.confusion_matrix(
        np.asarray(metrics["confusion_matrix"]), label_names, outputs.path("confusion-matrix.png")
    )
    baseline = frame_averaging_baseline(config, datasets, outputs.workdir)
    if baseline is None:
        metrics["headline"] = headline("accuracy", metrics["accuracy"], {}, True)
        return metrics
    _, baseline_ids = predicted_ids(baseline, datasets.test)
    baseline_metrics = classification_metrics(true_ids, baseline_ids, label_names)
    plots.confusion_matrix(
        np.asarray(baseline_metrics["confusion_matrix"]),
        label_names,
        outputs.path("confusion-matrix-frame-averaging.png"),
    )
    metrics["frame_averaging_baseline"] = baseline_metrics
    metrics["per_class_side_by_side"] = {
        name: {
            "recall": metrics["per_class"][name]["recall"],
            "frame_averaging_recall": baseline_metrics["per_class"][name]["recall"],
            "f1": metrics["per_class"][name]["f1"],
            "frame_averaging_f1": baseline_metrics["per_class"][name]["f1"],
        }
        for name in label_names
    }
    metrics["headline"] = headline(
        "accuracy",
        metrics["accuracy"],
        {"frame_averaging_baseline": baseline_metrics["accuracy"]},
        higher_is_better=True,
    )
    return metrics


def validation_callbacks(
    config: ActivityConfig, datasets: Datasets
) -> list[keras.callbacks.Callback]:
    """The backbone's unfreezing for `model.backbone_training="frozen_then_fine_tune"`."""
    if (
        uses_backbone(config.model, datasets.assets.kind)
        and config.model.backbone_training == "frozen_then_fine_tune"
    ):
        return [UnfreezeBackbone(config.model.frozen_epochs)]
    return []
