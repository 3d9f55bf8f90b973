"""Shared evaluation metrics against known answers and reference implementations."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from apps.core import metrics, plots

# Classification


def hand_built_classification_metrics(true_ids, predicted_ids, label_names):
    """The sentiment app's counting implementation that `metrics.classification_metrics`
    replaces: the reference its answers must equal."""
    classes = len(label_names)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (true_ids, predicted_ids), 1)
    true_positives = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(classes), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(classes), where=actual > 0)
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


def test_classification_metrics_known_answer():
    result = metrics.classification_metrics(
        np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["neg", "pos"]
    )
    assert result["confusion_matrix"] == [[1, 1], [0, 2]]
    assert result["accuracy"] == 0.75
    assert result["per_class"]["neg"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3}
    )
    assert result["per_class"]["pos"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8}
    )
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_equal_the_hand_built_counts(seed):
    rng = np.random.default_rng(seed)
    names = ["a", "b", "c", "never-predicted", "never-true"]
    true_ids = rng.choice([0, 1, 2, 3], size=200)
    predicted_ids = np.where(rng.random(200) < 0.6, true_ids, rng.choice([0, 1, 2, 4], size=200))
    predicted_ids[predicted_ids == 3] = 0
    result = metrics.classification_metrics(true_ids, predicted_ids, names)
    expected = hand_built_classification_metrics(true_ids, predicted_ids, names)
    assert result["confusion_matrix"] == expected["confusion_matrix"]
    assert np.asarray(result["confusion_matrix"])[:, 3].sum() == 0  # never predicted
    assert np.asarray(result["confusion_matrix"])[4].sum() == 0  # never true
    assert list(result["per_class"]) == names
    for name in names:
        assert result["per_class"][name] == pytest.approx(expected["per_class"][name], abs=1e-12)
    assert result["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
    assert result["macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-12)
    assert result["per_class"]["never-predicted"]["precision"] == 0.0
    assert result["per_class"]["never-true"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_the_confusion_matrix_plot_is_written(tmp_path):
    output = tmp_path / "confusion-matrix.png"
    matrix = np.array([[5, 1, 0], [2, 7, 0], [0, 3, 0]])
    plots.confusion_matrix(matrix, ["neg", "neutral", "pos"], output)
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(output).shape
    assert height >= 300 and width >= 300
