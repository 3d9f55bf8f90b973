"""Evaluation metrics shared by the apps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sklearn.metrics

# Classification


def classification_metrics(
    true_ids: np.ndarray, predicted_ids: np.ndarray, label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix.

    Every class of `label_names` counts, also one absent from the truth or never predicted
    (its undefined precision, recall or F1 is 0), so macro F1 averages over all of them.
    Rows of the confusion matrix are true classes, columns predicted ones.
    """
    labels = list(range(len(label_names)))
    precision, recall, f1, _ = sklearn.metrics.precision_recall_fscore_support(
        true_ids, predicted_ids, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(sklearn.metrics.accuracy_score(true_ids, predicted_ids)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f)}
            for name, p, r, f in zip(label_names, precision, recall, f1, strict=True)
        },
        "confusion_matrix": sklearn.metrics.confusion_matrix(
            true_ids, predicted_ids, labels=labels
        ).tolist(),
    }
