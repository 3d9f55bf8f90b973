"""Linear forecasts for forecasting models: the LSTNet highway and a loadable ridge forecast."""

import keras
from keras import ops

from layers.arguments import check_positive_integers, check_window_fits

# The "log" transform: values are floored here before the logarithm (a served window may hold
# a zero the training data did not), and log-forecasts capped here before the exponential
# (float32 overflows past 88.7).
LOG_FLOOR = 1e-30
LOG_CAP = 80.0


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
        check_positive_integers(window=window, horizon=horizon)
        self.window = window
        self.horizon = horizon
        self.dense = keras.layers.Dense(horizon, name="dense", dtype=self.dtype_policy)

    def build(self, input_shape):
        check_window_fits(self.window, input_shape)
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


@keras.saving.register_keras_serializable(package="rnn_suite")
class LinearForecast(keras.layers.Layer):
    """A linear forecast of the target series from the last `window` steps of every column.

    The layer reads normalized inputs and returns normalized forecasts, but its linear map
    works in the data's original units (optionally square-rooted or logged): it undoes the
    input normalization (`input_mean`, `input_std`), applies `transform` to every value, maps the
    flattened `(window * columns)` latest values to `(horizon * targets)` with one
    `keras.layers.Dense`, applies the inverse transform and normalizes the result with the
    statistics of the first `targets` columns. So a ridge regression fitted outside Keras on
    flattened windows in original units can be loaded as its weights; square-root forecasts
    are squared back (negative values clipped to zero first), log forecasts exponentiated
    (`LOG_FLOOR`, `LOG_CAP`). With `calendar_size`, the map also reads the calendar terms of
    the first forecast step (`pipelines.calendar`), after the window's values and
    untransformed. Masking: none; the input is a full history.

    Args:
        window: how many of the latest steps the forecast reads.
        horizon: how many steps it forecasts.
        targets: how many of the first columns it forecasts.
        transform: `"identity"`, `"sqrt"` or `"log"`.
        input_mean: per-column means of the normalization, or `None` (inputs in original units).
        input_std: per-column standard deviations, or `None`.
        calendar_size: how many calendar terms per step the layer reads (0: none).
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, `trainable`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, columns)` with `time >= window`; with
            `calendar_size`, the list of it and the calendar terms `(batch, horizon,
            calendar_size)`.

    Returns:
        Float tensor `(batch, horizon, targets)`.

    Example:

    ```python
    history = keras.Input(shape=(132, 1))
    forecast = LinearForecast(60, horizon=12, targets=1, transform="sqrt")(history)
    ```

    References:
        - Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", 2009,
          section 3.4.1 (ridge regression).
    """

    TRANSFORMS = ("identity", "sqrt", "log")

    def __init__(
        self,
        window,
        horizon,
        targets,
        transform="identity",
        input_mean=None,
        input_std=None,
        calendar_size=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_integers(window=window, horizon=horizon, targets=targets)
        if transform not in self.TRANSFORMS:
            raise ValueError(
                f"`transform` must be one of {self.TRANSFORMS}. Received: transform={transform!r}"
            )
        if (input_mean is None) != (input_std is None):
            raise ValueError(
                "`input_mean` and `input_std` must be given together. "
                f"Received: input_mean={input_mean!r}, input_std={input_std!r}"
            )
        self.window = window
        self.horizon = horizon
        self.targets = targets
        self.transform = transform
        self.input_mean = None if input_mean is None else [float(value) for value in input_mean]
        self.input_std = None if input_std is None else [float(value) for value in input_std]
        self.calendar_size = int(calendar_size)
        self.dense = keras.layers.Dense(horizon * targets, name="dense", dtype=self.dtype_policy)
        # `trainable=False` given at construction reaches the sublayer made after it.
        self.dense.trainable = self.trainable

    def build(self, input_shape):
        if self.calendar_size:
            input_shape = input_shape[0]
        check_window_fits(self.window, input_shape)
        self.dense.build((None, self.window * input_shape[-1] + self.calendar_size))
        self.built = True

    def call(self, inputs):
        calendar = None
        if self.calendar_size:
            inputs, calendar = inputs
        latest = inputs[:, -self.window :, :]
        if self.input_mean is not None:
            latest = latest * ops.convert_to_tensor(self.input_std, latest.dtype) + (
                ops.convert_to_tensor(self.input_mean, latest.dtype)
            )
        if self.transform == "sqrt":
            latest = ops.sqrt(ops.maximum(latest, 0.0))
        elif self.transform == "log":
            latest = ops.log(ops.maximum(latest, LOG_FLOOR))
        columns = ops.shape(latest)[-1]
        flat = ops.reshape(latest, (-1, self.window * columns))  # (batch, window * columns)
        if calendar is not None:
            flat = ops.concatenate([flat, ops.cast(calendar[:, 0, :], flat.dtype)], axis=-1)
        forecast = self.dense(flat)
        if self.transform == "sqrt":
            forecast = ops.square(ops.maximum(forecast, 0.0))
        elif self.transform == "log":
            forecast = ops.exp(ops.minimum(forecast, LOG_CAP))
        # (batch, horizon, targets)
        forecast = ops.reshape(forecast, (-1, self.horizon, self.targets))
        if self.input_mean is not None:
            forecast = (
                forecast - ops.convert_to_tensor(self.input_mean[: self.targets], forecast.dtype)
            ) / ops.convert_to_tensor(self.input_std[: self.targets], forecast.dtype)
        return forecast

    def compute_output_shape(self, input_shape):
        if self.calendar_size:
            input_shape = input_shape[0]
        return (input_shape[0], self.horizon, self.targets)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "calendar_size": self.calendar_size,
                "window": self.window,
                "horizon": self.horizon,
                "targets": self.targets,
                "transform": self.transform,
                "input_mean": self.input_mean,
                "input_std": self.input_std,
            }
        )
        return config
