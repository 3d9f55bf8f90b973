"""Captioning evaluation: BLEU-1/4, CIDEr-D, ROUGE-L and exact match of greedy and beam search
against all references of each test image, next to the nearest-neighbour baseline; the
validation BLEU that training follows; the attention maps of `predict --plot-attention`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from apps.captioning import serving
from apps.captioning.config import CaptioningConfig
from apps.captioning.data import (
    CaptionedImages,
    CaptioningDatasets,
    encoded_features,
    image_preprocessing,
)
from apps.captioning.model import CaptionModel
from apps.core import training
from apps.core.errors import UserError
from apps.core.generation import ValidationBleu, generate_with_scores, teacher_forced_tokens
from apps.core.metrics import corpus_bleu, headline
from layers.backbone import UnfreezeBackbone
from layers.generation import GreedySearch
from pipelines.images import decode_image, fit_image
from pipelines.tokenizers import END_ID, PAD_ID, START_ID, SentenceTokenizer

if TYPE_CHECKING:
    import argparse

    from apps.core.app import App, EvaluationOutputs


def canonical_references(tokenizer: SentenceTokenizer, images: CaptionedImages) -> list[list[str]]:
    """Every caption of every image as the tokenizer normalizes it (what a perfect model says)."""
    return [
        [text.decode("utf-8") for text in tokenizer.canonical(tf.constant(captions)).numpy()]
        for captions in images.captions
    ]


def caption_metrics(references: list[list[str]], hypotheses: list[str]) -> dict[str, float]:
    """BLEU-1, BLEU-4 (0-100), CIDEr-D, ROUGE-L and the exact-match rate, all references counted.

    CIDEr-D and ROUGE-L are the COCO caption toolkit's (`pycocoevalcap`), on the captions split
    at spaces (the toolkit's Java PTB tokenizer is not used; the captions are normalized by the
    caption tokenizer already). CIDEr's document frequencies come from these references.
    """
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if not hypotheses:
        return {}
    truths = {index: list(texts) for index, texts in enumerate(references)}
    answers = {index: [text] for index, text in enumerate(hypotheses)}
    cider, _ = Cider().compute_score(truths, answers)
    rouge, _ = Rouge().compute_score(truths, answers)
    return {
        "bleu1": corpus_bleu(references, hypotheses, max_order=1),
        "bleu4": corpus_bleu(references, hypotheses),
        "cider": float(cider),
        "rouge_l": float(rouge),
        "exact_match": float(
            np.mean([text in texts for text, texts in zip(hypotheses, references, strict=True)])
        ),
    }


def pooled_features(model: CaptionModel, config: CaptioningConfig, paths: list[str]) -> np.ndarray:
    """The model's image features averaged over the cells, `(images, features)`, computed as
    the feature cache is (`encoded_features`: 7x the eager calls with a backbone; on par with
    them for the small CNN, 581-624 against 613-725 images/s on 256 images)."""
    return encoded_features(model.image_encoder, config, paths).mean(axis=1)


def nearest_neighbour_captions(
    model: CaptionModel,
    config: CaptioningConfig,
    train: CaptionedImages,
    test: CaptionedImages,
    tokenizer: SentenceTokenizer,
) -> list[str]:
    """The baseline: each test image gets the first caption of the training image whose pooled
    features are closest (cosine similarity)."""
    train_features = pooled_features(model, config, train.paths)
    test_features = pooled_features(model, config, test.paths)

    def unit(features):
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)

    nearest = np.argmax(unit(test_features) @ unit(train_features).T, axis=1)
    first_captions = [train.captions[index][0] for index in nearest]
    return [
        text.decode("utf-8") for text in tokenizer.canonical(tf.constant(first_captions)).numpy()
    ]


def evaluate(
    trained_model: CaptionModel,
    config: CaptioningConfig,
    datasets: CaptioningDatasets,
    outputs: EvaluationOutputs,
) -> dict[str, Any]:
    """Token accuracy (teacher forcing); caption metrics of greedy and beam search and of the
    nearest-neighbour baseline side by side; samples."""
    results = trained_model.evaluate(datasets.test, verbose=0, return_dict=True)
    test = datasets.images.test
    tokenizer = datasets.assets.tokenizer()
    references = canonical_references(tokenizer, test)
    image_bytes = test.image_bytes()
    metrics: dict[str, Any] = {
        "token_accuracy": float(results["token_accuracy"]),
        "loss": float(results["loss"]),
        "test_images": len(test.paths),
    }
    searches = {"greedy": 1}
    if config.decoding.beam_width > 1:
        searches[f"beam{config.decoding.beam_width}"] = config.decoding.beam_width
    scores, samples = {}, {}
    for name, width in searches.items():
        function = serving.caption_function(trained_model, tokenizer, config, width)
        captions, _, seconds = generate_with_scores(function, image_bytes, "caption")
        scores[name] = caption_metrics(references, captions)
        scores[name]["images_per_second"] = len(captions) / max(seconds, 1e-9)
        samples[name] = captions
    if datasets.images.train.paths:
        baseline = nearest_neighbour_captions(
            trained_model, config, datasets.images.train, test, tokenizer
        )
        scores["nearest_neighbour"] = caption_metrics(references, baseline)
        samples["nearest_neighbour"] = baseline
    else:
        metrics["nearest_neighbour"] = "not run: the baseline needs the training split"
    metrics["scores"] = scores
    metrics["headline"] = headline(
        "cider",
        scores["greedy"]["cider"],
        {name: scores[name]["cider"] for name in scores if name not in searches},
        higher_is_better=True,
    )
    print_side_by_side(scores)
    count = min(config.decoding.samples, len(test.paths))
    metrics["samples"] = [
        {"image": test.paths[index], "references": references[index]}
        | {name: samples[name][index] for name in samples}
        for index in range(count)
    ]
    return metrics


def print_side_by_side(scores: dict[str, dict[str, float]]) -> None:
    names = ["bleu1", "bleu4", "cider", "rouge_l", "exact_match"]
    print(f"{'':>18}" + "".join(f"{name:>12}" for name in names))
    for method, values in scores.items():
        print(f"{method:>18}" + "".join(f"{values[name]:>12.3f}" for name in names))


def validation_callbacks(
    config: CaptioningConfig, datasets: CaptioningDatasets
) -> list[keras.callbacks.Callback]:
    """`val_bleu` (BLEU-4 of greedy captions of the validation images, all references), and
    the backbone's unfreezing for `frozen_then_fine_tune`."""
    tokenizer = datasets.assets.tokenizer()
    validation = datasets.images.validation

    def make_function(trained_model):
        caption = serving.caption_function(trained_model, tokenizer, config, beam_width=1)
        return lambda image_bytes: caption(image_bytes)["caption"]

    callbacks = []
    if config.model.backbone_training == "frozen_then_fine_tune":
        callbacks.append(UnfreezeBackbone(config.model.frozen_epochs))
    callbacks.append(
        ValidationBleu(
            make_function, validation.image_bytes(), canonical_references(tokenizer, validation)
        )
    )
    return callbacks


