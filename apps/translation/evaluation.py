"""Translation evaluation: sacreBLEU, chrF, length ratio and length-limit share of greedy and
beam search on the test pairs beside the retrieval and copy baselines, samples; the validation
BLEU that training follows; the decoding settings chosen on validation after training; the
attention plot."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from apps.core import training
from apps.core.app import Request
from apps.core.errors import UserError
from apps.core.generation import (
    GENERATION_BATCH,
    ValidationBleu,
    generate_with_scores,
    teacher_forced_tokens,
)
from apps.core.metrics import headline, translation_metrics
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
    """The reference translations of `pairs` as the tokenizer normalizes them (exact match)."""
    targets = tf.constant([target for _, target in pairs])
    return [text.decode("utf-8") for text in target_tokenizer.canonical(targets).numpy()]


def retrieval_translations(train_pairs: list[tuple[str, str]], sources: list[str]) -> list[str]:
    """The retrieval baseline: each source gets the target of the training pair whose source
    is the most similar by TF-IDF cosine (word unigrams and bigrams, sublinear term
    frequencies, scikit-learn's `TfidfVectorizer`; its rows are unit length, so the dot
    product is the cosine). A source sharing no word with any training source gets the
    first training pair's target."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    train_features = vectorizer.fit_transform([source for source, _ in train_pairs])
    similarity = vectorizer.transform(sources) @ train_features.T  # (sources, train pairs)
    nearest = np.asarray(similarity.argmax(axis=1)).ravel()
    return [train_pairs[index][1] for index in nearest]


def sacrebleu_bleu(references: list[list[str]], texts: list[str]) -> float:
    """sacreBLEU, lower-cased, of `texts` against one reference each (`translation_metrics`)."""
    return translation_metrics([reference for (reference,) in references], texts)["bleu"]


def validation_bleu(
    config: TranslationConfig, assets: TranslationAssets, pairs: list[tuple[str, str]]
) -> ValidationBleu:
    """`val_bleu` of greedy translations of `pairs` (what checkpoints and early stopping
    follow; the decoding settings are chosen after training, `choose_decoding`): sacreBLEU,
    lower-cased, as `evaluate` reports. Its smoothing keeps the early epochs of a small corpus
    apart, where unsmoothed BLEU is 0 for several epochs and stopped training at epoch 4."""

    def make_function(trained_model):
        translate = serving.translation_function(
            trained_model, *assets.tokenizers(), config, beam_width=1
        )
        return lambda sources: translate(sources)["translation"]

    return ValidationBleu(
        make_function,
        [source for source, _ in pairs],
        [[target] for _, target in pairs],
        metric=sacrebleu_bleu,
    )


def search_name(beam_width: int) -> str:
    return "greedy" if beam_width == 1 else f"beam{beam_width}"


def translate_all(function, sources: list[str]) -> tuple[list[str], np.ndarray, float]:
    """Runs a `translation_function(..., with_length_capped=True)` over `sources` in batches;
    returns the translations, which of them hit the length limit, and the seconds taken."""
    translations, capped = [], []
    started = time.perf_counter()
    for start in range(0, len(sources), GENERATION_BATCH):
        outputs = function(tf.constant(sources[start : start + GENERATION_BATCH]))
        translations += [text.decode("utf-8") for text in outputs["translation"].numpy()]
        capped.append(outputs["length_capped"].numpy())
    seconds = time.perf_counter() - started
    return translations, np.concatenate(capped) if capped else np.zeros(0, bool), seconds


@dataclasses.dataclass
class DecodingChoice:
    """Decoding settings picked from validation BLEU scores (`pick_decoding`)."""

    no_repeat_ngram_size: int
    beam_width: int
    length_penalty: float
    serving_beam_width: int
    # The scores and the outcome, for the work dir's config and `evaluate`.
    description: str


def pick_decoding(
    greedy: dict[int, float], beams: dict[tuple[int, float], float], pairs: int
) -> DecodingChoice:
    """Picks from validation scores: `greedy` by repeat-blocking n-gram size, `beams` by
    (width, length penalty), all with the best greedy n-gram size. The first best candidate
    wins a tie; the best beam setting serves only when it beats greedy search."""
    ngram_size = max(greedy, key=greedy.__getitem__)
    width, penalty = max(beams, key=beams.__getitem__)
    serving_width = width if beams[width, penalty] > greedy[ngram_size] else 1
    description = (
        f"on {pairs} validation pairs, BLEU greedy "
        + ", ".join(f"{greedy[size]:.2f} (no-repeat {size})" for size in greedy)
        + f"; beams with no-repeat {ngram_size} (width/length penalty): "
        + ", ".join(f"{w}/{p:g} {bleu:.2f}" for (w, p), bleu in beams.items())
        + f"; serving_default: {search_name(serving_width)}"
        + ("" if serving_width > 1 else " (no beam setting beat greedy search)")
    )
    return DecodingChoice(ngram_size, width, penalty, serving_width, description)


