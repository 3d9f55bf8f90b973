"""The reference for the translation benchmarks, written plainly after the TensorFlow tutorial.

"Neural machine translation with attention" (tensorflow.org/text/tutorials/nmt_with_attention):
word-level `TextVectorization` (5,000 words; NFKD, lower-case, only a-z and . ? ! , kept),
a bidirectional GRU encoder (directions summed), a GRU decoder started from zeros, one
cross-attention block (`MultiHeadAttention` with one head, residual, layer norm), masked
loss and accuracy, Adam, and greedy decoding as one `tf.function` holding a batched loop.

`embedding_dim` (default: `units`) and `max_output_tokens` are arguments so that
`translation_speed.py` can build it at the app's size and decode the same number of steps.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_text as text

MAX_OUTPUT_TOKENS = 50


def standardize(texts):
    texts = text.normalize_utf8(texts, "NFKD")
    texts = tf.strings.lower(texts)
    texts = tf.strings.regex_replace(texts, "[^ a-z.?!,¿]", "")
    texts = tf.strings.regex_replace(texts, "[.?!,¿]", r" \0 ")
    texts = tf.strings.strip(texts)
    return tf.strings.join(["[START]", texts, "[END]"], separator=" ")


def masked_loss(y_true, y_pred):
    losses = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    mask = tf.cast(y_true != 0, losses.dtype)
    return tf.reduce_sum(losses * mask) / tf.reduce_sum(mask)


def masked_accuracy(y_true, y_pred):
    predicted = tf.cast(tf.argmax(y_pred, axis=-1), y_true.dtype)
    mask = tf.cast(y_true != 0, tf.float32)
    return tf.reduce_sum(tf.cast(predicted == y_true, tf.float32) * mask) / tf.reduce_sum(mask)


class Translator(keras.Model):
    def __init__(
        self, context_vectorizer, target_vectorizer, units=256, embedding_dim=None,
        max_output_tokens=MAX_OUTPUT_TOKENS,
    ):  # fmt: skip
        super().__init__()
        embedding_dim = embedding_dim or units
        self.max_output_tokens = max_output_tokens
        self.context_vectorizer = context_vectorizer
        self.target_vectorizer = target_vectorizer
        self.words = tf.constant(target_vectorizer.get_vocabulary())
        self.start_id = target_vectorizer.get_vocabulary().index("[START]")
        self.end_id = target_vectorizer.get_vocabulary().index("[END]")
        vocabulary_size = target_vectorizer.vocabulary_size()
        self.context_embedding = keras.layers.Embedding(
            context_vectorizer.vocabulary_size(), embedding_dim, mask_zero=True
        )
        self.encoder = keras.layers.Bidirectional(
            keras.layers.GRU(units, return_sequences=True), merge_mode="sum"
        )
        self.target_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True
        )
        self.decoder = keras.layers.GRU(units, return_sequences=True, return_state=True)
        self.attention = keras.layers.MultiHeadAttention(key_dim=units, num_heads=1)
        self.add = keras.layers.Add()
        self.norm = keras.layers.LayerNormalization()
        self.output_layer = keras.layers.Dense(vocabulary_size)

    @classmethod
    def from_pairs(cls, pairs, units=256, vocabulary_size=5000, **kwargs):
        vectorizers = []
        for side in (0, 1):
            vectorizer = keras.layers.TextVectorization(
                max_tokens=vocabulary_size, standardize=standardize, ragged=True
            )
            vectorizer.adapt(tf.data.Dataset.from_tensor_slices(
                [pair[side] for pair in pairs]).batch(256))  # fmt: skip
            vectorizers.append(vectorizer)
        return cls(*vectorizers, units=units, **kwargs)

    def encode(self, context_ids):
        return self.encoder(self.context_embedding(context_ids))

    def decode(self, context, context_ids, target_ids, state=None):
        embedded = self.target_embedding(target_ids)
        sequences, state = self.decoder(embedded, initial_state=state)
        attended = self.attention(
            query=sequences, value=context,
            attention_mask=tf.cast(context_ids != 0, tf.bool)[:, None, :],
        )  # fmt: skip
        sequences = self.norm(self.add([sequences, attended]))
        return self.output_layer(sequences), state

    def call(self, inputs):
        context_ids, target_in = inputs
        logits, _ = self.decode(self.encode(context_ids), context_ids, target_in)
        return logits

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def translate_graph(self, sources):
        context_ids = self.context_vectorizer(sources).to_tensor()
        context = self.encode(context_ids)
        batch = tf.shape(sources)[0]
        tokens = tf.fill([batch, 1], tf.constant(self.start_id, tf.int64))
        done = tf.zeros([batch], tf.bool)
        state = tf.zeros([batch, self.decoder.units])
        outputs = tf.TensorArray(tf.int64, size=self.max_output_tokens)
        for step in tf.range(self.max_output_tokens):
            logits, state = self.decode(context, context_ids, tokens, state)
            tokens = tf.argmax(logits, axis=-1)
            done = tf.logical_or(done, tokens[:, 0] == self.end_id)
            outputs = outputs.write(step, tf.where(done, tf.constant(0, tf.int64), tokens[:, 0]))
            if tf.reduce_all(done):
                break
        ids = tf.transpose(outputs.stack())  # (batch, time)
        words = tf.gather(self.words, ids)
        words = tf.where(ids == 0, tf.constant(""), words)
        return tf.strings.strip(tf.strings.reduce_join(words, axis=-1, separator=" "))

    def translate(self, sources):
        return [sentence.decode() for sentence in self.translate_graph(sources).numpy()]


def make_dataset(model, pairs, shuffle, batch_size=64):
    dataset = tf.data.Dataset.from_tensor_slices(
        ([pair[0] for pair in pairs], [pair[1] for pair in pairs])
    )
    if shuffle:
        dataset = dataset.shuffle(len(pairs), seed=0)

    def vectorize(context, target):
        context = model.context_vectorizer(context).to_tensor()
        target = model.target_vectorizer(target)
        return (context, target[:, :-1].to_tensor()), target[:, 1:].to_tensor()

    return dataset.batch(batch_size).map(vectorize, tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
