"""A stack of LSTM or GRU layers: optionally bidirectional, with residual connections."""

import keras

from layers.arguments import check_positive_integers

CELL_CLASSES = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
MERGE_MODES = ("concat", "sum", "ave", "mul")


def check_recurrent_arguments(units, cell, dropout) -> None:
    """Raises a ValueError naming the bad one of the arguments every recurrent layer here takes.

    `units` a positive integer, `cell` "lstm" or "gru", `dropout` in [0, 1).
    """
    check_positive_integers(units=units)
    if cell not in CELL_CLASSES:
        raise ValueError(f"`cell` must be one of {sorted(CELL_CLASSES)}. Received: cell={cell!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")


@keras.saving.register_keras_serializable(package="rnn_suite")
class RecurrentEncoder(keras.layers.Layer):
    """Encodes a sequence with stacked `keras.layers.LSTM` or `keras.layers.GRU` layers.

    Every recurrent layer but the last returns sequences (the last too unless
    `return_sequences=False`), and each may be wrapped in `keras.layers.Bidirectional`.
    `keras.layers.Dropout` sits between stacked layers (not after the last one). With
    `residual=True` a layer's input sequence is added to its output sequence wherever the two
    widths are equal: always from the second layer on, and on the first layer when the input
    width equals `output_units`; a last layer that returns no sequence has none. The
    recurrent layers keep cuDNN-eligible settings (tanh/sigmoid, no recurrent dropout, GRU
    `reset_after=True`).

    Masking: the incoming mask (from `Embedding(mask_zero=True)` or the `mask` call argument)
    is passed to every recurrent layer, so padded steps do not change the states, and it is
    propagated to the output sequences (if any). Masks must be right-padded for the fused GPU
    kernels. Final states are those of the last valid step.

    Args:
        units: width of each recurrent layer (per direction).
        num_layers: how many recurrent layers to stack.
        cell: `"lstm"` or `"gru"`.
        bidirectional: wrap every recurrent layer in `keras.layers.Bidirectional`.
        merge_mode: how `Bidirectional` merges the two directions' sequences:
            `"concat"`, `"sum"`, `"ave"` or `"mul"`.
        residual: add each layer's input to its output when their widths are equal.
        dropout: dropout rate applied between stacked layers during training.
        return_sequences: `False` returns only the last layer's final output, computed
            without materializing its sequence (for a bidirectional encoder, the forward
            direction after the last valid step and the backward one after the first).
        return_state: also return the final states of the last layer.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, features)`.
        mask: optional boolean tensor `(batch, time)`, True on valid steps.
        training: whether dropout is active.

    Returns:
        `sequences` of shape `(batch, time, output_units)`, where `output_units` is
        `2 * units` for a bidirectional encoder with `merge_mode="concat"` and `units`
        otherwise; with `return_sequences=False`, the final output `(batch, output_units)`
        instead. With `return_state=True`, `(sequences, states)`: `states` is the last
        layer's final states, `[h, c]` for LSTM and `[h]` for GRU, each `(batch, state_units)`.
        For a bidirectional encoder each state is the forward and backward states
        concatenated, so `state_units = 2 * units`, ready to start a decoder of that width.

    Example:

    ```python
    tokens = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(1000, 32, mask_zero=True)(tokens)
    encoder = RecurrentEncoder(64, num_layers=2, bidirectional=True, return_state=True)
    sequences, (state_h, state_c) = encoder(embedded)  # (batch, time, 128), (batch, 128)
    ```

    References:
        - Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997.
        - Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
          Statistical Machine Translation", 2014.
        - Schuster & Paliwal, "Bidirectional Recurrent Neural Networks", 1997.
        - Wu et al., "Google's Neural Machine Translation System", 2016 (residual stacking).
    """

    def __init__(
        self,
        units,
        num_layers=1,
        cell="lstm",
        bidirectional=False,
        merge_mode="concat",
        residual=True,
        dropout=0.0,
        return_sequences=True,
        return_state=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_recurrent_arguments(units, cell, dropout)
        check_positive_integers(num_layers=num_layers)
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"`merge_mode` must be one of {list(MERGE_MODES)}. "
                f"Received: merge_mode={merge_mode!r}"
            )
        self.units = units
        self.num_layers = num_layers
        self.cell = cell
        self.bidirectional = bidirectional
        self.merge_mode = merge_mode
        self.residual = residual
        self.dropout = dropout
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.supports_masking = True

        self.recurrent_layers = []
        for index in range(num_layers):
            recurrent_layer = CELL_CLASSES[cell](
                units,
                return_sequences=return_sequences or index < num_layers - 1,
                return_state=return_state and index == num_layers - 1,
                name=f"{cell}_{index}",
                dtype=self.dtype_policy,
            )
            if bidirectional:
                recurrent_layer = keras.layers.Bidirectional(
                    recurrent_layer,
                    merge_mode=merge_mode,
                    name=f"bidirectional_{cell}_{index}",
                    dtype=self.dtype_policy,
                )
            self.recurrent_layers.append(recurrent_layer)
        self.dropout_layers = [
            keras.layers.Dropout(dropout, name=f"dropout_{index}", dtype=self.dtype_policy)
            for index in range(num_layers - 1)
        ]

    @property
    def output_units(self):
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * self.units
        return self.units

    @property
    def state_units(self):
        return 2 * self.units if self.bidirectional else self.units

    @property
    def num_states(self):
        return 2 if self.cell == "lstm" else 1

    def build(self, input_shape):
        sequence_shape = tuple(input_shape)
        self.residual_flags = []
        for index, recurrent_layer in enumerate(self.recurrent_layers):
            recurrent_layer.build(sequence_shape)
            returns_sequence = self.return_sequences or index < self.num_layers - 1
            self.residual_flags.append(
                self.residual and returns_sequence and sequence_shape[-1] == self.output_units
            )
            sequence_shape = sequence_shape[:-1] + (self.output_units,)
        self.built = True

    def call(self, inputs, mask=None, training=None):
        sequences = inputs
        states = []
        for index, recurrent_layer in enumerate(self.recurrent_layers):
            layer_inputs = sequences
            outputs = recurrent_layer(layer_inputs, mask=mask, training=training)
            if isinstance(outputs, (list, tuple)):
                sequences, *states = outputs
            else:
                sequences = outputs
            if self.residual_flags[index]:
                sequences = keras.ops.add(sequences, layer_inputs)
            if index < self.num_layers - 1:
                sequences = self.dropout_layers[index](sequences, training=training)
        if not self.return_state:
            return sequences
        if self.bidirectional:
            forward_states = states[: self.num_states]
            backward_states = states[self.num_states :]
            states = [
                keras.ops.concatenate([forward, backward], axis=-1)
                for forward, backward in zip(forward_states, backward_states, strict=True)
            ]
        return sequences, states

    def compute_mask(self, inputs, mask=None):
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return output_mask, [None] * self.num_states
        return output_mask

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            sequence_shape = tuple(input_shape[:-1]) + (self.output_units,)
        else:
            sequence_shape = (input_shape[0], self.output_units)
        if not self.return_state:
            return sequence_shape
        state_shape = (input_shape[0], self.state_units)
        return sequence_shape, [state_shape] * self.num_states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_layers": self.num_layers,
                "cell": self.cell,
                "bidirectional": self.bidirectional,
                "merge_mode": self.merge_mode,
                "residual": self.residual,
                "dropout": self.dropout,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
            }
        )
        return config
