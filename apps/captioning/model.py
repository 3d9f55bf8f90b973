"""The captioning model: images -> image encoder (a feature grid) -> attention decoder -> logits.

`build_model` returns the compiled teacher-forcing `CaptionModel`; its `generator` runs the
same layers for greedy search, beam search and sampling over images (`layers.generation`), one
graph call per batch (used by evaluate and the export). With a frozen, cached backbone the
training model takes the cached features instead of images; its image encoder is still part
of it (and of its checkpoint), so generation and the export start from images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
from keras import ops

from apps.core.training import optimizer
from layers.attention_decoder import AttentionDecoder
from layers.backbone import ImageEncoder, build_optimizer_with_image_encoders
from layers.generation import Encoding, Generator, attention_context
from layers.losses import MaskedSequenceCrossentropy, TokenAccuracy
from pipelines.tokenizers import END_ID, PAD_ID, START_ID

if TYPE_CHECKING:
    from apps.captioning.config import CaptioningConfig
    from apps.captioning.data import CaptioningAssets


@keras.saving.register_keras_serializable(package="rnn_suite")
class CaptionModel(keras.Model):
    """`{"image" or "features", "caption_in"}` -> logits `(batch, time, vocabulary)`.

    The image encoder turns images `(batch, height, width, 3)` into a grid of features flattened
    to `(batch, cells, features)` (`layers.backbone.ImageEncoder`); they are layer-normalized,
    their mean over the cells sets the decoder's initial state (one tanh Dense per state), and
    the attention decoder reads the caption's previous tokens (teacher forcing) while attending
    over the cells. With `takes_features=True` the model's input is the encoder's output
    `"features"` (a feature cache) and the encoder, kept as an attribute, is used by `encode`
    alone. A functional model that keeps its layers as attributes (as `TranslationModel`).
    Masking: id 0 is caption padding; every cell is valid. The logits are float32.

    Args:
        vocabulary_size: caption vocabulary size, reserved ids included.
        backbone, image_size, backbone_filters: the `ImageEncoder`'s `backbone`, `image_size`
            and `filters`.
        backbone_weights: the encoder's starting weights (`None`, `"imagenet"`, a file); not
            in the config, they are saved with the model.
        backbone_trainable: False freezes the encoder.
        takes_features: take cached encoder features instead of images.
        embedding_dim: width of the caption embedding.
        cell, units, attention, dropout: the `AttentionDecoder`'s.
        **kwargs: standard `keras.Model` arguments (`name`, `dtype`, ...).

    References:
        - Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual
          Attention", 2015.
    """

    def __init__(
        self,
        vocabulary_size,
        backbone="small_cnn",
        image_size=(64, 64),
        backbone_filters=(32, 64, 128),
        backbone_weights=None,
        backbone_trainable=True,
        takes_features=False,
        embedding_dim=128,
        cell="lstm",
        units=256,
        attention="additive",
        dropout=0.0,
        **kwargs,
    ):
        image_encoder = ImageEncoder(
            backbone, image_size, backbone_filters, pretrained_weights=backbone_weights,
            trainable=backbone_trainable, name="image_encoder",
        )  # fmt: skip
        height, width = image_size
        if takes_features:
            image_encoder.build((None, height, width, 3))
            encoder_input = keras.Input(
                shape=(image_encoder.cells, image_encoder.features), name="features"
            )
            grid = encoder_input
        else:
            encoder_input = keras.Input(shape=(height, width, 3), name="image")
            grid = image_encoder(encoder_input)
        feature_norm = keras.layers.LayerNormalization(name="feature_norm")
        initial_state_layers = [
            keras.layers.Dense(units, activation="tanh", name=f"initial_state_{index}")
            for index in range(2 if cell == "lstm" else 1)
        ]
        caption_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, name="caption_embedding"
        )
        decoder = AttentionDecoder(
            units, cell=cell, attention=attention, dropout=dropout, name="decoder"
        )
        logits_layer = keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")
        caption_in = keras.Input(shape=(None,), dtype="int32", name="caption_in")
        grid = feature_norm(grid)
        pooled = ops.mean(grid, axis=1)
        decoded = decoder(
            caption_embedding(caption_in),
            grid,
            initial_state=[layer(pooled) for layer in initial_state_layers],
        )
        inputs = {
            "features" if takes_features else "image": encoder_input,
            "caption_in": caption_in,
        }
        super().__init__(inputs, logits_layer(decoded), **kwargs)
        self.vocabulary_size = vocabulary_size
        self.backbone = backbone
        self.image_size = tuple(image_size)
        self.backbone_filters = tuple(backbone_filters)
        self.backbone_weights = backbone_weights
        self.takes_features = takes_features
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.units = units
        self.attention = attention
        self.dropout = dropout
        self.image_encoder = image_encoder
        self.feature_norm = feature_norm
        self.initial_state_layers = initial_state_layers
        self.caption_embedding = caption_embedding
        self.decoder = decoder
        self.logits = logits_layer

    def encode_features(self, features) -> Encoding:
        """Encoder features `(batch, cells, features)` -> the decoder's state and context."""
        grid = self.feature_norm(features)
        pooled = ops.mean(grid, axis=1)
        state = [layer(pooled) for layer in self.initial_state_layers]
        return Encoding(state, attention_context(self.decoder, grid))

    def encode(self, images) -> Encoding:
        """Images `(batch, height, width, 3)` -> the decoder's initial state and context."""
        return self.encode_features(self.image_encoder(images, training=False))

    def generator(self, max_length: int) -> Generator:
        """Greedy search, beam search and sampling over images; never [PAD] or [START]."""
        return Generator(
            self.encode, self.caption_embedding, self.decoder, self.logits,
            start_token_id=START_ID, end_token_id=END_ID, pad_token_id=PAD_ID,
            suppressed_token_ids=(PAD_ID, START_ID), max_length=max_length,
        )  # fmt: skip

    def attention_weights(self, images, caption_in):
        """Teacher-forced attention weights `(batch, caption_time, cells)`."""
        encoding = self.encode(images)
        _, weights = self.decoder(
            self.caption_embedding(caption_in), encoding.context["encoder_sequences"],
            initial_state=encoding.state, mask=ops.not_equal(caption_in, PAD_ID),
            training=False, return_attention_scores=True,
        )  # fmt: skip
        return weights

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "backbone": self.backbone,
            "image_size": list(self.image_size),
            "backbone_filters": list(self.backbone_filters),
            "backbone_trainable": self.image_encoder.trainable,
            "takes_features": self.takes_features,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "units": self.units,
            "attention": self.attention,
            "dropout": self.dropout,
        }


