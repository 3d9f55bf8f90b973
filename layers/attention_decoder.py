"""A recurrent decoder that attends over encoder outputs (Bahdanau or Luong scores)."""

import keras

from layers.recurrent_encoder import CELL_CLASSES, check_recurrent_arguments

ATTENTION_TYPES = ("additive", "multiplicative")


@keras.saving.register_keras_serializable(package="rnn_suite")
class AttentionDecoder(keras.layers.Layer):
    """Runs an LSTM or GRU over the decoder inputs and attends over encoder outputs.

    At every target step `t` the recurrent layer turns the input and the previous state into
    `h_t`; `h_t` then queries the encoder outputs `s_1..s_S`:

    - `attention="additive"` (Bahdanau): `score(h_t, s_j) = v . tanh(W_q h_t + W_k s_j)`,
      computed by `keras.layers.AdditiveAttention`;
    - `attention="multiplicative"` (Luong "general"): `score(h_t, s_j) = h_t . W_k s_j`,
      computed by `keras.layers.Attention`.

    The weights `a_t = softmax(score)` give the context `c_t = sum_j a_tj s_j`, and the output
    is `LayerNorm(h_t + tanh(W_c [c_t; h_t]))`: Luong et al.'s attentional state added to `h_t`
    and normalized (with the plain attentional state a model learned about half as much in its
    first epoch on ding-de-en), followed by dropout. The
    attention follows the recurrent step (no input feeding), so training runs the recurrent
    layer over the whole target sequence at once and keeps it cuDNN-eligible. `step` runs one
    target step with the layer's cell, for greedy or beam search.

    Masking: `encoder_mask` (True on valid source steps) gives padded source steps zero
    attention weight; `mask` (True on valid target steps, e.g. from
    `Embedding(mask_zero=True)`) keeps padded target steps from changing the state and zeroes
    their outputs. The encoder can be any sequence model (a recurrent encoder, image features
    flattened to a sequence), with its mask.

    Args:
        units: width of the recurrent layer, the attention and the outputs. The initial state
            must have this width.
        cell: `"lstm"` or `"gru"`.
        attention: `"additive"` (Bahdanau) or `"multiplicative"` (Luong).
        dropout: dropout rate on the outputs during training.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, target_time, features)`, the embedded decoder inputs.
        encoder_sequences: float tensor `(batch, source_time, encoder_units)`.
        initial_state: optional list of `(batch, units)` tensors: `[h, c]` for LSTM, `[h]`
            for GRU. Zeros when omitted.
        mask: optional boolean tensor `(batch, target_time)`.
        encoder_mask: optional boolean tensor `(batch, source_time)`.
        training: whether dropout is active.
        return_attention_scores: also return the attention weights.

    Returns:
        `outputs` of shape `(batch, target_time, units)`; with `return_attention_scores=True`,
        `(outputs, weights)` with weights of shape `(batch, target_time, source_time)`.

    Example:

    ```python
    source = keras.Input(shape=(None,), dtype="int32")
    target = keras.Input(shape=(None,), dtype="int32")
    encoder_sequences = keras.layers.Embedding(100, 16)(source)
    decoder_inputs = keras.layers.Embedding(100, 16, mask_zero=True)(target)
    outputs = AttentionDecoder(32)(
        decoder_inputs, encoder_sequences, encoder_mask=keras.ops.not_equal(source, 0)
    )  # (batch, target_time, 32)
    ```

    References:
        - Bahdanau et al., "Neural Machine Translation by Jointly Learning to Align and
          Translate", 2015.
        - Luong et al., "Effective Approaches to Attention-based Neural Machine Translation",
          2015.
        - Ba et al., "Layer Normalization", 2016.
    """

    def __init__(self, units, cell="lstm", attention="additive", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        check_recurrent_arguments(units, cell, dropout)
        if attention not in ATTENTION_TYPES:
            raise ValueError(
                f"`attention` must be one of {list(ATTENTION_TYPES)}. "
                f"Received: attention={attention!r}"
            )
        self.units = units
        self.cell = cell
        self.attention = attention
        self.dropout = dropout
        self.supports_masking = True

        self.recurrent_layer = CELL_CLASSES[cell](
            units, return_sequences=True, return_state=True, name=cell, dtype=self.dtype_policy
        )
        self.key_projection = keras.layers.Dense(
            units, use_bias=False, name="key_projection", dtype=self.dtype_policy
        )
        if attention == "additive":
            self.query_projection = keras.layers.Dense(
                units, use_bias=False, name="query_projection", dtype=self.dtype_policy
            )
            self.attention_layer = keras.layers.AdditiveAttention(
                name="attention", dtype=self.dtype_policy
            )
        else:
            self.query_projection = None
            self.attention_layer = keras.layers.Attention(name="attention", dtype=self.dtype_policy)
        self.output_projection = keras.layers.Dense(
            units, activation="tanh", name="output_projection", dtype=self.dtype_policy
        )
        self.output_norm = keras.layers.LayerNormalization(
            name="output_norm", dtype=self.dtype_policy
        )
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout", dtype=self.dtype_policy)

    @property
    def num_states(self):
        return 2 if self.cell == "lstm" else 1

    def build(self, inputs_shape, encoder_sequences_shape, initial_state_shape=None):
        inputs_shape = tuple(inputs_shape)
        encoder_sequences_shape = tuple(encoder_sequences_shape)
        query_shape = inputs_shape[:-1] + (self.units,)
        self.recurrent_layer.build(inputs_shape)
        self.key_projection.build(encoder_sequences_shape)
        if self.query_projection is not None:
            self.query_projection.build(query_shape)
        key_shape = encoder_sequences_shape[:-1] + (self.units,)
        self.attention_layer.build([query_shape, encoder_sequences_shape, key_shape])
        self.output_projection.build(
            inputs_shape[:-1] + (self.units + encoder_sequences_shape[-1],)
        )
        self.output_norm.build(query_shape)
        self.built = True

    def attention_keys(self, encoder_sequences):
        """Projects the encoder outputs once; pass the result to `step` at every step."""
        return self.key_projection(encoder_sequences)

    def attend(
        self, query, encoder_sequences, keys, query_mask=None, encoder_mask=None, training=None
    ):
        """Returns `(outputs, weights)` for queries `(batch, target_time, units)`."""
        projected_query = query
        if self.query_projection is not None:
            projected_query = self.query_projection(query)
        context, weights = self.attention_layer(
            [projected_query, encoder_sequences, keys],
            mask=[query_mask, encoder_mask],
            return_attention_scores=True,
        )
        attentional = self.output_projection(keras.ops.concatenate([context, query], axis=-1))
        outputs = self.output_norm(query + attentional)
        return self.dropout_layer(outputs, training=training), weights

    def step(self, inputs, states, encoder_sequences, keys, encoder_mask=None):
        """Runs one target step at inference.

        `inputs` is `(batch, features)`, `states` the list of recurrent states and `keys`
        the output of `attention_keys`. Returns `(outputs, new_states, weights)` with
        outputs `(batch, units)` and weights `(batch, source_time)`.
        """
        hidden, new_states = self.recurrent_layer.cell(inputs, list(states), training=False)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        query = keras.ops.expand_dims(hidden, axis=1)  # (batch, 1, units)
        outputs, weights = self.attend(
            query, encoder_sequences, keys, encoder_mask=encoder_mask, training=False
        )
        # (batch, units), (batch, source_time)
        return outputs[:, 0, :], list(new_states), weights[:, 0, :]

    def call(
        self,
        inputs,
        encoder_sequences,
        initial_state=None,
        mask=None,
        encoder_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        sequences, *_ = self.recurrent_layer(
            inputs, initial_state=initial_state, mask=mask, training=training
        )
        keys = self.attention_keys(encoder_sequences)
        outputs, weights = self.attend(
            sequences,
            encoder_sequences,
            keys,
            query_mask=mask,
            encoder_mask=encoder_mask,
            training=training,
        )
        if mask is not None:
            outputs = outputs * keras.ops.cast(mask, outputs.dtype)[:, :, None]
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "cell": self.cell,
                "attention": self.attention,
                "dropout": self.dropout,
            }
        )
        return config