def choose_decoding(
    trained_model: TranslationModel, config: TranslationConfig, datasets: TranslationDatasets
) -> TranslationConfig:
    """The config with its decoding settings chosen on the validation pairs (sacreBLEU,
    lower-cased; `config.DecodingConfig` describes the order, `pick_decoding` the rule).
    `config` itself when the choice is off or there is no validation pair."""
    decoding = config.decoding
    pairs = datasets.pairs.validation
    if not decoding.choose_on_validation or not pairs:
        return config
    sources = [source for source, _ in pairs]
    references = [target for _, target in pairs]
    tokenizers = datasets.assets.tokenizers()
    # One graph per search; the length penalties are values of this variable.
    length_penalty = tf.Variable(0.0, trainable=False)

    def function(ngram_size: int, beam_width: int):
        candidate = dataclasses.replace(
            config,
            decoding=dataclasses.replace(
                decoding, no_repeat_ngram_size=ngram_size, length_penalty=length_penalty
            ),
        )
        return serving.translation_function(trained_model, *tokenizers, candidate, beam_width)

    def bleu(function) -> float:
        translations, _, _ = generate_with_scores(function, sources, "translation")
        return translation_metrics(references, translations)["bleu"]

    greedy = {size: bleu(function(size, 1)) for size in decoding.candidate_ngram_sizes}
    best_ngram_size = max(greedy, key=greedy.__getitem__)
    beams = {}
    for width in decoding.candidate_beam_widths:
        beam = function(best_ngram_size, width)
        for penalty in decoding.candidate_length_penalties:
            length_penalty.assign(penalty)
            beams[width, penalty] = bleu(beam)
    choice = pick_decoding(greedy, beams, len(pairs))
    print(f"decoding chosen {choice.description}")
    return dataclasses.replace(
        config,
        decoding=dataclasses.replace(
            decoding, beam_width=choice.beam_width, length_penalty=choice.length_penalty,
            no_repeat_ngram_size=choice.no_repeat_ngram_size,
            serving_beam_width=choice.serving_beam_width, chosen=choice.description,
        ),
    )  # fmt: skip


def evaluate(
    trained_model: TranslationModel,
    config: TranslationConfig,
    datasets: TranslationDatasets,
    outputs: EvaluationOutputs,
) -> dict[str, Any]:
    """On the same test pairs: greedy and beam search beside the retrieval and copy
    baselines, each with sacreBLEU (lower-cased and case-sensitive), chrF and the length
    ratio; the share of outputs that hit the length limit; token accuracy (teacher forcing);
    samples. `headline`: what `serving_default` answers against the stronger baseline."""
    results = trained_model.evaluate(datasets.test, verbose=0, return_dict=True)
    test_pairs = datasets.pairs.test
    sources = [source for source, _ in test_pairs]
    references = [target for _, target in test_pairs]
    target_tokenizer = datasets.assets.tokenizers()[1]
    canonical = canonical_targets(target_tokenizer, test_pairs)
    decoding = config.decoding
    serving_name = search_name(decoding.serving_beam_width)
    metrics = {
        "token_accuracy": float(results["token_accuracy"]),
        "loss": float(results["loss"]),
        "test_pairs": len(test_pairs),
        "serving_default": serving_name,
        "decoding": {
            "beam_width": decoding.beam_width,
            "length_penalty": decoding.length_penalty,
            "no_repeat_ngram_size": decoding.no_repeat_ngram_size,
            "chosen": decoding.chosen or "not chosen on validation: the config's settings",
        },
    }
    widths = sorted({1, decoding.beam_width, decoding.serving_beam_width})
    samples = {}
    for width in widths:
        name = search_name(width)
        function = serving.translation_function(
            trained_model, *datasets.assets.tokenizers(), config, width, with_length_capped=True
        )
        translations, capped, seconds = translate_all(function, sources)
        metrics |= {
            f"{metric}_{name}": value
            for metric, value in translation_metrics(references, translations).items()
        }
        metrics[f"length_capped_{name}"] = float(np.mean(capped))
        normalized = canonical_targets(target_tokenizer, [("", text) for text in translations])
        metrics[f"exact_match_{name}"] = float(
            np.mean([hypothesis == reference
                     for hypothesis, reference in zip(normalized, canonical, strict=True)])
        )  # fmt: skip
        metrics[f"sentences_per_second_{name}"] = len(sources) / max(seconds, 1e-9)
        samples[name] = translations
    samples["copy"] = sources
    if datasets.pairs.train:
        samples["retrieval"] = retrieval_translations(datasets.pairs.train, sources)
    else:
        metrics["retrieval"] = "not run: the baseline needs the training split"
    baselines = {}
    for name in ("retrieval", "copy"):
        if name in samples:
            scores = translation_metrics(references, samples[name])
            metrics |= {f"{metric}_{name}": value for metric, value in scores.items()}
            baselines[name] = scores["bleu"]
    metrics["headline"] = headline(
        f"bleu_{serving_name}", metrics[f"bleu_{serving_name}"], baselines, True
    )
    count = min(decoding.samples, len(sources))
    metrics["samples"] = [
        {"source": sources[index], "reference": references[index]}
        | {name: samples[name][index] for name in samples if name != "copy"}
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
