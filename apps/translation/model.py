"""The translation model: source ids -> recurrent encoder -> attention decoder -> target logits.

`build_model` returns the compiled teacher-forcing `TranslationModel`; its `generator` runs the
same layers for greedy search, beam search and sampling (`layers.generation.Generator`), one
graph call per batch (used by evaluate and the export).
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

from apps.core.training import optimizer
from apps.translation.config import TranslationConfig
from apps.translation.data import TranslationAssets
from layers.attention_decoder import AttentionDecoder
from layers.generation import Encoding, Generator, attention_context
from layers.losses import MaskedSequenceCrossentropy, TokenAccuracy
from layers.recurrent_encoder import RecurrentEncoder
from pipelines.tokenizers import END_ID, PAD_ID, START_ID


@keras.saving.register_keras_serializable(package="rnn_suite")
class TranslationModel(keras.Model):
    """`{"source", "target_in"}` int32 ids `(batch, time)` -> logits `(batch, time, vocab)`.

    A functional model that keeps its layers as attributes (the keras-hub `Seq2SeqLM`
    pattern), so the searches reuse them without looking them up by name. Masking: id 0 is
    padding on both sides. The logits are float32 whatever the dtype policy.

    Args:
        source_vocabulary_size, target_vocabulary_size: vocabulary sizes, reserved ids included.
        embedding_dim: width of both embeddings.
        embedding_dropout: dropout on both embeddings during training.
        units, num_layers, cell, bidirectional, encoder_dropout: the `RecurrentEncoder`'s.
        attention, dropout: the `AttentionDecoder`'s; the decoder is as wide as the encoder's
            final state.
        tie_embeddings: the target embedding is as wide as the decoder and its transposed table
            is the output layer (`keras_hub.layers.ReversibleEmbedding`, no output bias; Press
            and Wolf, "Using the Output Embedding to Improve Language Models", 2017): a token's
            input and output vectors learn from each other's gradients, and the target side
            has a vocabulary-sized matrix less to fit on little data.
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim=128,
        embedding_dropout=0.0,
        units=128,
        num_layers=1,
        cell="gru",
        bidirectional=True,
        encoder_dropout=0.0,
        attention="additive",
        dropout=0.0,
        tie_embeddings=False,
        **kwargs,
    ):
        source_embedding = keras.layers.Embedding(
            source_vocabulary_size, embedding_dim, mask_zero=True, name="source_embedding"
        )
        source_dropout = keras.layers.Dropout(embedding_dropout, name="source_dropout")
        encoder = RecurrentEncoder(
            units, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
            dropout=encoder_dropout, return_state=True, name="encoder",
        )  # fmt: skip
        source = keras.Input(shape=(None,), dtype="int32", name="source")
        target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
        encoder_sequences, encoder_states = encoder(source_dropout(source_embedding(source)))
        if tie_embeddings:
            target_embedding = keras_hub.layers.ReversibleEmbedding(
                target_vocabulary_size, encoder.state_units, mask_zero=True,
                reverse_dtype="float32", name="target_embedding",
            )  # fmt: skip
        else:
            target_embedding = keras.layers.Embedding(
                target_vocabulary_size, embedding_dim, mask_zero=True, name="target_embedding"
            )
        target_dropout = keras.layers.Dropout(embedding_dropout, name="target_dropout")
        target_embedded = target_dropout(target_embedding(target_in))
        decoder = AttentionDecoder(
            encoder.state_units, cell=cell, attention=attention, dropout=dropout, name="decoder"
        )
        decoded = decoder(
            target_embedded,
            encoder_sequences,
            initial_state=encoder_states,
            encoder_mask=ops.not_equal(source, PAD_ID),
        )
        if tie_embeddings:
            logits_layer = target_embedding
            logits = target_embedding(decoded, reverse=True)
        else:
            logits_layer = keras.layers.Dense(
                target_vocabulary_size, dtype="float32", name="logits"
            )
            logits = logits_layer(decoded)
        super().__init__({"source": source, "target_in": target_in}, logits, **kwargs)
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.embedding_dropout = embedding_dropout
        self.units = units
        self.num_layers = num_layers
        self.cell = cell
        self.bidirectional = bidirectional
        self.encoder_dropout = encoder_dropout
        self.attention = attention
        self.dropout = dropout
        self.tie_embeddings = tie_embeddings
        self.source_embedding = source_embedding
        self.encoder = encoder
        self.target_embedding = target_embedding
        self.decoder = decoder
        self.logits = logits_layer

    def encode(self, source_ids) -> Encoding:
        """Source ids `(batch, time)` -> the decoder's initial state and attention context.

        The lengths the output limits scale are the source tokens without [START] and [END].
        """
        source_mask = ops.not_equal(source_ids, PAD_ID)
        sequences, states = self.encoder(
            self.source_embedding(source_ids), mask=source_mask, training=False
        )
        lengths = ops.sum(ops.cast(source_mask, "int32"), axis=1) - 2
        return Encoding(list(states), attention_context(self.decoder, sequences, source_mask),
                        lengths=lengths)  # fmt: skip

    def generator(
        self, max_length: int, length_ratio: float | None = None, length_offset: int = 0
    ) -> Generator:
        """Greedy search, beam search and sampling over source ids; never [PAD] or [START]."""
        return Generator(
            self.encode, self.target_embedding, self.decoder, self.logits,
            start_token_id=START_ID, end_token_id=END_ID, pad_token_id=PAD_ID,
            suppressed_token_ids=(PAD_ID, START_ID), max_length=max_length,
            length_ratio=length_ratio, length_offset=length_offset,
        )  # fmt: skip

    def attention_weights(self, source_ids, target_in):
        """Teacher-forced attention weights `(batch, target_time, source_time)`."""
        encoding = self.encode(source_ids)
        _, weights = self.decoder(
            self.target_embedding(target_in), encoding.context["encoder_sequences"],
            initial_state=encoding.state, mask=ops.not_equal(target_in, PAD_ID),
            encoder_mask=encoding.context["encoder_mask"], training=False,
            return_attention_scores=True,
        )  # fmt: skip
        return weights

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "embedding_dropout": self.embedding_dropout,
            "units": self.units,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "bidirectional": self.bidirectional,
            "encoder_dropout": self.encoder_dropout,
            "attention": self.attention,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
        }


def build_model(config: TranslationConfig, assets: TranslationAssets) -> TranslationModel:
    """The compiled model; token accuracy is weighted by the batches' padding weights."""
    model = config.model
    translator = TranslationModel(
        len(assets.source_vocabulary), len(assets.target_vocabulary),
        embedding_dim=model.embedding_dim,
        embedding_dropout=model.embedding_dropout, units=model.units,
        num_layers=model.num_layers, cell=model.cell, bidirectional=model.bidirectional,
        encoder_dropout=model.encoder_dropout, attention=model.attention,
        dropout=model.dropout, tie_embeddings=model.tie_embeddings, name="translator",
    )  # fmt: skip
    translator.compile(
        optimizer=optimizer(config.training),
        loss=MaskedSequenceCrossentropy(pad_id=PAD_ID, label_smoothing=model.label_smoothing),
        weighted_metrics=[TokenAccuracy()],
    )
    return translator
