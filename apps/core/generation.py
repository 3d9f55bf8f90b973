"""Running a model's batched generator over many inputs, and validation BLEU while training."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from apps.core.metrics import corpus_bleu

GENERATION_BATCH = 64


def generate_with_scores(
    function: Callable[[tf.Tensor], dict[str, tf.Tensor]],
    inputs: list,
    text_output: str,
    batch_size: int = GENERATION_BATCH,
) -> tuple[list[str], np.ndarray, float]:
    """Runs a batched export-style function (`{text_output, "score"}` out) over `inputs`.

    Returns the texts, their float32 scores `(len(inputs),)` and the seconds it took.
    """
    texts, scores = [], []
    started = time.perf_counter()
    for start in range(0, len(inputs), batch_size):
        outputs = function(tf.constant(inputs[start : start + batch_size]))
        texts += [text.decode("utf-8") for text in outputs[text_output].numpy()]
        scores.append(outputs["score"].numpy())
    seconds = time.perf_counter() - started
    return texts, np.concatenate(scores) if scores else np.zeros(0, np.float32), seconds


def teacher_forced_tokens(
    tokens: np.ndarray, start_token_id: int, end_token_id: int, pad_token_id: int = 0
) -> tuple[list[list[int]], np.ndarray]:
    """Generated `tokens` (batch, time) as an attention plot reads them.

    Returns each row up to and including its end token (up to its padding when it has none),
    and the decoder inputs that reproduce the rows by teacher forcing: the start token, then
    each row without its last token, padded; int32 (batch, longest row). Step `t` of the
    teacher-forced attention is then the attention that produced token `t` of the row.
    """
    rows = []
    for row in np.asarray(tokens).tolist():
        if end_token_id in row:
            row = row[: row.index(end_token_id) + 1]
        elif pad_token_id in row:
            row = row[: row.index(pad_token_id)]
        rows.append(row)
    decoder_inputs = np.full((len(rows), max(map(len, rows), default=0)), pad_token_id, np.int32)
    for index, row in enumerate(rows):
        decoder_inputs[index, : len(row)] = [start_token_id, *row[:-1]][: len(row)]
    return rows, decoder_inputs


def generate_all(
    function: Callable[[tf.Tensor], tf.Tensor], inputs: list, batch_size: int = GENERATION_BATCH
) -> list[str]:
    """Runs a batched `tf.string (batch,) -> tf.string (batch,)` function over `inputs`."""
    outputs = []
    for start in range(0, len(inputs), batch_size):
        texts = function(tf.constant(inputs[start : start + batch_size]))
        outputs += [text.decode("utf-8") for text in texts.numpy()]
    return outputs


class ValidationBleu(keras.callbacks.Callback):
    """Adds `val_bleu`, corpus BLEU of the generated texts of the validation inputs, to the logs.

    Args:
        make_function: `model -> function`, a batched `tf.string (batch,) -> tf.string
            (batch,)` generator built on the model being trained (e.g. greedy translation or
            captioning); built once when training begins, so each epoch's score reflects that
            epoch's weights.
        inputs: the validation inputs (source sentences, encoded images).
        references: one list of reference texts per input (`apps.core.metrics.corpus_bleu`).
        batch_size: inputs per call of the function.
        metric: `(references, texts) -> float`, the score logged; `corpus_bleu` by default.

    Example:

    ```python
    ValidationBleu(lambda model: greedy_text_function(model), sources, [[t] for t in targets])
    ```
    """

    def __init__(
        self, make_function, inputs, references, batch_size=GENERATION_BATCH, metric=corpus_bleu
    ):
        super().__init__()
        if len(inputs) != len(references):
            raise ValueError(
                f"`inputs` and `references` must have the same length. Received: "
                f"{len(inputs)} inputs and {len(references)} reference lists"
            )
        self.make_function = make_function
        self.inputs = list(inputs)
        self.references = references
        self.batch_size = batch_size
        self.metric = metric

    def on_train_begin(self, logs=None):
        self.function = self.make_function(self.model)

    def on_epoch_end(self, epoch, logs=None):
        texts = generate_all(self.function, self.inputs, self.batch_size)
        logs["val_bleu"] = self.metric(self.references, texts)
