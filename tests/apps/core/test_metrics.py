"""Shared evaluation metrics against known answers and reference implementations."""

from __future__ import annotations

import math

import keras
import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from apps.core import metrics, plots
from apps.core.generation import ValidationBleu, generate_all
from apps.core.metrics import corpus_bleu, headline

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


# BLEU


def test_a_perfect_translation_scores_100_and_no_overlap_0():
    assert corpus_bleu([["The cat sat on the mat."]], ["The cat sat on the mat."]) == 100.0
    assert corpus_bleu([["x y z w"]], ["a b c d"]) == 0.0


def test_hand_computed_corpus_bleu():
    # Precisions 5/6, 4/5, 3/4, 2/3 and equal lengths: BLEU = (1/3) ** (1/4).
    single = corpus_bleu([["a b c d e g"]], ["a b c d e f"])
    assert single == pytest.approx(100 * (1 / 3) ** 0.25, abs=1e-4)
    # Corpus counts add up: 9/10, 7/8, 5/6, 3/4; 10 tokens against the shortest references.
    corpus = corpus_bleu([["a b c d e g"], ["x y z w", "p q r s t"]], ["a b c d e f", "x y z w"])
    assert corpus == pytest.approx(100 * (0.9 * 0.875 * (5 / 6) * 0.75) ** 0.25, abs=1e-4)
    # All n-grams right but 6 words for 8: brevity penalty exp(1 - 8 / 6).
    short = corpus_bleu([["a b c d e f g h"]], ["a b c d e f"])
    assert short == pytest.approx(100 * math.exp(1 - 8 / 6), abs=1e-4)


def test_13a_tokenization_splits_punctuation():
    assert corpus_bleu([["Hello, world!"]], ["Hello , world !"]) == 100.0


def test_more_references_never_score_lower():
    hypotheses = ["the cat is on the mat", "there is a dog in the garden"]
    first = [["the cat sat on the mat"], ["a dog is in the garden"]]
    second = [["a cat is on the mat"], ["there is a dog in a garden"]]
    both = [a + b for a, b in zip(first, second, strict=True)]
    combined = corpus_bleu(both, hypotheses)
    assert combined >= max(corpus_bleu(first, hypotheses), corpus_bleu(second, hypotheses))
    assert corpus_bleu([["a b c d e g", "a b c d e f"]], ["a b c d e f"]) == 100.0


def test_bad_references_are_named():
    with pytest.raises(ValueError, match="references"):
        corpus_bleu([["a"]], ["a", "b"])
    with pytest.raises(ValueError, match="references"):
        corpus_bleu(["a b"], ["a b"])


def test_validation_bleu_writes_val_bleu_of_the_model_function_into_the_logs():
    # The "generator" upper-cases its input: only the references in capitals match it.
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    built_for = []

    def make_function(trained_model):
        built_for.append(trained_model)
        return tf.function(lambda texts: tf.strings.upper(texts))

    inputs = ["a b c d", "e f g h", "i j k l"]
    references = [["A B C D"], ["x", "E F G H"], ["i j k l"]]
    callback = ValidationBleu(make_function, inputs, references, batch_size=2)
    history = model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=2, callbacks=[callback],
                        verbose=0)  # fmt: skip
    assert built_for == [model]
    expected = corpus_bleu(references, [text.upper() for text in inputs])
    assert 0.0 < expected < 100.0
    assert history.history["val_bleu"] == [pytest.approx(expected)] * 2
    assert generate_all(callback.function, inputs, batch_size=2) == [
        "A B C D",
        "E F G H",
        "I J K L",
    ]
    with pytest.raises(ValueError, match="references"):
        ValidationBleu(make_function, inputs, references[:2])


def test_headline_picks_the_strongest_baseline_in_the_metric_direction():
    assert headline("mae", 17.5, {"last_value": 23.9, "ridge": 18.25}, False) == {
        "metric": "mae",
        "model": 17.5,
        "baseline": "ridge",
        "baseline_value": 18.25,
        "higher_is_better": False,
        "beats": True,
    }
    lost = headline("accuracy", 0.78, {"tfidf": 0.79, "majority": 0.5}, True)
    assert (lost["baseline"], lost["beats"]) == ("tfidf", False)
    alone = headline("accuracy", 0.78, {}, True)
    assert alone["baseline"] is None and alone["beats"] is None
