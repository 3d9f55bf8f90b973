import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.core.generation import ValidationBleu, generate_all
from apps.core.metrics import corpus_bleu

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
