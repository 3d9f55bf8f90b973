"""The translation export: `source` (tf.string, [None]) -> `translation` and `score`.

`serving_default` decodes with `decoding.serving_beam_width` (1: greedy search; chosen on the
validation split at the end of training unless `decoding.choose_on_validation` is off); when
`decoding.beam_width` differs from it and is above 1, a second signature `beam_search` decodes
with that width. Both tokenize, search and detokenize inside the graph, a whole batch in one
call. An empty source gives an empty translation with score 0; a long source is cut to
`model.max_source_length` tokens; bytes that are not UTF-8 become U+FFFD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from apps.core.app import Batching, Endpoints, Request
from apps.core.output import write_json_lines
from apps.translation.config import TranslationConfig
from apps.translation.data import TranslationAssets
from apps.translation.model import TranslationModel
from layers.generation import BeamSearch, Generator, GreedySearch
from pipelines.errors import check_text_file
from pipelines.sequences import add_start_end
from pipelines.tokenizers import END_ID, SentenceTokenizer

# TF Serving's batching for these signatures, from benchmarks/serving_speed.py
# (benchmarks/RESULTS-serving.md).
BATCHING = Batching(max_batch_size=64, allowed_batch_sizes=(1, 8, 64), batch_timeout_micros=23300)


def source_ids(tokenizer: SentenceTokenizer, sources: tf.Tensor, max_length: int) -> tf.Tensor:
    """Strings `(batch,)` -> zero-padded int32 ids `(batch, time)` with [START] and [END]."""
    tokens = tokenizer.tokenize(sources)[:, : max_length - 2]
    return add_start_end(tokens).to_tensor()


def generator(model: TranslationModel, config: TranslationConfig) -> Generator:
    """The model's generator with the configured output limits."""
    decoding = config.decoding
    return model.generator(
        config.model.max_target_length, decoding.max_length_ratio, decoding.max_length_offset
    )


def search(config: TranslationConfig, beam_width: int) -> GreedySearch | BeamSearch:
    """Greedy search for `beam_width` 1, else beam search with `decoding.length_penalty`;
    both block repeated n-grams of `decoding.no_repeat_ngram_size` tokens."""
    ngram_size = config.decoding.no_repeat_ngram_size
    if beam_width == 1:
        return GreedySearch(no_repeat_ngram_size=ngram_size)
    return BeamSearch(
        beam_width,
        length_penalty=config.decoding.length_penalty,
        no_repeat_ngram_size=ngram_size,
    )


def translation_function(
    model: TranslationModel,
    source_tokenizer: SentenceTokenizer,
    target_tokenizer: SentenceTokenizer,
    config: TranslationConfig,
    beam_width: int,
    with_length_capped: bool = False,
):
    """A `tf.function` from a batch of source strings to translations and scores.

    `beam_width` 1 is greedy search; beam search ranks with `decoding.length_penalty`. With
    `with_length_capped`, a third output `length_capped` (bool) marks the translations that
    reached their length limit without ending (for `evaluate`; the export has none).
    """
    model_search = search(config, beam_width)
    model_generator = generator(model, config)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="source")])
    def translate(source):
        ids = source_ids(source_tokenizer, source, config.model.max_source_length)
        tokens, scores = model_generator.generate(ids, model_search)
        translations = target_tokenizer.detokenize(tokens)
        empty = tf.equal(tf.math.count_nonzero(ids, axis=1), 2)  # only [START] [END]
        outputs = {
            "translation": tf.where(empty, tf.constant(""), translations),
            "score": tf.where(empty, tf.constant(0.0), tf.cast(scores, tf.float32)),
        }
        if with_length_capped:
            ended = tf.reduce_any(tf.equal(tokens, END_ID), axis=1)
            outputs["length_capped"] = tf.logical_and(tf.logical_not(ended), tf.logical_not(empty))
        return outputs

    return translate


def endpoints(
    model: TranslationModel, config: TranslationConfig, assets: TranslationAssets
) -> Endpoints:
    source_tokenizer, target_tokenizer = assets.tokenizers()
    decoding = config.decoding
    functions = {
        "serving_default": translation_function(
            model, source_tokenizer, target_tokenizer, config, decoding.serving_beam_width
        )
    }
    if decoding.beam_width > 1 and decoding.beam_width != decoding.serving_beam_width:
        functions["beam_search"] = translation_function(
            model, source_tokenizer, target_tokenizer, config, decoding.beam_width
        )
    return Endpoints(functions=functions, resources=[source_tokenizer, target_tokenizer])


def example_request(config: TranslationConfig) -> dict[str, np.ndarray]:
    sources = ["Wir müssen miteinander reden.", "Das Wetter ist heute schön.", ""]
    return {"source": np.array(sources, dtype=object)}


def read_inputs(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
) -> Request:
    """Sentences from the command line, then one per line of `input_file`."""
    sources = list(inputs)
    if input_file is not None:
        check_text_file(input_file, "a text file (one sentence per line)")
        sources += input_file.read_text(encoding="utf-8", errors="replace").splitlines()
    return Request({"source": np.array(sources, dtype=object)})


def format_outputs(request: Request, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {
            "source": source,
            "translation": translation,
            "score": float(score),
        }
        for source, translation, score in zip(
            request.inputs["source"], outputs["translation"], outputs["score"], strict=True
        )
    ]


write_predictions = write_json_lines
