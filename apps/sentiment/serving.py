"""The sentiment export: `text` (tf.string, [None]) -> `label` and `probabilities`; and how
`predict` reads texts and prints its answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from apps.core.app import Batching, Endpoints, Request
from apps.core.errors import UserError
from apps.core.output import write_json_lines
from apps.sentiment.config import SentimentConfig
from apps.sentiment.data import TextClassificationAssets
from pipelines.errors import check_text_file
from pipelines.text import clean_text, make_vectorizer, token_ids

# TF Serving's batching for these signatures, from benchmarks/serving_speed.py
# (benchmarks/RESULTS-serving.md).
BATCHING = Batching(max_batch_size=64, allowed_batch_sizes=(1, 8, 64), batch_timeout_micros=2900)


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


def example_request(config: SentimentConfig) -> dict[str, np.ndarray]:
    texts = ["a gripping, beautifully acted film", "dull, predictable and far too long", ""]
    return {"text": np.array(texts, dtype=object)}


def read_inputs(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
) -> Request:
    """Texts from the command line, then from `input_file` (lines, or .jsonl `text` fields)."""
    texts = list(inputs)
    if input_file is not None:
        check_text_file(input_file, "a text file (one text per line, or .jsonl)")
        lines = input_file.read_text(encoding="utf-8", errors="replace").splitlines()
        if input_file.suffix == ".jsonl":
            for number, line in enumerate(lines, start=1):
                try:
                    texts.append(json.loads(line)["text"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise UserError(
                        f"{input_file}:{number}: expected a JSON object with a 'text' field"
                    ) from None
        else:
            texts.extend(lines)
    return Request({"text": np.array(texts, dtype=object)})


def format_outputs(request: Request, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {
            "text": text,
            "label": label,
            "confidence": float(np.max(probabilities)),
            "probabilities": probabilities,
        }
        for text, label, probabilities in zip(
            request.inputs["text"], outputs["label"], outputs["probabilities"], strict=True
        )
    ]


write_predictions = write_json_lines
