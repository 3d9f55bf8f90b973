"""The sentiment classifier: token ids -> masked embedding -> encoder -> pooling -> classes.

Raw text enters through the export (serving.py), which runs the same vectorization as the
training pipeline before this model.
"""

from __future__ import annotations

import keras

from apps.core import training
from apps.core.errors import UserError
from apps.sentiment.config import SentimentConfig
from apps.sentiment.data import TextClassificationAssets
from layers.ngram_bag import NgramBag
from layers.pooling import SequencePooling
from layers.recurrent_encoder import RecurrentEncoder


def build_model(config: SentimentConfig, assets: TextClassificationAssets) -> keras.Model:
    """The compiled classifier; outputs class probabilities of shape (batch, num_classes).

    The classifier head computes in float32 under a mixed-precision policy too.

    With `model.ngram_bag` the fitted TF-IDF logistic regression of `assets` is a frozen wide
    part and the recurrent classifier starts at zero, so training starts from its answers.
    """
    model = config.model
    vocabulary_size, num_classes = len(assets.vocabulary), len(assets.label_names)
    token_ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = keras.layers.Embedding(
        vocabulary_size, model.embedding_dim, mask_zero=True, name="embedding"
    )(token_ids)
    x = keras.layers.SpatialDropout1D(model.embedding_dropout, name="embedding_dropout")(x)
    x = RecurrentEncoder(
        model.units,
        num_layers=model.num_layers,
        cell=model.cell,
        bidirectional=model.bidirectional,
        merge_mode=model.merge_mode,
        residual=model.residual,
        dropout=model.encoder_dropout,
        name="encoder",
    )(x)
    x = SequencePooling(model.pooling, name="pooling")(x)
    x = keras.layers.Dropout(model.dropout, name="dropout")(x)
    if model.hidden_units:
        x = keras.layers.Dense(model.hidden_units, activation="relu", name="hidden")(x)
        x = keras.layers.Dropout(model.dropout, name="hidden_dropout")(x)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer="zeros" if model.ngram_bag else "glorot_uniform",
        dtype="float32",
        name="classifier",
    )(x)
    if model.ngram_bag:
        if assets.ngram_bag_weights is None:
            raise UserError(
                "model.ngram_bag is on but the work dir's assets hold no fitted n-gram model; "
                "train again in a new --workdir"
            )
        bag = NgramBag(
            vocabulary_size,
            num_classes,
            bigram_buckets=model.bigram_buckets,
            trainable=False,
            dtype="float32",
            name="ngram_bag",
        )
        wide_logits = bag(token_ids)
        bag.set_weights(assets.ngram_bag_weights)
        logits = keras.layers.Add(dtype="float32", name="wide_and_deep")([logits, wide_logits])
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
    classifier = keras.Model(token_ids, probabilities, name="sentiment_classifier")
    classifier.compile(
        optimizer=training.optimizer(config.training),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=config.training.steps_per_execution,
    )
    return classifier