def display_image(image_bytes: bytes, config: CaptioningConfig) -> np.ndarray:
    """The image as the model sees it (fitted), in [0, 1] for plotting."""
    image = fit_image(
        decode_image(image_bytes, config.data.background),
        config.data.image_size,
        config.data.fit,
        config.data.background,
    )
    return np.clip(image.numpy() / 255.0, 0.0, 1.0)


def plot_attention_maps(app: App, args: argparse.Namespace) -> None:
    """`predict --plot-attention DIR`: per image, the attention over it for each word."""
    from apps.core.plots import plt  # the headless matplotlib backend

    model_path = Path(args.model)
    if not (model_path / training.CONFIG_FILE).is_file():
        raise UserError(f"--plot-attention needs a work dir as --model; {model_path} is not one")
    config, model, assets = training.load_trained(app, model_path)
    tokenizer = assets.tokenizer()
    request = serving.read_inputs(args.inputs, Path(args.input) if args.input else None, {})
    image_bytes = list(request.inputs["image_bytes"])
    captions, _, _ = generate_with_scores(
        serving.caption_function(model, tokenizer, config, beam_width=1), image_bytes, "caption"
    )
    images = image_preprocessing(config)(tf.constant(image_bytes))
    generator = model.generator(config.model.max_caption_length)
    tokens, _ = tf.function(lambda images: generator.generate(images, GreedySearch()))(images)
    rows, caption_in = teacher_forced_tokens(tokens.numpy(), START_ID, END_ID, PAD_ID)
    weights = model.attention_weights(images, caption_in).numpy()
    grid_height, grid_width = model.image_encoder.grid_shape
    output = Path(args.plot_attention)
    output.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(request.details["paths"]):
        words = [tokenizer.vocabulary[i] for i in rows[index]]
        picture = display_image(image_bytes[index], config)
        figure, axes = plt.subplots(
            1, len(words) + 1, figsize=(2.2 * (len(words) + 1), 2.6), squeeze=False
        )
        axes[0, 0].imshow(picture)
        axes[0, 0].set_title(captions[index][:40], fontsize=8)
        for axis, word, step_weights in zip(axes[0, 1:], words, weights[index], strict=False):
            attention = step_weights.reshape(grid_height, grid_width)  # (grid rows, columns)
            axis.imshow(picture)
            axis.imshow(
                attention, cmap="inferno", alpha=0.6, interpolation="bilinear",
                extent=(0, picture.shape[1], picture.shape[0], 0),
            )  # fmt: skip
            axis.set_title(word, fontsize=9)
        for axis in axes[0]:
            axis.axis("off")
        figure.tight_layout()
        target = output / f"{index:03d}-{Path(path).stem}.png"
        figure.savefig(target, dpi=80)
        plt.close(figure)
        print(f"wrote {target}")
