"""Evaluation metrics shared by the apps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sklearn.metrics
import tensorflow as tf

# The headline


def headline(
    metric: str, model: float, baselines: dict[str, float], higher_is_better: bool
) -> dict[str, Any]:
    """The one comparison a summary shows: the model's `metric` beside the strongest baseline.

    Returns `{"metric", "model", "baseline", "baseline_value", "higher_is_better", "beats"}`;
    `baseline` is None when there is none (e.g. `evaluate --data` without a training split).
    """
    best = None
    if baselines:
        choose = max if higher_is_better else min
        best = choose(baselines, key=baselines.__getitem__)
    value = baselines[best] if best is not None else None
    beats = None
    if value is not None:
        beats = model > value if higher_is_better else model < value
    return {
        "metric": metric,
        "model": float(model),
        "baseline": best,
        "baseline_value": None if value is None else float(value),
        "higher_is_better": higher_is_better,
        "beats": beats,
    }


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


# BLEU


def corpus_bleu(references: list[list[str]], hypotheses: list[str], max_order: int = 4) -> float:
    """Corpus BLEU (0-100) of `hypotheses` against several references each.

    `references[i]` lists the reference texts of `hypotheses[i]` (one or more, e.g. the 3-5
    captions of an image). Computed by `keras_hub.metrics.Bleu`: sacreBLEU's 13a tokenization,
    n-grams up to `max_order` (4: BLEU-4, 1: BLEU-1), no smoothing. An n-gram's count is
    clipped by its largest count in any one reference, and the brevity penalty compares with
    each hypothesis's shortest reference (the tensorflow/nmt convention; sacreBLEU takes the
    closest), so more references never lower the score.

    Example:

    ```python
    corpus_bleu([["the cat sat on the mat", "a cat sat on the mat"]], ["a cat sat on the mat"])
    # 100.0
    ```

    References:
        - Papineni et al., "BLEU: a Method for Automatic Evaluation of Machine Translation",
          2002.
        - Post, "A Call for Clarity in Reporting BLEU Scores", 2018 (sacreBLEU).
    """
    if len(references) != len(hypotheses):
        raise ValueError(
            f"`references` and `hypotheses` must have the same length. Received: "
            f"{len(references)} reference lists and {len(hypotheses)} hypotheses"
        )
    if any(isinstance(texts, str) or not texts for texts in references):
        raise ValueError("`references` must hold a non-empty list of texts per hypothesis")
    import keras_hub  # only BLEU needs it, and it takes seconds to import

    bleu = keras_hub.metrics.Bleu(max_order=max_order)
    bleu.update_state(tf.ragged.constant([list(texts) for texts in references]), hypotheses)
    return 100.0 * float(bleu.result())


def translation_metrics(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """sacreBLEU's corpus scores of `hypotheses` against one reference each.

    Returns `bleu` (BLEU-4, 13a tokenization, lower-cased), `bleu_cased` (the same,
    case-sensitive), `chrf` (chrF, character 6-grams, beta 2) and `length_ratio` (hypothesis
    tokens over reference tokens, 13a), all as sacreBLEU 2.6 computes them.

    Example:

    ```python
    translation_metrics(["The cat sat on the mat."], ["the cat sat on the mat."])
    # {"bleu": 100.0, "bleu_cased": 80.91..., "chrf": 93.46..., "length_ratio": 1.0}
    ```

    References:
        - Post, "A Call for Clarity in Reporting BLEU Scores", 2018 (sacreBLEU).
        - Popović, "chrF: character n-gram F-score for automatic MT evaluation", 2015.
    """
    if len(references) != len(hypotheses):
        raise ValueError(
            f"`references` and `hypotheses` must have the same length. Received: "
            f"{len(references)} references and {len(hypotheses)} hypotheses"
        )
    import sacrebleu

    lowercased = sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True)
    return {
        "bleu": float(lowercased.score),
        "bleu_cased": float(sacrebleu.corpus_bleu(hypotheses, [references]).score),
        "chrf": float(sacrebleu.corpus_chrf(hypotheses, [references]).score),
        "length_ratio": float(lowercased.ratio),
    }
