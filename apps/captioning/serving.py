"""The captioning export: `image_bytes` (tf.string, [None]) -> `caption` and `score`.

`serving_default` decodes with `decoding.serving_beam_width` (1: greedy search); when
`decoding.beam_width` differs from it and is above 1, a second signature `beam_search` decodes
with that width. Both decode, fit and normalize the images (`pipelines.images`), run the
encoder and the search, and detokenize inside the graph, a whole batch in one call. JPEG, PNG,
GIF, BMP and WebP bytes are answered whatever their size and channels (grayscale and RGBA are
converted); other bytes fail the request with an InvalidArgumentError naming the image; an
empty batch gives empty outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from apps.captioning.config import CaptioningConfig
from apps.captioning.data import CaptioningAssets, image_preprocessing
from apps.captioning.model import CaptionModel
from apps.core.app import Batching, Endpoints, Request
from apps.core.errors import UserError
from apps.core.output import write_json_lines
from layers.generation import BeamSearch, GreedySearch
from pipelines.errors import check_text_file
from pipelines.sources.image_captions import IMAGE_SIGNATURES
from pipelines.sources.shapes import render_shape
from pipelines.tokenizers import SentenceTokenizer

# TF Serving's batching for these signatures, from benchmarks/serving_speed.py
# (benchmarks/RESULTS-serving.md).
BATCHING = Batching(max_batch_size=64, allowed_batch_sizes=(1, 8, 64), batch_timeout_micros=9900)

WEBP_RIFF, WEBP_MARK = b"RIFF", b"WEBP"


def check_image_bytes(image_bytes: tf.Tensor) -> tf.Operation:
    """Fails with InvalidArgumentError unless every element starts like an image file."""
    heads = tf.strings.substr(image_bytes + b"\0" * 12, 0, 12)  # short bytes padded
    known = [tf.equal(tf.strings.substr(heads, 0, len(sign)), sign) for sign in IMAGE_SIGNATURES]
    webp = tf.logical_and(
        tf.equal(tf.strings.substr(heads, 0, 4), WEBP_RIFF),
        tf.equal(tf.strings.substr(heads, 8, 4), WEBP_MARK),
    )
    is_image = tf.reduce_any(tf.stack([*known, webp]), axis=0)
    return tf.debugging.Assert(
        tf.reduce_all(is_image),
        [
            "image_bytes: the element at index",
            tf.argmin(tf.cast(is_image, tf.int32)),
            "is not a JPEG, PNG, GIF, BMP or WebP image",
        ],
    )


def caption_function(
    model: CaptionModel,
    tokenizer: SentenceTokenizer,
    config: CaptioningConfig,
    beam_width: int,
):
    """A `tf.function` from a batch of encoded images to captions and scores.

    `beam_width` 1 is greedy search; beam search ranks with `decoding.length_penalty`.
    """
    search = (
        GreedySearch()
        if beam_width == 1
        else BeamSearch(beam_width, length_penalty=config.decoding.length_penalty)
    )
    generator = model.generator(config.model.max_caption_length)
    preprocess = image_preprocessing(config)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def caption(image_bytes):
        with tf.control_dependencies([check_image_bytes(image_bytes)]):
            images = preprocess(image_bytes)
        tokens, scores = generator.generate(images, search)
        return {"caption": tokenizer.detokenize(tokens), "score": tf.cast(scores, tf.float32)}

    return caption


def endpoints(model: CaptionModel, config: CaptioningConfig, assets: CaptioningAssets) -> Endpoints:
    decoding = config.decoding
    tokenizer = assets.tokenizer()
    functions = {
        "serving_default": caption_function(model, tokenizer, config, decoding.serving_beam_width)
    }
    if decoding.beam_width > 1 and decoding.beam_width != decoding.serving_beam_width:
        functions["beam_search"] = caption_function(model, tokenizer, config, decoding.beam_width)
    return Endpoints(functions=functions, resources=[tokenizer])


def encode_png(image: np.ndarray) -> bytes:
    return tf.io.encode_png(image).numpy()


def example_request(config: CaptioningConfig) -> dict[str, np.ndarray]:
    """Three rendered shapes as PNG bytes: RGB at the model's size, larger, and grayscale."""
    size = config.data.image_size
    grey = render_shape("blue", "square", size, seed=2).mean(axis=-1, keepdims=True)
    images = [
        encode_png(render_shape("red", "circle", size, seed=0)),
        encode_png(render_shape("green", "triangle", 3 * size, seed=1)),
        encode_png(grey.astype(np.uint8)),
    ]
    return {"image_bytes": np.array(images, dtype=object)}


def read_inputs(
    inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
) -> Request:
    """Image files from the command line, then one path per line of `input_file`."""
    paths = list(inputs)
    if input_file is not None:
        check_text_file(input_file, "a text file of image paths (give images as arguments)")
        lines = input_file.read_text(encoding="utf-8", errors="replace").splitlines()
        paths += [line.strip() for line in lines if line.strip()]
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise UserError(f"no such image file: {', '.join(missing)}")
    images = [Path(path).read_bytes() for path in paths]
    return Request({"image_bytes": np.array(images, dtype=object)}, details={"paths": paths})


def format_outputs(request: Request, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {"image": path, "caption": caption.decode("utf-8"), "score": float(score)}
        for path, caption, score in zip(
            request.details["paths"], outputs["caption"], outputs["score"], strict=True
        )
    ]


write_predictions = write_json_lines
