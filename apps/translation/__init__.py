"""rnn-translate: translate sentences with a recurrent encoder-decoder and attention.

Data (--data): ding-de-en (German -> English example sentences of the Ding dictionary,
Debian package trans-de-en), tfds:ted_hrlr_translate/pt_to_en, or your own file: .tsv/.csv
with a header (columns `source` and `target`, see --set data.source_column=...) or the
Anki/Tatoeba .txt layout `english<TAB>other<TAB>...` (--set data.reverse=true flips it).

Example:
  rnn-translate train --workdir runs/translate --preset base
  rnn-translate evaluate --workdir runs/translate
  rnn-translate translate --workdir runs/translate --plot-attention attention.png \\
      "Wir müssen miteinander reden."
  rnn-translate export --workdir runs/translate
  rnn-translate predict --model saved_models/translation "Das ist gut."
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from apps.core import cli
from apps.core.app import App
from apps.core.errors import UserError
from apps.core.generation import ValidationBleu
from apps.core.metrics import corpus_bleu
from apps.translation import config, data, model, search_space, serving
from pipelines.translation import PAD_ID, START_ID

TRANSLATION_BATCH = 64


def translate_all(function, sources: list[str]) -> tuple[list[str], np.ndarray, float]:
    """Runs a translation function over `sources` in batches; returns texts, scores, seconds."""
    translations, scores = [], []
    started = time.perf_counter()
    for start in range(0, len(sources), TRANSLATION_BATCH):
        outputs = function(tf.constant(sources[start : start + TRANSLATION_BATCH]))
        translations += [text.decode("utf-8") for text in outputs["translation"].numpy()]
        scores.append(outputs["score"].numpy())
    seconds = time.perf_counter() - started
    return translations, np.concatenate(scores) if scores else np.zeros(0), seconds


def canonical_targets(target_tokenizer, pairs) -> list[str]:
    """The reference translations of `pairs` as the tokenizer normalizes them (for BLEU)."""
    targets = tf.constant([target for _, target in pairs])
    return [text.decode("utf-8") for text in target_tokenizer.canonical(targets).numpy()]


def validation_bleu(config, assets, pairs) -> ValidationBleu:
    """`val_bleu` of greedy translations of `pairs` by the export's `serving_default` search."""

    def make_function(trained_model):
        translate = serving.translation_function(
            trained_model, *assets.tokenizers(), config, beam_width=1
        )
        return lambda sources: translate(sources)["translation"]

    references = canonical_targets(assets.tokenizers()[1], pairs)
    return ValidationBleu(
        make_function, [source for source, _ in pairs], [[reference] for reference in references]
    )


def plot_attention(rows: list[dict[str, Any]], output: Path) -> None:
    """One heatmap per sentence: output tokens (rows) against source tokens (columns)."""
    from apps.core.plots import plt  # the headless matplotlib backend

    figure, axes = plt.subplots(
        1, len(rows), figsize=(max(4.0, 0.5 * max(len(row["source_tokens"]) for row in rows))
                               * len(rows), 5.0), squeeze=False,
    )  # fmt: skip
    for axis, row in zip(axes[0], rows, strict=True):
        weights = np.asarray(row["weights"])
        axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axis.set_xticks(np.arange(weights.shape[1]), row["source_tokens"], rotation=90)
        axis.set_yticks(np.arange(weights.shape[0]), row["output_tokens"])
        axis.set_title(row["translation"][:60], fontsize=9)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


def run_translate(app: TranslationApp, args) -> None:
    from apps.core import training

    workdir = Path(args.workdir)
    trained_config, trained_model, assets = training.load_trained(app, workdir)
    sentences = list(args.sentences)
    if not sentences:
        raise UserError("translate needs SENTENCE arguments")
    beam_width = args.beam_width or 1
    source_tokenizer, target_tokenizer = assets.tokenizers()
    function = serving.translation_function(
        trained_model, source_tokenizer, target_tokenizer, trained_config, beam_width
    )
    translations, scores, _ = translate_all(function, sentences)
    rows = [
        {"source": source, "translation": translation, "score": float(score)}
        for source, translation, score in zip(sentences, translations, scores, strict=True)
    ]
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    if args.plot_attention:
        source_ids = serving.source_ids(
            source_tokenizer, tf.constant(sentences), trained_config.model.max_source_length
        )
        output_ids = target_tokenizer.tokenize(tf.constant(translations))
        target_in = tf.concat(
            [tf.fill([output_ids.nrows(), 1], START_ID), output_ids], axis=1
        ).to_tensor()
        weights = trained_model.attention_weights(source_ids, target_in).numpy()
        plot_rows = []
        for index, row in enumerate(rows):
            source_row = [i for i in source_ids[index].numpy().tolist() if i != PAD_ID]
            output_row = output_ids[index].numpy().tolist()
            plot_rows.append({
                "translation": row["translation"],
                "source_tokens": [source_tokenizer.vocabulary[i] for i in source_row],
                "output_tokens": ["[START]"] + [target_tokenizer.vocabulary[i] for i in output_row],
                "weights": weights[index, : len(output_row) + 1, : len(source_row)],
            })  # fmt: skip
        plot_attention(plot_rows, Path(args.plot_attention))
        print(f"wrote {args.plot_attention}")


