"""A linear bag of unigrams and hashed bigrams: the fastText-style wide path beside an encoder."""

import keras


@keras.saving.register_keras_serializable(package="rnn_suite")
class NgramBag(keras.layers.Layer):
    """Averages learned vectors of a sequence's unigrams and hashed bigrams over valid steps.

    With `output_dim` equal to the number of classes this is a linear classifier on bag-of-
    n-gram counts (logistic regression on uni+bigrams, as in fastText), which a recurrent
    model can add to its own logits (a wide-and-deep classifier). Bigram `(a, b)` of token ids
    goes to bucket `(a * vocabulary_size + b) mod bigram_buckets`. The vectors start at zero,
    so the layer first outputs zeros and learns only what the data supports. `scale`
    multiplies the output: under Adam-style optimizers, whose steps have a fixed size per
    parameter, it acts as a learning-rate multiplier for this path, letting a linear model on
    rare n-grams learn in the few epochs a recurrent model needs.

    Masking: steps where the mask is False (or token id 0, when no mask is given) are left out,
    and a bigram counts only when both its steps are valid. A row with no valid step gives
    zeros.

    Args:
        vocabulary_size: number of token ids (id 0 is padding).
        output_dim: width of each vector and of the output.
        bigram_buckets: number of hash buckets for bigrams; 0 keeps unigrams only.
        scale: factor applied to the output (a learning-rate multiplier, see above).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: int tensor `(batch, time)` of token ids.
        mask: optional boolean tensor `(batch, time)`.

    Returns:
        float tensor `(batch, output_dim)`: the mean vector of the valid n-grams.

    Example:

    ```python
    ids = keras.Input(shape=(None,), dtype="int64")
    wide_logits = NgramBag(20000, 2, bigram_buckets=2**18)(ids)
    ```

    References:
        - Joulin et al., "Bag of Tricks for Efficient Text Classification", 2016.
        - Cheng et al., "Wide & Deep Learning for Recommender Systems", 2016.
    """

    def __init__(self, vocabulary_size, output_dim, bigram_buckets=0, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size < 2:
            raise ValueError(
                f"`vocabulary_size` must be at least 2. Received: vocabulary_size={vocabulary_size}"
            )
        if bigram_buckets < 0:
            raise ValueError(
                f"`bigram_buckets` must be >= 0. Received: bigram_buckets={bigram_buckets}"
            )
        self.vocabulary_size = vocabulary_size
        self.output_dim = output_dim
        self.bigram_buckets = bigram_buckets
        self.scale = scale
        self.supports_masking = True
        self.unigram_vectors = keras.layers.Embedding(
            vocabulary_size, output_dim, embeddings_initializer="zeros", name="unigram_vectors"
        )
        self.bigram_vectors = (
            keras.layers.Embedding(
                bigram_buckets, output_dim, embeddings_initializer="zeros", name="bigram_vectors"
            )
            if bigram_buckets
            else None
        )

    def build(self, input_shape):
        self.unigram_vectors.build(input_shape)
        if self.bigram_vectors is not None:
            self.bigram_vectors.build(input_shape)

    def call(self, inputs, mask=None):
        ids = keras.ops.cast(inputs, "int64")
        if mask is None:
            mask = keras.ops.not_equal(ids, 0)
        valid = keras.ops.cast(mask, self.compute_dtype)[..., None]  # (batch, time, 1)
        total = keras.ops.sum(self.unigram_vectors(ids) * valid, axis=1)
        count = keras.ops.sum(valid, axis=1)
        if self.bigram_vectors is not None:
            bigram_ids = keras.ops.mod(
                ids[:, :-1] * self.vocabulary_size + ids[:, 1:], self.bigram_buckets
            )
            bigram_valid = valid[:, :-1] * valid[:, 1:]  # (batch, time - 1, 1)
            total = total + keras.ops.sum(self.bigram_vectors(bigram_ids) * bigram_valid, axis=1)
            count = count + keras.ops.sum(bigram_valid, axis=1)
        return self.scale * total / keras.ops.maximum(count, 1.0)

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
                "scale": self.scale,
            }
        )
        return config
