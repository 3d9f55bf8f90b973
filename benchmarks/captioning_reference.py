"""The reference for the captioning benchmarks, written plainly after keras.io's example.

"Image Captioning" (keras.io/examples/vision/image_captioning): a CNN's feature grid reshaped
into a sequence, one Transformer encoder block over it (layer norm, a ReLU Dense, one-head
self-attention, residual, layer norm), one Transformer decoder block (token and position
embeddings scaled by sqrt(width), causal two-head self-attention, two-head cross-attention
over the encoded grid, a ReLU feed-forward layer, each with residual and layer norm,
dropout 0.1/0.3/0.5 as there), a masked cross-entropy, Adam with a linear warm-up over the
first 1/15 of the planned steps to 1e-4 then constant, width 512, and greedy decoding that
runs the decoder over the whole prefix at every step.

What differs, so that it measures the same thing as the app: the CNN is the app's backbone
(`layers.backbone.make_backbone`, the same architecture, input size and seed, frozen or
trained as the app's config says) instead of an ImageNet EfficientNetB0, the images come
through the app's pipeline (`image_preprocessing`), there is no image augmentation (flips
would turn "facing right" names into wrong captions), one caption per image is read per
step (emoji have one), the words are the app's canonical captions split at spaces (so its
outputs and the app's compare with the same references), and greedy decoding is one batched
`tf.function` with a `tf.while_loop` that stops when every caption has ended.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from layers.backbone import make_backbone

START, END = "[START]", "[END]"


class TransformerEncoderBlock(keras.layers.Layer):
    def __init__(self, embed_dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.attention_1 = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.layernorm_1 = keras.layers.LayerNormalization()
        self.layernorm_2 = keras.layers.LayerNormalization()
        self.dense_1 = keras.layers.Dense(embed_dim, activation="relu")

    def call(self, inputs, training=None):
        inputs = self.dense_1(self.layernorm_1(inputs))
        attended = self.attention_1(query=inputs, value=inputs, key=inputs, training=training)
        return self.layernorm_2(inputs + attended)


class PositionalEmbedding(keras.layers.Layer):
    def __init__(self, sequence_length, vocabulary_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_embeddings = keras.layers.Embedding(vocabulary_size, embed_dim)
        self.position_embeddings = keras.layers.Embedding(sequence_length, embed_dim)
        self.embed_scale = float(embed_dim) ** 0.5

    def call(self, inputs):
        positions = tf.range(tf.shape(inputs)[-1])
        return self.token_embeddings(inputs) * self.embed_scale + self.position_embeddings(
            positions
        )


class TransformerDecoderBlock(keras.layers.Layer):
    def __init__(self, embed_dim, ff_dim, num_heads, sequence_length, vocabulary_size, **kwargs):
        super().__init__(**kwargs)
        self.embedding = PositionalEmbedding(sequence_length, vocabulary_size, embed_dim)
        self.attention_1 = keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim, dropout=0.1
        )
        self.attention_2 = keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embed_dim, dropout=0.1
        )
        self.ffn_layer_1 = keras.layers.Dense(ff_dim, activation="relu")
        self.ffn_layer_2 = keras.layers.Dense(embed_dim)
        self.layernorm_1 = keras.layers.LayerNormalization()
        self.layernorm_2 = keras.layers.LayerNormalization()
        self.layernorm_3 = keras.layers.LayerNormalization()
        self.dropout_1 = keras.layers.Dropout(0.3)
        self.dropout_2 = keras.layers.Dropout(0.5)
        self.out = keras.layers.Dense(vocabulary_size)

    def call(self, inputs, encoder_outputs, training=None):
        inputs = self.embedding(inputs)
        # Causal: a position sees itself and the ones before; padding comes after the words,
        # so no word attends to it.
        attended = self.attention_1(
            query=inputs, value=inputs, key=inputs, use_causal_mask=True, training=training
        )
        out_1 = self.layernorm_1(inputs + attended)
        attended = self.attention_2(
            query=out_1, value=encoder_outputs, key=encoder_outputs, training=training
        )
        out_2 = self.layernorm_2(out_1 + attended)
        feed_forward = self.ffn_layer_2(self.dropout_1(self.ffn_layer_1(out_2), training=training))
        feed_forward = self.dropout_2(self.layernorm_3(feed_forward + out_2), training=training)
        return self.out(feed_forward)


class ImageCaptioningModel(keras.Model):
    """`(images, caption_in)` -> logits; `caption(images)` decodes greedily in one graph."""

    def __init__(
        self, vectorizer, backbone, image_size, filters, backbone_trainable, embed_dim=512,
        ff_dim=512, sequence_length=24,
    ):  # fmt: skip
        super().__init__()
        self.vectorizer = vectorizer
        self.sequence_length = sequence_length
        vocabulary = vectorizer.get_vocabulary()
        self.words = tf.constant(vocabulary)
        self.start_id = vocabulary.index(START.lower())
        self.end_id = vocabulary.index(END.lower())
        self.cnn_model = make_backbone(backbone, (image_size, image_size), filters=filters)
        self.cnn_model.trainable = backbone_trainable
        self.encoder = TransformerEncoderBlock(embed_dim, num_heads=1)
        self.decoder = TransformerDecoderBlock(
            embed_dim, ff_dim, num_heads=2, sequence_length=sequence_length,
            vocabulary_size=len(vocabulary),
        )  # fmt: skip

    def encode(self, images, training=None):
        grid = self.cnn_model(images, training=training)
        cells = grid.shape[1] * grid.shape[2]
        features = tf.reshape(grid, (-1, cells, grid.shape[-1]))  # (batch, cells, features)
        return self.encoder(features, training=training)

    def call(self, inputs, training=None):
        images, caption_in = inputs
        return self.decoder(caption_in, self.encode(images, training), training=training)

    def caption(self, images):
        """Greedy captions `(batch,)` of preprocessed images `(batch, height, width, 3)`."""
        encoded = self.encode(images, training=False)
        batch = tf.shape(images)[0]
        steps = self.sequence_length - 1
        tokens = tf.fill([batch, 1], tf.constant(self.start_id, tf.int64))
        done = tf.zeros([batch], tf.bool)
        for step in tf.range(steps):
            tf.autograph.experimental.set_loop_options(
                shape_invariants=[(tokens, tf.TensorShape([None, None]))]
            )
            logits = self.decoder(tokens, encoded, training=False)
            next_tokens = tf.argmax(logits[:, step, :], axis=-1)
            next_tokens = tf.where(done, tf.constant(0, tf.int64), next_tokens)
            done = tf.logical_or(done, next_tokens == self.end_id)
            tokens = tf.concat([tokens, next_tokens[:, None]], axis=1)
            if tf.reduce_all(done):
                break
        ids = tokens[:, 1:]
        words = tf.gather(self.words, ids)
        keep = tf.logical_and(ids != 0, ids != self.end_id)
        words = tf.where(keep, words, tf.constant(""))
        captions = tf.strings.reduce_join(words, axis=-1, separator=" ")
        return tf.strings.strip(tf.strings.regex_replace(captions, " +", " "))


def make_vectorizer(captions: list[str], sequence_length: int) -> keras.layers.TextVectorization:
    """Words of the (canonical) captions split at spaces, `[START]`/`[END]` around each."""
    vectorizer = keras.layers.TextVectorization(
        standardize="lower", split="whitespace", output_sequence_length=sequence_length
    )
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(with_start_end(captions)).batch(256))
    return vectorizer


def with_start_end(captions: list[str]) -> list[str]:
    return [f"{START} {caption} {END}" for caption in captions]


def masked_loss(y_true, y_pred):
    losses = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    mask = tf.cast(y_true != 0, losses.dtype)
    return tf.reduce_sum(losses * mask) / tf.reduce_sum(mask)


def masked_accuracy(y_true, y_pred):
    predicted = tf.cast(tf.argmax(y_pred, axis=-1), y_true.dtype)
    mask = tf.cast(y_true != 0, tf.float32)
    return tf.reduce_sum(tf.cast(predicted == y_true, tf.float32) * mask) / tf.reduce_sum(mask)


class LRSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """keras.io's: linear warm-up to `post_warmup_learning_rate`, then constant."""

    def __init__(self, post_warmup_learning_rate, warmup_steps):
        super().__init__()
        self.post_warmup_learning_rate = post_warmup_learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self.post_warmup_learning_rate * step / float(self.warmup_steps)
        return tf.where(step < self.warmup_steps, warmup, self.post_warmup_learning_rate)

    def get_config(self):
        return {
            "post_warmup_learning_rate": self.post_warmup_learning_rate,
            "warmup_steps": self.warmup_steps,
        }


def make_dataset(model, preprocess, paths, captions, batch_size, shuffle_seed=None):
    """`((images, caption_in), caption_out)` batches, one per (image, caption) pair."""
    dataset = tf.data.Dataset.from_tensor_slices((paths, with_start_end(captions)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)

    def to_example(path, caption):
        ids = model.vectorizer(caption)
        return (preprocess(tf.io.read_file(path)), ids[:-1]), ids[1:]

    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
