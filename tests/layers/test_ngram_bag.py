import keras
import numpy as np
import pytest

from layers.ngram_bag import NgramBag


def layer_with_known_vectors(bigram_buckets=7):
    layer = NgramBag(5, 2, bigram_buckets=bigram_buckets)
    layer.build((None, None))
    layer.unigram_vectors.embeddings.assign(np.arange(10, dtype="float32").reshape(5, 2))
    if bigram_buckets:
        bigram = 100 + np.arange(2 * bigram_buckets, dtype="float32").reshape(bigram_buckets, 2)
        layer.bigram_vectors.embeddings.assign(bigram)
    return layer


def test_mean_of_unigram_and_hashed_bigram_vectors_by_hand():
    layer = layer_with_known_vectors()
    ids = np.array([[1, 3, 4], [2, 0, 0]])
    unigram = np.arange(10, dtype="float32").reshape(5, 2)
    bigram = 100 + np.arange(14, dtype="float32").reshape(7, 2)
    # Row 0: unigrams 1, 3, 4; bigrams (1,3) -> 8 mod 7 = 1, (3,4) -> 19 mod 7 = 5.
    row_0 = (unigram[1] + unigram[3] + unigram[4] + bigram[1] + bigram[5]) / 5
    # Row 1: one valid step, no valid bigram.
    row_1 = unigram[2]
    np.testing.assert_allclose(layer(ids), [row_0, row_1], rtol=1e-6)


def test_explicit_mask_overrides_padding_and_empty_rows_give_zeros():
    layer = layer_with_known_vectors(bigram_buckets=0)
    ids = np.array([[1, 3, 4], [1, 3, 4]])
    mask = np.array([[True, True, False], [False, False, False]])
    unigram = np.arange(10, dtype="float32").reshape(5, 2)
    np.testing.assert_allclose(
        layer(ids, mask=mask), [(unigram[1] + unigram[3]) / 2, [0.0, 0.0]], rtol=1e-6
    )


def test_starts_at_zero_round_trips_and_learns():
    ids = keras.Input(shape=(None,), dtype="int64")
    logits = NgramBag(6, 2, bigram_buckets=16)(ids)
    model = keras.Model(ids, keras.layers.Softmax()(logits))
    data = np.array([[1, 2, 0], [3, 4, 5], [1, 2, 2], [4, 5, 0]] * 8)
    labels = np.array([0, 1, 0, 1] * 8)
    np.testing.assert_allclose(model.predict(data, verbose=0), 0.5)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    model.fit(data, labels, epochs=20, verbose=0)
    assert (model.predict(data, verbose=0).argmax(axis=1) == labels).all()
    restored = keras.Model.from_config(model.get_config())
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(restored.predict(data, verbose=0), model.predict(data, verbose=0))


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="vocabulary_size=1"):
        NgramBag(1, 2)
    with pytest.raises(ValueError, match="bigram_buckets=-1"):
        NgramBag(5, 2, bigram_buckets=-1)
