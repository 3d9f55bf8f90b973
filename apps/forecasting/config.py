"""Forecasting config: data, model, evaluation, training and export settings, and presets."""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

from apps.core import config as core_config
from apps.core.config import ExportConfig, TrainingConfig

ModelType = Literal["direct", "autoregressive", "encoder-decoder"]
MODEL_TYPES = typing.get_args(ModelType)


@dataclasses.dataclass
class DataConfig(core_config.DataConfig):
    # "sunspots", "seattle-weather", or a CSV file with a time column and value columns.
    source: str = "sunspots"
    # Empty: the recipe's columns; for a CSV the first column is the time and every other
    # column a target unless named as a covariate.
    time_column: str = ""
    target_columns: tuple[str, ...] = ()
    covariate_columns: tuple[str, ...] = ()
    # Covariates whose future values are known when forecasting (encoder-decoder only).
    known_future_columns: tuple[str, ...] = ()
    # Empty cells: "interpolate" (linear in time) or "fail" (name the first one).
    missing: Literal["interpolate", "fail"] = "interpolate"
    # Interpolating more than this share of a column's cells refuses the series (naming the
    # columns); fewer are reported.
    max_missing_fraction: float = 0.05
    # Settings left at 0 (or empty) are derived from the time column's frequency when the
    # series is read (`data.derive_settings`), printed and written into the run's config.json;
    # a value set here always wins. `seasons`: in steps (24 and 168 for hourly steps, 7 and
    # 365.25 daily, 52.18 weekly, 12 monthly, 4 quarterly, none yearly). `lookback`: a few
    # seasons (three of the shortest, the longest when the training part holds four of it, up
    # to ten seasons on long series), at most a third of the training part.
    seasons: tuple[float, ...] = ()
    lookback: int = 0
    # Calendar features: up to this many Fourier sine-cosine pairs of each of `data.seasons`
    # (`pipelines.calendar`), known for the forecast steps; the linear base tries them on
    # validation and the recurrent model reads them beside the known future covariates. The
    # export then takes `last_time`, the time of the last history step. 0: none; -1 (`base`):
    # derived, 3 when a season is longer than the lookback, else none (a window that holds
    # the whole season has its phase in its values already).
    calendar_terms: int = 0
    horizon: int = 12
    # Steps between the starts of two training windows (evaluation always uses every window).
    stride: int = 1
    # Splits in time order (no shuffle, so no `split_seed`): train, then validation, then the
    # last `test_fraction` as test; `limit` keeps the last N time steps.
    test_fraction: float = 0.2


@dataclasses.dataclass
class ModelConfig:
    # "direct" (one dense head for every step), "autoregressive" (feeds predictions back,
    # teacher forcing in training) or "encoder-decoder" (a decoder over the horizon).
    model_type: ModelType = "direct"
    cell: Literal["gru", "lstm"] = "gru"
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    # How many of the latest lookback steps the recurrent encoder reads; 0 (or more than the
    # lookback): all of them.
    # With a linear base or highway reading the whole lookback, a short window trains faster.
    recurrent_window: int = 0
    # Quantile levels, e.g. 0.1,0.5,0.9 (trained with the pinball loss; a direct model's
    # levels other than the median are then shifted by their validation residuals, split
    # conformal); empty: point forecast trained with the mean squared error.
    quantiles: tuple[float, ...] = ()
    # Steps of history read by the linear autoregressive highway (LSTNet); 0 turns it off.
    highway_window: int = 0
    # True: the highway starts from the ridge solution on the training windows (L2 penalty
    # `highway_alpha`, normalized units) and the recurrent head from zero, so training starts
    # at the linear forecast and the recurrent part learns its residual.
    highway_least_squares: bool = True
    highway_alpha: float = 1.0
    # True: the model forecasts the residual of a frozen linear base, chosen on the rolling-origin
    # validation windows among the evaluation's ridge (every column in original units, its lag
    # count, L2 penalty, square-root or log transform and differencing chosen there), the seasonal
    # naive forecast, the statistical peers of `evaluation.peers` distilled into linear maps of the
    # window, and their mean; fitted on the training part (on train and validation with
    # `linear_base_refit`). The direct and encoder-decoder heads start from zero, so training starts
    # at the linear forecast (the autoregressive decoder's head does not, and it feeds back its own
    # part of the forecast).
    linear_base: bool = False
    linear_base_refit: bool = False
    # A direct model on a linear base keeps its recurrent residual only where the residual
    # lowers the validation MAE by more than this share (without it the base is refitted on
    # train and validation, a gain the validation windows cannot show) and by more than
    # chance over blocks of `data.horizon` validation windows (`evaluation.significant_gain`:
    # a validation part shorter than 3 horizons never keeps it).
    residual_margin: float = 0.02
    # Compile the training step with XLA (one graph per batch shape; measure before using).
    jit_compile: bool = False


