"""A linear model on TF-IDF of unigrams and hashed bigrams: the wide path beside an encoder."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from layers.arguments import check_positive_integers


@keras.saving.register_keras_serializable(package="rnn_suite")
class NgramBag(keras.layers.Layer):
    """Linear outputs over the sublinear TF-IDF vector of a sequence's unigrams and bigrams.

    The n-grams of a row are its token ids and its bigrams `(a, b)`, hashed to bucket
    `(a * vocabulary_size + b) mod bigram_buckets`. Each distinct n-gram `g` gets the weight
    `(1 + log count_g) * idf_g`; the weights are divided by their L2 norm and the output is
    `sum_g weight_g * vectors[g] + bias`. These are the features of scikit-learn's
    `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)` on the suite's own tokens, so
    `fit_logistic_regression` can fit the layer as a TF-IDF logistic regression. `idf` is a
    non-trainable weight (ones until fitted); vectors and bias start at zero.

    Beside a recurrent encoder this is the wide part of a wide-and-deep classifier: fit it,
    freeze it, and let the encoder's logits (starting at zero) learn what it misses.

    Masking: steps where the mask is False (or token id 0, when no mask is given) are left out,
    and a bigram counts only when both its steps are valid. A row with no valid step outputs
    the bias.

    Args:
        vocabulary_size: number of token ids (id 0 is padding).
        output_dim: number of outputs (classes).
        bigram_buckets: number of hash buckets for bigrams; 0 keeps unigrams only.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: int tensor `(batch, time)` of token ids.
        mask: optional boolean tensor `(batch, time)`.

    Returns:
        float tensor `(batch, output_dim)`.

    Example:

    ```python
    ids = keras.Input(shape=(None,), dtype="int64")
    wide_logits = NgramBag(20000, 2, bigram_buckets=2**18)(ids)
    ```

    References:
        - Wang & Manning, "Baselines and Bigrams: Simple, Good Sentiment and Topic
          Classification", ACL 2012.
        - Cheng et al., "Wide & Deep Learning for Recommender Systems", 2016.
    """

    def __init__(self, vocabulary_size, output_dim, bigram_buckets=0, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size < 2:
            raise ValueError(
                f"`vocabulary_size` must be at least 2. Received: vocabulary_size={vocabulary_size}"
            )
        if bigram_buckets < 0:
            raise ValueError(
                f"`bigram_buckets` must be >= 0. Received: bigram_buckets={bigram_buckets}"
            )
        check_positive_integers(output_dim=output_dim)
        self.vocabulary_size = vocabulary_size
        self.output_dim = output_dim
        self.bigram_buckets = bigram_buckets
        self.supports_masking = True

    @property
    def ngram_count(self) -> int:
        return self.vocabulary_size + self.bigram_buckets

    def build(self, input_shape):
        self.vectors = self.add_weight(
            shape=(self.ngram_count, self.output_dim), initializer="zeros", name="vectors"
        )
        self.bias = self.add_weight(shape=(self.output_dim,), initializer="zeros", name="bias")
        self.idf = self.add_weight(
            shape=(self.ngram_count,), initializer="ones", trainable=False, name="idf"
        )

    def ngram_weights(self, inputs, mask=None):
        """`(keys, weights)`, each `(batch, n-grams)`: n-gram ids and their TF-IDF weights.

        Unigram `i` has key `i`, bigram bucket `j` key `vocabulary_size + j`; a repeated n-gram
        carries its weight at its first position and zero elsewhere, as do invalid positions.
        """
        ids = keras.ops.cast(inputs, "int64")
        valid = keras.ops.not_equal(ids, 0) if mask is None else keras.ops.cast(mask, "bool")
        keys, key_valid = ids, valid
        if self.bigram_buckets:
            bigrams = self.vocabulary_size + keras.ops.mod(
                ids[:, :-1] * self.vocabulary_size + ids[:, 1:], self.bigram_buckets
            )
            keys = keras.ops.concatenate([ids, bigrams], axis=1)
            bigram_valid = keras.ops.logical_and(valid[:, :-1], valid[:, 1:])
            key_valid = keras.ops.concatenate([valid, bigram_valid], axis=1)
        # same[b, i, j]: position j holds a valid copy of position i's n-gram.
        same = keras.ops.logical_and(
            keras.ops.equal(keys[:, :, None], keys[:, None, :]), key_valid[:, None, :]
        )
        same = keras.ops.cast(same, self.compute_dtype)
        length = keras.ops.shape(keys)[1]
        earlier = keras.ops.tril(keras.ops.ones((length, length), self.compute_dtype), -1)
        first = keras.ops.logical_and(key_valid, keras.ops.sum(same * earlier, axis=2) == 0)
        count = keras.ops.maximum(keras.ops.sum(same, axis=2), 1.0)
        weights = keras.ops.where(
            first, (1.0 + keras.ops.log(count)) * keras.ops.take(self.idf, keys), 0.0
        )
        norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(weights), axis=1, keepdims=True))
        return keys, weights / keras.ops.where(norm > 0, norm, 1.0)  # empty rows stay zero

    def call(self, inputs, mask=None):
        keys, weights = self.ngram_weights(inputs, mask)
        vectors = keras.ops.take(self.vectors, keys, axis=0)  # (batch, n-grams, output_dim)
        return keras.ops.einsum("bn,bno->bo", weights, vectors) + self.bias

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "output_dim": self.output_dim,
                "bigram_buckets": self.bigram_buckets,
            }
        )
        return config


def tfidf_matrix(bag: NgramBag, ids: np.ndarray, batch_size: int = 64):
    """The bag's TF-IDF features of token-id rows as a scipy CSR matrix `(rows, n-grams)`."""
    from scipy import sparse

    rows, columns, values = [], [], []
    for start in range(0, len(ids), batch_size):
        keys, weights = (
            keras.ops.convert_to_numpy(tensor)
            for tensor in bag.ngram_weights(ids[start : start + batch_size])
        )
        row, position = np.nonzero(weights)
        rows.append(row + start)
        columns.append(keys[row, position])
        values.append(weights[row, position])
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=(len(ids), bag.ngram_count),
    )


