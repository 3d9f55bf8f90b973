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


def training_curves(history_file: Path, output: Path) -> None:
    """Loss and metric curves per epoch from a CSVLogger file, train and validation together."""
    with history_file.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    metrics = [key for key in rows[0] if key not in ("epoch",) and not key.startswith("val_")]
    metrics = [key for key in metrics if key != "learning_rate"]
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    epochs = [int(row["epoch"]) + 1 for row in rows]
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
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    ticks = np.arange(len(label_names))
    axis.set_xticks(ticks, label_names, rotation=45, ha="right")
    axis.set_yticks(ticks, label_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            color = "white" if matrix[row, column] > threshold else "black"
            axis.text(column, row, str(matrix[row, column]), ha="center", va="center", color=color)
    axis.set_title("confusion matrix")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
