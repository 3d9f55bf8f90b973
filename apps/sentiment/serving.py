"""The sentiment export: `text` (tf.string, [None]) -> `label` and `probabilities`."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from apps.core.app import Endpoints
from apps.sentiment.config import SentimentConfig
from apps.sentiment.data import TextClassificationAssets
from pipelines.text import clean_text, make_vectorizer, token_ids


def endpoints(
    model: keras.Model, config: SentimentConfig, assets: TextClassificationAssets
) -> Endpoints:
    vectorizer = make_vectorizer(assets.vocabulary)
    vectorizer.build()
    label_names = tf.constant(assets.label_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        cleaned = clean_text(text, config.model.max_characters)
        ids = token_ids(vectorizer, cleaned, config.model.max_length)
        probabilities = model(ids, training=False)
        return {
            "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1)),
            "probabilities": probabilities,
        }

    return Endpoints(functions={"serving_default": serve}, resources=[vectorizer])


def example_request() -> dict[str, np.ndarray]:
    texts = ["a gripping, beautifully acted film", "dull, predictable and far too long", ""]
    return {"text": np.array(texts, dtype=object)}
