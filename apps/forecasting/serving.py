"""The forecasting export: `history` in original units -> `forecast` (and `quantiles`).

Inputs: `history` float32 (batch, lookback, columns) with the target columns first, in the
units of the training data, and `future_covariates` float32 (batch, horizon, known) when the
model reads known future covariates. NaN or infinity in an input stops the request with an
InvalidArgument error that names it, and so does a history of the wrong length or width
(the signature declares the shape, but a signature call does not enforce it).
Outputs: `forecast` float32 (batch, horizon, targets) and, for quantile models, `quantiles`
float32 (batch, horizon, targets, levels), sorted along the levels.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from apps.core.app import Endpoints
from apps.forecasting.config import ForecastingConfig
from apps.forecasting.data import SeriesAssets
from layers.losses import median_index


def endpoints(model: keras.Model, config: ForecastingConfig, assets: SeriesAssets) -> Endpoints:
    data, quantiles = config.data, tuple(config.model.quantiles)
    targets, columns = len(assets.target_columns), len(assets.columns)
    known_future = assets.known_future_indices
    mean = tf.constant(assets.normalization.mean, tf.float32)
    std = tf.constant(assets.normalization.std, tf.float32)
    target_mean, target_std = mean[:targets], std[:targets]
    signature = [tf.TensorSpec([None, data.lookback, columns], tf.float32, name="history")]
    if known_future:
        signature.append(
            tf.TensorSpec(
                [None, data.horizon, len(known_future)], tf.float32, name="future_covariates"
            )
        )

    def forecast(history, future_covariates=None):
        shape_check = tf.debugging.assert_equal(
            tf.shape(history)[1:],
            tf.constant([data.lookback, columns]),
            message=f"history must have shape [batch, {data.lookback}, {columns}] "
            f"(lookback, columns)",
        )
        with tf.control_dependencies([shape_check]):
            history = tf.debugging.assert_all_finite(
                history, "history holds NaN or infinity; send finite values only"
            )
        inputs = {"history": (history - mean) / std}
        if future_covariates is not None:
            future_covariates = tf.debugging.assert_all_finite(
                future_covariates, "future_covariates holds NaN or infinity"
            )
            known_mean = tf.gather(mean, known_future)
            known_std = tf.gather(std, known_future)
            inputs["future_covariates"] = (future_covariates - known_mean) / known_std
        if config.model.model_type == "autoregressive":
            batch = tf.shape(history)[0]
            inputs["teacher_targets"] = tf.zeros([batch, data.horizon, targets], tf.float32)
        normalized = model(inputs, training=False)
        if not quantiles:
            return {"forecast": normalized * target_std + target_mean}
        # Sorting the levels undoes quantile crossing (monotone rearrangement).
        levels = tf.sort(normalized * target_std[:, None] + target_mean[:, None], axis=-1)
        return {"forecast": levels[..., median_index(quantiles)], "quantiles": levels}

    def forecast_history(history):
        return forecast(history)

    serve = forecast if known_future else forecast_history
    return Endpoints(functions={"serving_default": tf.function(serve, input_signature=signature)})


def example_request(config: ForecastingConfig, columns: int, known_future: int):
    """A small finite request: two histories of a slow oscillation."""
    data = config.data
    steps = np.arange(data.lookback + data.horizon, dtype=np.float32)
    wave = np.stack([np.sin(steps / 5.0), np.cos(steps / 7.0)]) * 10.0 + 20.0  # (2, steps)
    window = np.repeat(wave[:, :, None], columns, axis=2)  # (2, steps, columns)
    request = {"history": window[:, : data.lookback].astype(np.float32)}
    if known_future:
        request["future_covariates"] = window[:, data.lookback :, :known_future].astype(np.float32)
    return request
