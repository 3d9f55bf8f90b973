"""Forecasting models: direct, autoregressive and encoder-decoder, point or quantile outputs.

Every model reads normalized windows: `history` (batch, lookback, columns) with the target
columns first, optionally `future_covariates` (batch, horizon, known), `calendar` (batch,
horizon, terms: `pipelines.calendar`, read like more known future covariates) and, for the
autoregressive model, `teacher_targets` (batch, horizon, targets), read only in training.
It returns the normalized forecast (batch, horizon, targets), with a last quantile axis
(batch, horizon, targets, quantiles) when `model.quantiles` is set.
"""

from __future__ import annotations

import keras
import numpy as np

from apps.core import training
from apps.forecasting.config import ForecastingConfig
from apps.forecasting.data import SeriesAssets
from layers.autoregressive import AutoregressiveDecoder
from layers.highway import LinearForecast, LinearHighway
from layers.losses import MedianAbsoluteError, PinballLoss, median_index
from layers.recurrent_encoder import RecurrentEncoder

DECODER_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def build_model(config: ForecastingConfig, assets: SeriesAssets) -> keras.Model:
    """The compiled model for the target, covariate and known-future columns of `assets`.

    With a least-squares highway start in `assets` the highway starts from it, and with
    `model.linear_base` the frozen linear base takes the ridge in `assets`; in both cases the
    recurrent model's output layer starts from zero, so the untrained model is the linear
    forecast. Under a mixed-precision policy the output layers and the linear base's
    normalization still compute in float32.
    """
    data, settings = config.data, config.model
    targets, covariates = len(assets.target_columns), len(assets.covariate_columns)
    known_future = len(assets.known_future_columns)
    quantiles = tuple(settings.quantiles)
    outputs_per_target = len(quantiles) or 1
    output_shape = (data.horizon, targets) + ((len(quantiles),) if quantiles else ())

    warm_start = bool(settings.highway_window) and bool(assets.highway_kernel)
    head_init = "zeros" if warm_start or settings.linear_base else "glorot_uniform"
    history = keras.Input((data.lookback, targets + covariates), name="history")
    inputs = {"history": history}
    future = None
    if known_future:
        future = keras.Input((data.horizon, known_future), name="future_covariates")
        inputs["future_covariates"] = future
    calendar = assets.calendar
    if calendar is not None:
        # The recurrent model reads the calendar terms as more known future covariates.
        inputs["calendar"] = keras.Input((data.horizon, calendar.size), name="calendar")
        future = inputs["calendar"]
        if known_future:
            future = keras.layers.Concatenate(name="known_future")(
                [inputs["future_covariates"], future]
            )
    recent = history
    if settings.recurrent_window:
        recent = history[:, -settings.recurrent_window :, :]  # (batch, recurrent_window, columns)
    encoder = RecurrentEncoder(
        settings.units,
        num_layers=settings.num_layers,
        cell=settings.cell,
        bidirectional=settings.bidirectional,
        dropout=settings.dropout,
        return_sequences=False,
        return_state=settings.model_type != "direct",
        name="encoder",
    )

    if settings.model_type == "direct":
        summary = encoder(recent)  # (batch, output_units): the final output
        if future is not None:
            summary = keras.layers.Concatenate(name="with_future")(
                [summary, keras.layers.Flatten(name="flat_future")(future)]
            )
        summary = keras.layers.Dropout(settings.dropout, name="dropout")(summary)
        flat = keras.layers.Dense(
            data.horizon * targets * outputs_per_target,
            kernel_initializer=head_init,
            dtype="float32",
            name="head",
        )(summary)
        forecast = keras.layers.Reshape(output_shape, dtype="float32", name="forecast")(flat)
    elif settings.model_type == "autoregressive":
        teacher = keras.Input((data.horizon, targets), name="teacher_targets")
        inputs["teacher_targets"] = teacher
        _, states = encoder(recent)
        decoder = AutoregressiveDecoder(
            encoder.state_units,
            output_units=targets,
            horizon=data.horizon,
            cell=settings.cell,
            num_quantiles=outputs_per_target,
            feedback_quantile=median_index(quantiles) if quantiles else 0,
            dropout=settings.dropout,
            name="decoder",
        )
        last_values = history[:, -1, :targets]  # (batch, targets)
        forecast = keras.layers.Identity(dtype="float32", name="forecast")(
            decoder(last_values, states, known_future=future, teacher_targets=teacher)
        )
    else:
        summary, states = encoder(recent)
        decoder_inputs = keras.layers.RepeatVector(data.horizon, name="repeat")(summary)
        if future is not None:
            decoder_inputs = keras.layers.Concatenate(name="with_future")([decoder_inputs, future])
        decoded = DECODER_LAYERS[settings.cell](
            encoder.state_units, return_sequences=True, name="decoder"
        )(decoder_inputs, initial_state=states)
        decoded = keras.layers.Dropout(settings.dropout, name="dropout")(decoded)
        steps = keras.layers.Dense(
            targets * outputs_per_target, kernel_initializer=head_init, dtype="float32", name="head"
        )(decoded)
        forecast = keras.layers.Reshape(output_shape, dtype="float32", name="forecast")(steps)

    if settings.highway_window:
        linear = LinearHighway(settings.highway_window, data.horizon, name="highway")(
            history[:, :, :targets]
        )
        if quantiles:
            linear = keras.layers.Reshape(
                output_shape[:2] + (1,), dtype="float32", name="highway_quantile_axis"
            )(linear)
        forecast = keras.layers.Add(dtype="float32", name="with_highway")([forecast, linear])
    if settings.linear_base:
        base = LinearForecast(
            assets.linear_lags,
            data.horizon,
            targets,
            transform=assets.linear_transform,
            input_mean=assets.normalization.mean,
            input_std=assets.normalization.std,
            calendar_size=calendar.size if assets.linear_calendar else 0,
            trainable=False,
            dtype="float32",
            name="linear_base",
        )
        linear = base([history, inputs["calendar"]] if assets.linear_calendar else history)
        base.dense.set_weights(
            [
                np.asarray(assets.linear_kernel, np.float32),
                np.asarray(assets.linear_bias, np.float32),
            ]
        )
        if quantiles:
            linear = keras.layers.Reshape(
                output_shape[:2] + (1,), dtype="float32", name="base_quantile_axis"
            )(linear)
        forecast = keras.layers.Add(dtype="float32", name="with_linear_base")([forecast, linear])

    model = keras.Model(inputs, forecast, name=f"forecaster_{settings.model_type}")
    if warm_start:
        model.get_layer("highway").dense.set_weights(
            [
                np.asarray(weights, np.float32)
                for weights in (assets.highway_kernel, assets.highway_bias)
            ]  # fmt: skip
        )
    model.compile(
        optimizer=training.optimizer(config.training),
        loss=PinballLoss(quantiles) if quantiles else "mse",
        metrics=[MedianAbsoluteError(quantiles) if quantiles else "mae"],
        jit_compile=settings.jit_compile,
        steps_per_execution=config.training.steps_per_execution,
    )
    return model