def caches_features(config: CaptioningConfig) -> bool:
    """Whether training takes cached features: a backbone frozen for the whole run."""
    return config.model.backbone_training == "frozen" and config.model.cache_features


def caption_model(config: CaptioningConfig, vocabulary_size: int) -> CaptionModel:
    """The uncompiled model, its image encoder made right after seeding with `training.seed`.

    So the image encoder of the feature cache (`data.py`, `image_encoder`) and of the model
    start from the same weights, pretrained or random.
    """
    model = config.model
    keras.utils.set_random_seed(config.training.seed)
    return CaptionModel(
        vocabulary_size, backbone=model.backbone, image_size=(config.data.image_size,) * 2,
        backbone_filters=model.small_cnn_filters, backbone_weights=model.backbone_weights,
        backbone_trainable=model.backbone_training == "fine_tune",
        takes_features=caches_features(config), embedding_dim=model.embedding_dim,
        cell=model.cell, units=model.units, attention=model.attention, dropout=model.dropout,
        name="captioner",
    )  # fmt: skip


def image_encoder(config: CaptioningConfig) -> ImageEncoder:
    """The image encoder `caption_model(config, ...)` starts with (for the feature cache)."""
    model = config.model
    keras.utils.set_random_seed(config.training.seed)
    return ImageEncoder(
        model.backbone, (config.data.image_size,) * 2, model.small_cnn_filters,
        pretrained_weights=model.backbone_weights, trainable=False, name="image_encoder",
    )  # fmt: skip


def build_model(config: CaptioningConfig, assets: CaptioningAssets) -> CaptionModel:
    """The compiled model; token accuracy is weighted by the batches' padding weights.

    A backbone frozen for the first epochs is in the optimizer from the start, so unfreezing
    it (`layers.backbone.UnfreezeBackbone`) needs no new optimizer.
    """
    captioner = caption_model(config, len(assets.vocabulary))
    captioner.compile(
        optimizer=optimizer(config.training),
        loss=MaskedSequenceCrossentropy(
            pad_id=PAD_ID, label_smoothing=config.model.label_smoothing
        ),
        weighted_metrics=[TokenAccuracy()],
    )
    if config.model.backbone_training == "frozen_then_fine_tune":
        build_optimizer_with_image_encoders(captioner)
    return captioner
