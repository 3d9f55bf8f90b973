"""PNG plots shared by the apps (matplotlib, headless)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn.metrics  # noqa: E402


def training_curves(history_file: Path, output: Path) -> None:
    """Loss and metric curves per epoch from a CSVLogger file, train and validation together."""
    with history_file.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    metrics = [key for key in rows[0] if key not in ("epoch",) and not key.startswith("val_")]
    metrics = [key for key in metrics if key != "learning_rate"]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    epochs = [int(row["epoch"]) for row in rows]
    for axis, metric in zip(axes[0], metrics, strict=True):
        axis.plot(epochs, [float(row[metric]) for row in rows], marker="o", label="train")
        if f"val_{metric}" in rows[0]:
            values = [float(row[f"val_{metric}"]) for row in rows]
            axis.plot(epochs, values, marker="o", label="validation")
        axis.set_title(metric)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


def confusion_matrix(matrix: np.ndarray, label_names: Sequence[str], output: Path) -> None:
    """A confusion-matrix heatmap with counts in the cells (rows: truth, columns: prediction)."""
    size = max(4.0, 0.6 * len(label_names) + 2.5)
    figure, axis = plt.subplots(figsize=(size, size))
    display = sklearn.metrics.ConfusionMatrixDisplay(np.asarray(matrix), display_labels=label_names)
    display.plot(ax=axis, cmap="Blues", xticks_rotation=45, values_format="d")
    axis.set_title("confusion matrix")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
