"""A linear autoregressive shortcut for forecasting models."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnn_suite")
class LinearHighway(keras.layers.Layer):
    """Forecasts every series linearly from its own last `window` values.

    One `keras.layers.Dense` maps the last `window` steps of a series to its next `horizon`
    steps, with the same weights for every series (as LSTNet's highway). Added to a recurrent
    forecast it carries the level and scale that saturating units miss. Masking: none; the
    input is a full history.

    Args:
        window: how many of the latest steps the forecast reads.
        horizon: how many steps it forecasts.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, series)` with `time >= window`.

    Returns:
        Float tensor `(batch, horizon, series)`.

    Example:

    ```python
    history = keras.Input(shape=(48, 2))
    linear_forecast = LinearHighway(window=24, horizon=12)(history)  # (batch, 12, 2)
    ```

    References:
        - Lai et al., "Modeling Long- and Short-Term Temporal Patterns with Deep Neural
          Networks" (LSTNet), 2018.
    """

    def __init__(self, window, horizon, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("window", window), ("horizon", horizon)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        self.window = window
        self.horizon = horizon
        self.dense = keras.layers.Dense(horizon, name="dense")

    def build(self, input_shape):
        if input_shape[1] is not None and input_shape[1] < self.window:
            raise ValueError(
                f"`window` ({self.window}) is longer than the input's {input_shape[1]} steps."
            )
        self.dense.build((None, self.window))
        self.built = True

    def call(self, inputs):
        latest = ops.transpose(inputs[:, -self.window :, :], (0, 2, 1))  # (batch, series, window)
        forecast = self.dense(latest)  # (batch, series, horizon)
        return ops.transpose(forecast, (0, 2, 1))  # (batch, horizon, series)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"window": self.window, "horizon": self.horizon})
        return config