def fit_logistic_regression(
    bag: NgramBag,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    c_grid: Sequence[float],
) -> dict[str, float]:
    """Fits `bag` as an L2 logistic regression (scikit-learn) on its TF-IDF features.

    `train` and `validation` are `(token ids (rows, time), label ids (rows,))`. The idf comes
    from the training rows (smoothed, as scikit-learn's; 0 for n-grams they lack); the
    inverse regularization strength C is the value of `c_grid` with the best validation
    accuracy (the first on ties). The layer must be built with `output_dim` equal to the
    number of classes. Returns the chosen C and its validation accuracy.
    """
    from sklearn.linear_model import LogisticRegression

    train_ids, train_labels = train
    validation_ids, validation_labels = validation
    bag.idf.assign(np.ones(bag.ngram_count, dtype="float32"))
    document_frequency = np.bincount(
        tfidf_matrix(bag, train_ids).indices, minlength=bag.ngram_count
    )
    # N-grams never seen in training get idf 0: they drop out, as from a fitted vocabulary.
    idf = np.where(
        document_frequency > 0, np.log((1 + len(train_ids)) / (1 + document_frequency)) + 1, 0.0
    )
    bag.idf.assign(idf.astype("float32"))
    train_features = tfidf_matrix(bag, train_ids)
    validation_features = tfidf_matrix(bag, validation_ids)
    best = None
    for c in c_grid:
        classifier = LogisticRegression(C=c, max_iter=2000)
        classifier.fit(train_features, train_labels)
        accuracy = classifier.score(validation_features, validation_labels)
        if best is None or accuracy > best[0]:
            best = (accuracy, c, classifier)
    accuracy, c, classifier = best
    if bag.output_dim != len(classifier.classes_) or classifier.classes_.tolist() != list(
        range(bag.output_dim)
    ):
        raise ValueError(
            f"labels must be the ids 0..{bag.output_dim - 1} of the bag's outputs, all present "
            f"in training. Received classes: {classifier.classes_.tolist()}"
        )
    coefficients, intercepts = classifier.coef_, classifier.intercept_
    if bag.output_dim == 2:
        # Binary scikit-learn models score class 1 only; softmax([-z/2, z/2]) = sigmoid(z).
        coefficients = np.concatenate([-coefficients, coefficients]) / 2
        intercepts = np.concatenate([-intercepts, intercepts]) / 2
    bag.vectors.assign(coefficients.T.astype("float32"))
    bag.bias.assign(intercepts.astype("float32"))
    return {"C": float(c), "validation_accuracy": float(accuracy)}
