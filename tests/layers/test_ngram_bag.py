import keras
import numpy as np
import pytest
from layer_testing import run_layer_test
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from layers.ngram_bag import NgramBag, fit_logistic_regression


def layer_with_known_weights(bigram_buckets=7):
    layer = NgramBag(5, 2, bigram_buckets=bigram_buckets)
    layer.build((None, None))
    count = 5 + bigram_buckets
    layer.vectors.assign(np.arange(2 * count, dtype="float32").reshape(count, 2))
    layer.bias.assign([0.5, -0.5])
    layer.idf.assign(1.0 + np.arange(count, dtype="float32") / 10)
    return layer


def test_sublinear_tfidf_by_hand():
    layer = layer_with_known_weights()
    ids = np.array([[1, 3, 1, 0], [2, 0, 0, 0]])
    vectors = np.arange(24, dtype="float32").reshape(12, 2)
    idf = 1.0 + np.arange(12) / 10
    # Row 0: unigram 1 twice, unigram 3; bigrams (1, 3) -> 8 mod 7 = 1 (key 6) and
    # (3, 1) -> 16 mod 7 = 2 (key 7); the step after is padding.
    weights = {1: (1 + np.log(2)) * idf[1], 3: idf[3], 6: idf[6], 7: idf[7]}
    norm = np.sqrt(sum(w**2 for w in weights.values()))
    row_0 = sum(w / norm * vectors[key] for key, w in weights.items()) + [0.5, -0.5]
    # Row 1: one unigram of weight 1 after normalization, no bigram.
    row_1 = vectors[2] + [0.5, -0.5]
    np.testing.assert_allclose(layer(ids), [row_0, row_1], rtol=1e-5)


def test_explicit_mask_overrides_padding_and_empty_rows_give_the_bias():
    layer = layer_with_known_weights(bigram_buckets=0)
    ids = np.array([[1, 3, 4], [1, 3, 4]])
    mask = np.array([[True, True, False], [False, False, False]])
    vectors = np.arange(10, dtype="float32").reshape(5, 2)
    idf = 1.0 + np.arange(5) / 10
    norm = np.hypot(idf[1], idf[3])
    row_0 = (idf[1] * vectors[1] + idf[3] * vectors[3]) / norm + [0.5, -0.5]
    np.testing.assert_allclose(layer(ids, mask=mask), [row_0, [0.5, -0.5]], rtol=1e-5)


def synthetic_reviews(count, seed, classes=2):
    """Token ids 2..19 (no unknown id): cue words 2+2c and 3+2c mean class c, 15% misleading."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    ids = rng.integers(8, 20, size=(count, 6))
    misleading = rng.random(count) < 0.15
    cue_class = np.where(misleading, (labels + 1) % classes, labels)
    ids[:, 0] = 2 + 2 * cue_class + rng.integers(0, 2, count)
    ids[:, 3:][rng.random((count, 3)) < 0.5] = 0
    ids[:, 3:] = np.sort(ids[:, 3:], axis=1)[:, ::-1]  # ragged rows: padding at the end
    return ids, labels


@pytest.mark.parametrize("classes", [2, 3])
def test_fit_matches_scikit_learn_tfidf_logistic_regression(classes):
    train = synthetic_reviews(300, 0, classes)
    validation = synthetic_reviews(100, 1, classes)
    # 1,000 buckets > 20 * 20 bigram ids: no collisions, so the features are sklearn's.
    bag = NgramBag(20, classes, bigram_buckets=1000)
    bag.build((None, None))
    fit = fit_logistic_regression(bag, train, validation, c_grid=(0.1, 1.0, 10.0))

    def as_text(ids):
        return [" ".join(f"w{token}" for token in row if token) for row in ids]

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")
    train_features = vectorizer.fit_transform(as_text(train[0]))
    validation_features = vectorizer.transform(as_text(validation[0]))
    scores = {}
    for c in (0.1, 1.0, 10.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(train_features, train[1])
        scores[c] = (model.score(validation_features, validation[1]), model)
    best_c = max(scores, key=lambda c: scores[c][0])
    assert fit == {"C": best_c, "validation_accuracy": pytest.approx(scores[best_c][0])}
    assert fit["validation_accuracy"] > 0.7
    expected = scores[best_c][1].predict_proba(validation_features)
    probabilities = keras.ops.softmax(bag(validation[0]))
    np.testing.assert_allclose(probabilities, expected, atol=2e-3)


def test_fit_refuses_a_class_missing_from_training():
    bag = NgramBag(20, 3, bigram_buckets=1000)
    bag.build((None, None))
    binary = synthetic_reviews(100, 0)
    with pytest.raises(ValueError, match=r"Received classes: \[0, 1\]"):
        fit_logistic_regression(bag, binary, binary, c_grid=(1.0,))


def test_starts_at_zero_and_learns():
    ids = keras.Input(shape=(None,), dtype="int64")
    logits = NgramBag(6, 2, bigram_buckets=16)(ids)
    model = keras.Model(ids, keras.layers.Softmax()(logits))
    data = np.array([[1, 2, 0], [3, 4, 5], [1, 2, 2], [4, 5, 0]] * 8)
    labels = np.array([0, 1, 0, 1] * 8)
    np.testing.assert_allclose(model.predict(data, verbose=0), 0.5)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    model.fit(data, labels, epochs=20, verbose=0)
    assert (model.predict(data, verbose=0).argmax(axis=1) == labels).all()


def test_layer(tmp_path):
    ids = np.array([[1, 3, 1, 0], [2, 4, 4, 1], [0, 0, 0, 0]])
    mask = np.array([[True, True, True, False], [True, True, False, False], [False] * 4])
    run_layer_test(
        NgramBag,
        {"vocabulary_size": 5, "output_dim": 2, "bigram_buckets": 7},
        (ids,),
        tmp_path,
        mask=mask,
        masked_fill=2,
        expected_output_shape=(3, 2),
    )


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="vocabulary_size=1"):
        NgramBag(1, 2)
    with pytest.raises(ValueError, match="bigram_buckets=-1"):
        NgramBag(5, 2, bigram_buckets=-1)
    with pytest.raises(ValueError, match="output_dim=0"):
        NgramBag(5, 0)
