"""The translation model: source ids -> recurrent encoder -> attention decoder -> target logits.

`build_model` returns the teacher-forcing training model; `Translator` runs the same layers
for greedy and beam search, one graph call per batch (used by evaluate and the export).
"""

from __future__ import annotations

import keras
from keras import ops

from apps.core.training import optimizer
from apps.translation.config import DecodingConfig, TranslationConfig
from layers.attention_decoder import AttentionDecoder
from layers.recurrent_encoder import RecurrentEncoder
from layers.search import beam_search, greedy_search
from pipelines.tokenizers import END_ID, PAD_ID, START_ID

NEGATIVE_INFINITY = -1e9


@keras.saving.register_keras_serializable(package="rnn_suite")
class MaskedSequenceCrossentropy(keras.losses.Loss):
    """Cross-entropy over the non-padding target tokens, with optional label smoothing.

    Args:
        label_smoothing: mass spread uniformly over the vocabulary, in [0, 1).
    """

    def __init__(self, label_smoothing=0.0, name="masked_sequence_crossentropy", **kwargs):
        super().__init__(name=name, reduction="sum", **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        log_probabilities = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        vocabulary_size = ops.shape(y_pred)[-1]
        targets = ops.one_hot(y_true, vocabulary_size)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + (
                self.label_smoothing / ops.cast(vocabulary_size, "float32")
            )
        token_losses = -ops.sum(targets * log_probabilities, axis=-1)
        # Each token's share of the batch mean, so the "sum" reduction gives the mean.
        return token_losses * mask / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.pop("reduction", None)
        config.update({"label_smoothing": self.label_smoothing})
        return config


@keras.saving.register_keras_serializable(package="rnn_suite")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """The share of non-padding target tokens whose most probable prediction is right."""

    def __init__(self, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.not_equal(y_true, PAD_ID)
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        hits = ops.logical_and(mask, ops.equal(predicted, y_true))
        self.correct.assign_add(ops.sum(ops.cast(hits, "float32")))
        self.total.assign_add(ops.sum(ops.cast(mask, "float32")))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def build_model(
    config: TranslationConfig, source_vocabulary_size: int, target_vocabulary_size: int
) -> keras.Model:
    """The compiled model: `{"source", "target_in"}` ids -> logits `(batch, time, vocab)`."""
    model = config.model
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
    source_embedded = keras.layers.Embedding(
        source_vocabulary_size, model.embedding_dim, mask_zero=True, name="source_embedding"
    )(source)
    source_embedded = keras.layers.Dropout(model.embedding_dropout, name="source_dropout")(
        source_embedded
    )
    encoder = RecurrentEncoder(
        model.units,
        num_layers=model.num_layers,
        cell=model.cell,
        bidirectional=model.bidirectional,
        dropout=model.encoder_dropout,
        return_state=True,
        name="encoder",
    )
    encoder_sequences, encoder_states = encoder(source_embedded)
    target_embedded = keras.layers.Embedding(
        target_vocabulary_size, model.embedding_dim, mask_zero=True, name="target_embedding"
    )(target_in)
    target_embedded = keras.layers.Dropout(model.embedding_dropout, name="target_dropout")(
        target_embedded
    )
    decoded = AttentionDecoder(
        encoder.state_units,
        cell=model.cell,
        attention=model.attention,
        dropout=model.dropout,
        name="decoder",
    )(
        target_embedded,
        encoder_sequences,
        initial_state=encoder_states,
        encoder_mask=ops.not_equal(source, PAD_ID),
    )
    logits = keras.layers.Dense(target_vocabulary_size, name="logits")(decoded)
    translator = keras.Model({"source": source, "target_in": target_in}, logits, name="translator")
    translator.compile(
        optimizer=optimizer(config.training),
        loss=MaskedSequenceCrossentropy(model.label_smoothing),
        metrics=[MaskedTokenAccuracy()],
    )
    return translator


class Translator:
    """Greedy and beam search over a trained model's layers, batched in one graph call.

    Args:
        model: a model from `build_model`.
        decoding: search settings (length limits, beam width, length penalty).
        max_target_length: the model's maximum target length (tokens, [END] included).
    """

    def __init__(self, model: keras.Model, decoding: DecodingConfig, max_target_length: int):
        self.model = model
        self.decoding = decoding
        self.max_target_length = max_target_length
        self.source_embedding = model.get_layer("source_embedding")
        self.encoder = model.get_layer("encoder")
        self.target_embedding = model.get_layer("target_embedding")
        self.decoder = model.get_layer("decoder")
        self.logits = model.get_layer("logits")
        vocabulary_size = self.logits.units
        # The search never proposes [PAD] or [START].
        self.logit_bias = ops.where(
            ops.isin(ops.arange(vocabulary_size), [PAD_ID, START_ID]), NEGATIVE_INFINITY, 0.0
        )

    def encode(self, source_ids):
        """Returns `(state, context)` for the searches from source ids `(batch, time)`."""
        source_mask = ops.not_equal(source_ids, PAD_ID)
        sequences, states = self.encoder(
            self.source_embedding(source_ids), mask=source_mask, training=False
        )
        context = {
            "sequences": sequences,
            "keys": self.decoder.attention_keys(sequences),
            "mask": source_mask,
        }
        return list(states), context

    def step(self, tokens, state, context):
        # A plain lookup: the embedding layer would attach a mask that the cell does not take.
        embedded = ops.take(self.target_embedding.embeddings, tokens, axis=0)
        outputs, state, _ = self.decoder.step(
            embedded, state, context["sequences"], context["keys"],
            context["mask"],
        )  # fmt: skip
        # The logits layer with `logit_bias` folded into its bias: one pass over the vocabulary.
        bias = self.logits.bias + self.logit_bias
        return ops.matmul(outputs, self.logits.kernel) + bias, state

    def maximum_lengths(self, source_ids):
        """Per sentence: ratio * source tokens + offset, within [1, max_target_length]."""
        source_tokens = ops.sum(ops.cast(ops.not_equal(source_ids, PAD_ID), "float32"), axis=1)
        limits = ops.ceil((source_tokens - 2.0) * self.decoding.max_length_ratio)
        limits = ops.cast(limits, "int32") + self.decoding.max_length_offset
        return ops.clip(limits, 1, self.max_target_length)

    def translate(self, source_ids, beam_width: int = 1):
        """Token ids `(batch, time)` -> `(tokens, scores)`; greedy when `beam_width` is 1."""
        state, context = self.encode(source_ids)
        start_tokens = ops.full((ops.shape(source_ids)[0],), START_ID, dtype="int32")
        limits = self.maximum_lengths(source_ids)
        if beam_width == 1:
            return greedy_search(self.step, state, context, start_tokens, END_ID, limits)
        return beam_search(
            self.step, state, context, start_tokens, END_ID, limits,
            beam_width=beam_width, length_penalty=self.decoding.length_penalty,
        )  # fmt: skip

    def attention_weights(self, source_ids, target_in):
        """Teacher-forced attention weights `(batch, target_time, source_time)`."""
        state, context = self.encode(source_ids)
        _, weights = self.decoder(
            self.target_embedding(target_in), context["sequences"], initial_state=state,
            mask=ops.not_equal(target_in, PAD_ID), encoder_mask=context["mask"],
            training=False, return_attention_scores=True,
        )  # fmt: skip
        return weights
