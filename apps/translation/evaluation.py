"""Translation evaluation: token accuracy, BLEU and exact match of greedy and beam search on
the test pairs beside the nearest-neighbour baseline, samples; the validation BLEU that
training follows; the attention plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from apps.core import training
from apps.core.app import Request
from apps.core.errors import UserError
from apps.core.generation import ValidationBleu, generate_with_scores, teacher_forced_tokens
from apps.core.metrics import corpus_bleu, headline
from apps.core.plots import plt
from apps.translation import serving
from apps.translation.config import TranslationConfig
from apps.translation.data import TranslationAssets, TranslationDatasets
from apps.translation.model import TranslationModel
from pipelines.tokenizers import END_ID, PAD_ID, START_ID

if TYPE_CHECKING:
    import argparse

    from apps.core.app import App, EvaluationOutputs


def canonical_targets(target_tokenizer, pairs) -> list[str]:
    """The reference translations of `pairs` as the tokenizer normalizes them (for BLEU)."""
    targets = tf.constant([target for _, target in pairs])
    return [text.decode("utf-8") for text in target_tokenizer.canonical(targets).numpy()]


def nearest_neighbour_translations(
    train_pairs: list[tuple[str, str]], sources: list[str]
) -> list[str]:
    """The baseline: each source gets the target of the training pair whose source is closest
    (cosine similarity of TF-IDF word unigrams and bigrams, scikit-learn's)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    train_features = vectorizer.fit_transform([source for source, _ in train_pairs])
    similarity = vectorizer.transform(sources) @ train_features.T  # (sources, train pairs)
    nearest = np.asarray(similarity.argmax(axis=1)).ravel()
    return [train_pairs[index][1] for index in nearest]


def validation_bleu(
    config: TranslationConfig, assets: TranslationAssets, pairs: list[tuple[str, str]]
) -> ValidationBleu:
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


def evaluate(
    trained_model: TranslationModel,
    config: TranslationConfig,
    datasets: TranslationDatasets,
    outputs: EvaluationOutputs,
) -> dict[str, Any]:
    """Token accuracy (teacher forcing), BLEU for greedy and beam search beside the
    nearest-neighbour baseline (`headline`: greedy, what `serving_default` answers), samples."""
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
        translations, _, seconds = generate_with_scores(function, sources, "translation")
        metrics[f"bleu_{search_name}"] = corpus_bleu(
            [[reference] for reference in references], translations
        )
        metrics[f"exact_match_{search_name}"] = float(
            np.mean([hypothesis == reference
                     for hypothesis, reference in zip(translations, references, strict=True)])
        )  # fmt: skip
        metrics[f"sentences_per_second_{search_name}"] = len(sources) / max(seconds, 1e-9)
        samples[search_name] = translations
    baselines = {}
    if datasets.pairs.train:
        target_tokenizer = datasets.assets.tokenizers()[1]
        nearest = nearest_neighbour_translations(datasets.pairs.train, sources)
        samples["nearest_neighbour"] = canonical_targets(
            target_tokenizer, [("", target) for target in nearest]
        )
        baselines["nearest_neighbour"] = corpus_bleu(
            [[reference] for reference in references], samples["nearest_neighbour"]
        )
        metrics["bleu_nearest_neighbour"] = baselines["nearest_neighbour"]
    metrics["headline"] = headline("bleu_greedy", metrics["bleu_greedy"], baselines, True)
    count = min(config.decoding.samples, len(sources))
    metrics["samples"] = [
        {"source": sources[index], "reference": references[index]}
        | {name: samples[name][index] for name in samples}
        for index in range(count)
    ]
    return metrics


def validation_callbacks(
    config: TranslationConfig, datasets: TranslationDatasets
) -> list[keras.callbacks.Callback]:
    return [validation_bleu(config, datasets.assets, datasets.pairs.validation)]


def plot_attention(rows: list[dict[str, Any]], output: Path) -> None:
    """One heatmap per sentence: the produced tokens (rows, `[END]` included) against the
    source tokens (columns); row `t` is the attention that produced token `t`."""
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


def run_translate(app: App, args: argparse.Namespace) -> None:
    """`translate`: sentences through a work dir's model, greedy or beam; the attention plot."""
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
    translations, scores, _ = generate_with_scores(function, sentences, "translation")
    request = Request({"source": np.array(sentences, dtype=object)})
    rows = serving.format_outputs(request, {"translation": translations, "score": scores})
    serving.write_predictions(rows, None)
    if args.plot_attention:
        ids = serving.source_ids(
            source_tokenizer, tf.constant(sentences), trained_config.model.max_source_length
        )
        model_generator = serving.generator(trained_model, trained_config)
        model_search = serving.search(trained_config, beam_width)
        tokens, _ = tf.function(lambda ids: model_generator.generate(ids, model_search))(ids)
        output_rows, target_in = teacher_forced_tokens(tokens.numpy(), START_ID, END_ID, PAD_ID)
        weights = trained_model.attention_weights(ids, target_in).numpy()
        plot_rows = []
        for index, row in enumerate(rows):
            source_row = [i for i in ids[index].numpy().tolist() if i != PAD_ID]
            output_row = output_rows[index]
            plot_rows.append({
                "translation": row["translation"],
                "source_tokens": [source_tokenizer.vocabulary[i] for i in source_row],
                "output_tokens": [target_tokenizer.vocabulary[i] for i in output_row],
                "weights": weights[index, : len(output_row), : len(source_row)],
            })  # fmt: skip
        plot_attention(plot_rows, Path(args.plot_attention))
        print(f"wrote {args.plot_attention}")
