"""The sentiment classifier: token ids -> masked embedding -> encoder -> pooling -> classes.

Raw text enters through the export (serving.py), which runs the same vectorization as the
training pipeline before this model.
"""

from __future__ import annotations

import keras

from apps.core import training
from apps.sentiment.config import SentimentConfig
from layers.ngram_bag import NgramBag
from layers.pooling import SequencePooling
from layers.recurrent_encoder import RecurrentEncoder


def build_model(config: SentimentConfig, vocabulary_size: int, num_classes: int) -> keras.Model:
    """The compiled classifier; outputs class probabilities of shape (batch, num_classes)."""
    model = config.model
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
    logits = keras.layers.Dense(num_classes, name="classifier")(x)
    if model.ngram_bag:
        wide_logits = NgramBag(
            vocabulary_size,
            num_classes,
            bigram_buckets=model.bigram_buckets,
            scale=model.ngram_bag_scale,
            name="ngram_bag",
        )(token_ids)
        logits = keras.layers.Add(name="wide_and_deep")([logits, wide_logits])
    probabilities = keras.layers.Softmax(name="probabilities")(logits)
    classifier = keras.Model(token_ids, probabilities, name="sentiment_classifier")
    classifier.compile(
        optimizer=training.optimizer(config.training),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=config.training.steps_per_execution,
    )
    return classifier
