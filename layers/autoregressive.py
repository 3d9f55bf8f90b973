"""A recurrent decoder that feeds each forecast back as its next input."""

import keras
from keras import ops

from layers.arguments import check_positive_integers
from layers.recurrent_encoder import check_recurrent_arguments

CELL_CLASSES = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}


@keras.saving.register_keras_serializable(package="rnn_suite")
class AutoregressiveDecoder(keras.layers.Layer):
    """Forecasts `horizon` steps one at a time, feeding each prediction back as input.

    An `keras.layers.LSTMCell` or `keras.layers.GRUCell` starts from the given states (an
    encoder's final states) and the last observed values. At each step its input is the
    previous step's values (plus that step's known future covariates, when given), and a
    `keras.layers.Dense` head turns its output into the step's prediction. In training with
    `teacher_targets`, the true previous values are fed instead of the predictions (teacher
    forcing); otherwise the model runs on its own predictions, as at serving time. With
    `num_quantiles > 1` each step predicts several quantiles and feeds back the one at
    `feedback_quantile`. Dropout draws one input mask per call and uses it at every step
    (as `keras.layers.RNN` does), so no mask outlives the call. Masking: none; every step is
    forecast.

    Args:
        units: width of the recurrent cell; must equal the width of the initial states.
        output_units: how many series each step predicts.
        horizon: how many steps to forecast.
        cell: `"lstm"` or `"gru"`.
        num_quantiles: predictions per series and step.
        feedback_quantile: index of the quantile fed back (the median, usually).
        dropout: dropout rate on the cell's inputs during training (one mask for all steps).
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        last_values: float tensor `(batch, output_units)`, the last observed values.
        initial_state: list of float tensors `(batch, units)`: `[h, c]` for LSTM, `[h]`
            for GRU.
        known_future: optional float tensor `(batch, horizon, covariates)`.
        teacher_targets: optional float tensor `(batch, horizon, output_units)`, the truth;
            used only when `training` is true.
        training: whether teacher forcing and dropout are active.

    Returns:
        Float tensor `(batch, horizon, output_units)`, or
        `(batch, horizon, output_units, num_quantiles)` when `num_quantiles > 1`.

    Example:

    ```python
    history = keras.Input(shape=(48, 1))
    _, state_h, state_c = keras.layers.LSTM(32, return_state=True)(history)
    decoder = AutoregressiveDecoder(32, output_units=1, horizon=12)
    forecast = decoder(history[:, -1, :], [state_h, state_c])  # (batch, 12, 1)
    ```

    References:
        - Williams & Zipser, "A Learning Algorithm for Continually Running Fully Recurrent
          Neural Networks", 1989 (teacher forcing).
        - Salinas et al., "DeepAR: Probabilistic Forecasting with Autoregressive Recurrent
          Networks", 2020.
    """

    def __init__(
        self,
        units,
        output_units,
        horizon,
        cell="lstm",
        num_quantiles=1,
        feedback_quantile=0,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_recurrent_arguments(units, cell, dropout)
        check_positive_integers(
            output_units=output_units, horizon=horizon, num_quantiles=num_quantiles
        )
        if not 0 <= feedback_quantile < num_quantiles:
            raise ValueError(
                f"`feedback_quantile` must be in [0, {num_quantiles}). "
                f"Received: feedback_quantile={feedback_quantile!r}"
            )
        self.units = units
        self.output_units = output_units
        self.horizon = horizon
        self.cell = cell
        self.num_quantiles = num_quantiles
        self.feedback_quantile = feedback_quantile
        self.dropout = dropout
        self.recurrent_cell = CELL_CLASSES[cell](
            units, dropout=dropout, name=f"{cell}_cell", dtype=self.dtype_policy
        )
        self.output_dense = keras.layers.Dense(
            output_units * num_quantiles, name="output_dense", dtype=self.dtype_policy
        )

    def build(
        self,
        last_values_shape,
        initial_state_shape=None,
        known_future_shape=None,
        teacher_targets_shape=None,
    ):
        covariates = known_future_shape[-1] if known_future_shape is not None else 0
        self.recurrent_cell.build((None, self.output_units + covariates))
        self.output_dense.build((None, self.units))
        self.built = True

    def call(
        self, last_values, initial_state, known_future=None, teacher_targets=None, training=None
    ):
        # The cell caches its dropout mask; a mask left from another call (another graph)
        # would be out of scope here, so every call draws its own.
        self.recurrent_cell.reset_dropout_mask()
        states = list(initial_state)
        previous = last_values
        predictions = []
        for step in range(self.horizon):
            step_input = previous
            if known_future is not None:
                step_input = ops.concatenate([previous, known_future[:, step, :]], axis=-1)
            output, states = self.recurrent_cell(step_input, states, training=training)
            if not isinstance(states, (list, tuple)):
                states = [states]
            prediction = self.output_dense(output)
            if self.num_quantiles > 1:
                # (batch, output_units, num_quantiles)
                prediction = ops.reshape(prediction, (-1, self.output_units, self.num_quantiles))
                fed_back = prediction[:, :, self.feedback_quantile]
            else:
                fed_back = prediction
            predictions.append(prediction)
            if training and teacher_targets is not None:
                previous = teacher_targets[:, step, :]
            else:
                previous = fed_back
        self.recurrent_cell.reset_dropout_mask()
        return ops.stack(predictions, axis=1)  # (batch, horizon, output_units[, quantiles])

    def compute_output_shape(
        self,
        last_values_shape,
        initial_state_shape=None,
        known_future_shape=None,
        teacher_targets_shape=None,
    ):
        shape = (last_values_shape[0], self.horizon, self.output_units)
        return shape + (self.num_quantiles,) if self.num_quantiles > 1 else shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "output_units": self.output_units,
                "horizon": self.horizon,
                "cell": self.cell,
                "num_quantiles": self.num_quantiles,
                "feedback_quantile": self.feedback_quantile,
                "dropout": self.dropout,
            }
        )
        return config