@dataclasses.dataclass
class EvaluationConfig:
    # Season of the seasonal-naive baseline, of the MASE scale and of the linear base's seasonal
    # difference, in steps (at most lookback); 0: the shortest of `data.seasons`, rounded.
    season: int = 0
    # Lag counts the validation-chosen ridge (the peer and the linear base) tries; empty:
    # multiples of the season up to the lookback (at most 8 of them).
    ridge_lags: tuple[int, ...] = ()
    # statsforecast models `evaluate` runs on the same test windows (`pip install
    # rnn-suite[forecast-peers]`), and the candidates of a linear base; empty: none.
    peers: tuple[Literal["AutoETS", "AutoARIMA", "AutoTheta"], ...] = (
        "AutoETS",
        "AutoARIMA",
        "AutoTheta",
    )
    # How many test steps the forecast plot shows (0: all).
    plot_steps: int = 0


@dataclasses.dataclass
class ForecastingConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


def base() -> ForecastingConfig:
    """Any series: seasons, lookback and lag grid derived from its frequency, horizon 12.

    A frozen linear base (chosen by rolling-origin validation among the ridge, its lag counts,
    alphas, a square-root or log transform and differences, the seasonal naive forecast, and
    AutoETS, AutoARIMA and AutoTheta distilled into linear maps of the window, and their mean;
    fitted on the training part) plus an LSTM(32) residual over the latest 48 steps whose head
    starts at zero; the median (pinball 0.5, i.e. absolute error) loss; a low learning rate, and
    early stopping on validation keeps the residual small (and drops it where it does not beat the
    base there by `model.residual_margin`).
    """
    config = ForecastingConfig()
    # A fifth for validation: several origins even on a series of a few years.
    config.data = DataConfig(validation_fraction=0.2, calendar_terms=-1)
    config.model = ModelConfig(
        cell="lstm",
        units=32,
        recurrent_window=48,
        dropout=0.3,
        quantiles=(0.5,),
        linear_base=True,
    )
    config.training = TrainingConfig(
        epochs=60, batch_size=64, learning_rate=3e-4, early_stopping_patience=8
    )
    return config


def quick() -> ForecastingConfig:
    """The main job: `base` with quantiles 0.1/0.5/0.9, at most 15 epochs, and the
    statsforecast peers that answer in seconds: on sunspots (2,256 steps before the test
    windows) AutoETS took 3.6 s and AutoTheta 13.2 s, AutoARIMA 367 s, so it is left out here
    (`--set evaluation.peers=AutoETS,AutoARIMA,AutoTheta` adds it back)."""
    config = base()
    config.model.quantiles = (0.1, 0.5, 0.9)
    config.evaluation.peers = ("AutoETS", "AutoTheta")
    config.training.epochs = 15
    config.training.early_stopping_patience = 4
    return config


def weather() -> ForecastingConfig:
    """Seattle weather: tomorrow's week of temp_max from four weeks of every variable."""
    config = ForecastingConfig()
    config.data = DataConfig(source="seattle-weather", lookback=28, horizon=7)
    config.model = ModelConfig(units=32, highway_window=28)
    config.evaluation = EvaluationConfig(season=7)
    config.training = TrainingConfig(
        epochs=40, batch_size=64, learning_rate=1e-3, early_stopping_patience=6
    )
    return config


def tiny() -> ForecastingConfig:
    """Seconds: for tests and smoke runs (pair it with a small CSV via --data)."""
    config = ForecastingConfig()
    config.data = DataConfig(lookback=16, horizon=4, validation_fraction=0.15, test_fraction=0.15)
    config.model = ModelConfig(units=16)
    config.evaluation = EvaluationConfig(season=12, plot_steps=0, peers=())
    config.training = TrainingConfig(
        epochs=3, batch_size=16, learning_rate=1e-2, early_stopping_patience=3
    )
    return config


PRESETS = {"base": base, "quick": quick, "weather": weather, "tiny": tiny}