class TranslationApp(App):
    __doc__ = __doc__
    name = "translation"
    command = "rnn-translate"
    config_class = config.TranslationConfig
    presets = config.PRESETS
    monitor = "val_bleu"
    monitor_mode = "max"
    assets_class = data.TranslationAssets

    def load_data(self, config, assets=None, whole_as_test=False) -> data.TranslationDatasets:
        return data.load_data(config, assets, whole_as_test)

    def build_model(self, config, assets):
        return model.build_model(
            config, len(assets.source_vocabulary), len(assets.target_vocabulary)
        )

    def validation_callbacks(self, config, datasets):
        return [validation_bleu(config, datasets.assets, datasets.pairs.validation)]

    def evaluate(self, trained_model, config, datasets, workdir: Path) -> dict[str, Any]:
        """Token accuracy (teacher forcing), BLEU for greedy and beam search, samples."""
        results = trained_model.evaluate(datasets.test, verbose=0, return_dict=True)
        test_pairs = datasets.pairs.test
        sources = [source for source, _ in test_pairs]
        references = canonical_targets(datasets.assets.tokenizers()[1], test_pairs)
        endpoints = serving.endpoints(trained_model, config, datasets.assets)
        greedy_config_width = config.decoding.serving_beam_width
        metrics = {
            "token_accuracy": float(results["token_accuracy"]),
            "loss": float(results["loss"]),
            "test_pairs": len(test_pairs),
        }
        searches = {"greedy": 1}
        if config.decoding.beam_width > 1:
            searches[f"beam{config.decoding.beam_width}"] = config.decoding.beam_width
        samples = {}
        for search_name, width in searches.items():
            function = (
                endpoints.functions["serving_default"]
                if width == greedy_config_width
                else serving.translation_function(
                    trained_model, *datasets.assets.tokenizers(), config, width
                )
            )
            translations, _, seconds = translate_all(function, sources)
            metrics[f"bleu_{search_name}"] = corpus_bleu(
                [[reference] for reference in references], translations
            )
            metrics[f"exact_match_{search_name}"] = float(
                np.mean([hypothesis == reference
                         for hypothesis, reference in zip(translations, references, strict=True)])
            )  # fmt: skip
            metrics[f"sentences_per_second_{search_name}"] = len(sources) / max(seconds, 1e-9)
            samples[search_name] = translations
        count = min(config.decoding.samples, len(sources))
        metrics["samples"] = [
            {"source": sources[index], "reference": references[index]}
            | {name: samples[name][index] for name in samples}
            for index in range(count)
        ]
        for sample in metrics["samples"]:
            print(json.dumps(sample, ensure_ascii=False))
        return metrics

    def endpoints(self, trained_model, config, assets):
        return serving.endpoints(trained_model, config, assets)

    def example_request(self, config) -> dict[str, np.ndarray]:
        return serving.example_request()

    def read_inputs(self, inputs, input_file, input_specs) -> dict[str, np.ndarray]:
        sources = list(inputs)
        if input_file is not None:
            sources += input_file.read_text(encoding="utf-8", errors="replace").splitlines()
        return {"source": np.array(sources, dtype=object)}

    def format_outputs(self, request, outputs) -> list[dict[str, Any]]:
        return [
            {
                "source": source,
                "translation": translation,
                "score": float(score),
            }
            for source, translation, score in zip(
                request["source"], outputs["translation"], outputs["score"], strict=True
            )
        ]

    def add_commands(self, commands) -> None:
        translate = commands.add_parser(
            "translate", help="translate sentences with a trained work dir; plot the attention"
        )
        translate.add_argument("--workdir", required=True, help="a trained work dir")
        translate.add_argument("sentences", nargs="*", metavar="SENTENCE")
        translate.add_argument(
            "--beam-width", type=int, default=1, help="1: greedy search (default)"
        )
        translate.add_argument(
            "--plot-attention", metavar="PNG", help="write the attention heatmaps here"
        )
        translate.set_defaults(run=run_translate)

    def search_space(self, hp, config):
        return search_space.search_space(hp, config)


APP = TranslationApp()


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
