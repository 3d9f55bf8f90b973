"""Forecasting data: the series by name or file, its time splits and the window datasets."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from apps.core.app import Assets, Datasets
from apps.core.errors import UserError
from apps.forecasting import evaluation
from apps.forecasting.config import ForecastingConfig
from pipelines import calendar as calendar_terms
from pipelines import windows
from pipelines.errors import DataError
from pipelines.sources import time_series


@dataclasses.dataclass
class SeriesAssets(Assets):
    """Column roles and normalization statistics fitted on the training part."""

    target_columns: list[str]
    covariate_columns: list[str]
    known_future_columns: list[str]
    normalization: windows.Normalization
    # Mean absolute seasonal-naive error on the training part, per target (the MASE scale).
    seasonal_scale: list[float]
    # Least-squares start of the linear highway: kernel (window, horizon) and bias (horizon).
    highway_kernel: list[list[float]] = dataclasses.field(default_factory=list)
    highway_bias: list[float] = dataclasses.field(default_factory=list)
    # The linear base chosen by rolling-origin validation (`evaluation.choose_linear_base`):
    # its lag count, alpha, transform, difference, statistical models (the ridge when empty),
    # use of the calendar terms and validation MAE (original units), with every candidate's MAE.
    linear_lags: int = 0
    linear_alpha: float = 0.0
    linear_transform: str = ""
    linear_difference: str = "none"
    linear_season: int = 1
    linear_statistical: list[str] = dataclasses.field(default_factory=list)
    linear_calendar: bool = False
    linear_validation_mae: float = 0.0
    linear_candidates: dict[str, float] = dataclasses.field(default_factory=dict)
    # Per statistical model, the specification each target keeps (`evaluation.specification`).
    linear_specifications: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # That base fitted on the training part (on train and validation with
    # `model.linear_base_refit`), folded onto the transformed window: kernel
    # (lags * columns, horizon * targets) and bias (horizon * targets); and fitted on train and
    # validation (what the residual gate puts in when the residual does not help).
    linear_kernel: list[list[float]] = dataclasses.field(default_factory=list)
    linear_bias: list[float] = dataclasses.field(default_factory=list)
    linear_refit_kernel: list[list[float]] = dataclasses.field(default_factory=list)
    linear_refit_bias: list[float] = dataclasses.field(default_factory=list)
    # The ridge peer of `evaluate`: the validation-chosen ridge (`LinearChoice` fields) fitted
    # on train and validation, kept so that `evaluate --data FILE` scores it too.
    ridge_choice_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    ridge_kernel: list[list[float]] = dataclasses.field(default_factory=list)
    ridge_bias: list[float] = dataclasses.field(default_factory=list)
    # The calendar features' seasons, orders and step (`pipelines.calendar.Calendar`); empty:
    # none (`data.calendar_terms` 0, or a series without a season).
    calendar_fields: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def calendar(self) -> calendar_terms.Calendar | None:
        return calendar_terms.Calendar.from_json(self.calendar_fields)

    @property
    def linear_choice(self) -> evaluation.LinearChoice:
        return evaluation.LinearChoice(
            self.linear_lags,
            self.linear_alpha,
            self.linear_transform,
            self.linear_difference,
            self.linear_season,
            tuple(self.linear_statistical),
            self.linear_calendar,
        )

    @property
    def ridge_choice(self) -> evaluation.LinearChoice:
        if not self.ridge_choice_fields:  # work dirs trained before the distilled bases
            return self.linear_choice
        fields = dict(self.ridge_choice_fields)  # JSON gives `statistical` back as a list
        fields["statistical"] = tuple(fields.get("statistical", ()))
        return evaluation.LinearChoice(**fields)

    FILE = "series.json"

    @property
    def columns(self) -> list[str]:
        return self.target_columns + self.covariate_columns

    @property
    def known_future_indices(self) -> list[int]:
        return [self.columns.index(column) for column in self.known_future_columns]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        values = dataclasses.asdict(self)
        values["normalization"] = self.normalization.to_json()
        (directory / self.FILE).write_text(json.dumps(values, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> SeriesAssets:
        values = json.loads((directory / cls.FILE).read_text())
        values["normalization"] = windows.Normalization.from_json(values["normalization"])
        return cls(**values)


ASSETS_CLASS = SeriesAssets


@dataclasses.dataclass
class SeriesDatasets(Datasets):
    """`Datasets` plus the series itself, for baselines, metrics and plots."""

    series: time_series.TimeSeries | None = None
    splits: dict[str, windows.Split] = dataclasses.field(default_factory=dict)
    test_starts: np.ndarray | None = None
    # The calendar terms of the step after each step (`Calendar.next_terms`), or None.
    next_terms: np.ndarray | None = None


def check_config(config: ForecastingConfig) -> None:
    """Rejects model settings that cannot work, naming the field."""
    model, data = config.model, config.data
    levels = model.quantiles
    if levels and not (
        all(0.0 < level < 1.0 for level in levels)
        and all(low < high for low, high in zip(levels[:-1], levels[1:], strict=True))
    ):
        raise UserError(
            f"model.quantiles: expected increasing levels in (0, 1), got {model.quantiles}"
        )
    if model.highway_window > data.lookback:
        raise UserError(
            f"model.highway_window: {model.highway_window} is longer than data.lookback "
            f"({data.lookback})"
        )
    if model.recurrent_window < 0:
        raise UserError(
            f"model.recurrent_window: expected 0 (all) or a positive integer, got "
            f"{model.recurrent_window}"
        )
    if not 1 <= config.evaluation.season <= data.lookback:
        raise UserError(
            f"evaluation.season: expected 1..data.lookback ({data.lookback}), "
            f"got {config.evaluation.season}"
        )
    if data.split_seed:
        raise UserError(
            f"data.split_seed: a series is split in time order, not shuffled; got "
            f"{data.split_seed}, leave it at 0"
        )
    for name in ("lookback", "horizon", "stride"):
        if getattr(data, name) < 1:
            raise UserError(f"data.{name}: expected a positive integer, got {getattr(data, name)}")
    if data.calendar_terms < 0:
        raise UserError(
            f"data.calendar_terms: expected -1 (derived), 0 (none) or a positive integer, got "
            f"{data.calendar_terms}"
        )
    if data.limit < 0:
        raise UserError(f"data.limit: expected 0 (all) or a positive integer, got {data.limit}")
    if not 0.0 <= model.residual_margin < 1.0:
        raise UserError(
            f"model.residual_margin: expected a share in [0, 1), got {model.residual_margin}"
        )
    if not 0.0 <= data.max_missing_fraction <= 1.0:
        raise UserError(
            "data.max_missing_fraction: expected a share in [0, 1], got "
            f"{data.max_missing_fraction}"
        )


def read_series(config: ForecastingConfig) -> time_series.TimeSeries:
    data = config.data
    series = time_series.load_time_series(
        data.source,
        time_column=data.time_column,
        target_columns=data.target_columns,
        covariate_columns=data.covariate_columns,
        missing=data.missing,
    )
    unknown = [name for name in data.known_future_columns if name not in series.covariate_columns]
    if unknown:
        raise UserError(
            f"data.known_future_columns: {unknown[0]!r} is not a covariate column; covariates: "
            f"{', '.join(series.covariate_columns) or '(none)'}"
        )
    if data.limit:
        series = last_steps(series, data.limit)
    report = time_series.missing_report(
        series,
        data.max_missing_fraction,
        "fill the gaps, or allow more with --set data.max_missing_fraction=SHARE",
    )
    if report:
        print(f"note: {report}", file=sys.stderr)
    return series


def last_steps(series: time_series.TimeSeries, steps: int) -> time_series.TimeSeries:
    """The last `steps` time steps of `series`."""
    return dataclasses.replace(
        series,
        times=series.times[-steps:],
        values=series.values[-steps:],
        missing=series.missing[-steps:],
    )


def check_columns(
    series: time_series.TimeSeries, assets: SeriesAssets, config: ForecastingConfig
) -> None:
    """Refuses a series whose columns do not fit the trained model's.

    Columns the config names (`data.target_columns`, `data.covariate_columns`, e.g. set for
    `evaluate --data FILE`) stand for the trained ones in order; columns found by default must
    carry the trained names.
    """
    named = config.data.target_columns or config.data.covariate_columns
    counts = (len(series.target_columns), len(series.covariate_columns))
    trained_counts = (len(assets.target_columns), len(assets.covariate_columns))
    if counts != trained_counts or (not named and list(series.columns) != assets.columns):
        raise DataError(
            f"{config.data.source}: columns {', '.join(series.columns)} differ from the trained "
            f"model's {', '.join(assets.columns)} (targets first); name the file's columns "
            f"with --set data.target_columns=... and data.covariate_columns=..."
        )


def seasonal_scale(values: np.ndarray, season: int) -> list[float]:
    """Mean absolute difference between values `season` steps apart, per column."""
    if len(values) <= season:
        raise DataError(
            f"the training part ({len(values)} steps) is not longer than the season ({season})"
        )
    scale = np.abs(values[season:] - values[:-season]).mean(axis=0)
    return [float(value) if value > 0 else 1.0 for value in scale]


def fit_highway(
    normalized: np.ndarray, starts: np.ndarray, config: ForecastingConfig, targets: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge (`evaluation.fit_ridge`) from each target's last `highway_window` values to its next
    `horizon` values.

    One set of weights serves every target (the highway shares them); the bias is unpenalized.
    """
    data, window = config.data, config.model.highway_window
    histories, futures = windows.window_arrays(
        normalized, starts, data.lookback, data.horizon, targets
    )
    # (windows * targets, window) and (windows * targets, horizon)
    features = np.moveaxis(histories[:, -window:, :targets], 2, 1).reshape(-1, window)
    outputs = np.moveaxis(futures, 2, 1).reshape(-1, data.horizon)
    return evaluation.fit_ridge(features, outputs, config.model.highway_alpha)


def fit_linear_base(
    values: np.ndarray,
    splits: dict[str, windows.Split],
    config: ForecastingConfig,
    assets: SeriesAssets,
    next_terms: np.ndarray | None = None,
) -> None:
    """Chooses the ridge by rolling-origin validation (`evaluation.choose_ridge`) and keeps it,
    fitted on train and validation, as `evaluate`'s ridge peer; with `model.linear_base`, also
    chooses the base among it, the seasonal naive forecast and the distilled statistical peers
    (`evaluation.choose_linear_base`, the ridge scored with its grid searched before each
    piece: `evaluation.nested_ridge_validation`) and keeps it fitted on the training part (on
    train and validation with `model.linear_base_refit`) and on train and validation. Both try the
    calendar terms of `next_terms` (`Calendar.next_terms`) when given. The distilled models
    keep the specification they found on the training part (`evaluation.specified_model`) in
    every later fit. A distilled model that fails on train and validation, which no validation
    piece saw, leaves the ridge."""
    data, targets = config.data, len(assets.target_columns)
    if len(splits["validation"]) < data.horizon:
        raise UserError(
            "the validation-chosen ridge needs validation windows (at least data.horizon "
            f"{data.horizon} steps); raise data.validation_fraction"
        )
    validation = splits["validation"]
    ridge, error = evaluation.choose_ridge(
        values[: validation.end],
        validation,
        data.lookback,
        data.horizon,
        targets,
        tuple(config.evaluation.ridge_lags),
        config.evaluation.season,
        next_terms,
    )
    assets.ridge_choice_fields = dataclasses.asdict(ridge)
    ridge_fit = fitted_lists(values, validation.end, config, targets, ridge, next_terms)
    assets.ridge_kernel, assets.ridge_bias = ridge_fit
    if not config.model.linear_base:
        return
    try:
        error, _ = evaluation.nested_ridge_validation(
            values[: validation.end], validation, data.lookback, data.horizon, targets,
            tuple(config.evaluation.ridge_lags), config.evaluation.season, next_terms,
        )  # fmt: skip
    except ValueError:
        print(
            "note: the training part is too short to search the ridge's grid before each "
            "validation piece; the ridge competes for the linear base with the lowest "
            "validation MAE of its grid, which favours it"
        )
    choice, candidates, train_fit = evaluation.choose_linear_base(
        values[: validation.end], validation, data.lookback, data.horizon, targets,
        ridge, error, tuple(config.evaluation.peers), next_terms,
    )  # fmt: skip
    print(
        "linear base chosen on the validation windows (MAE): "
        + ", ".join(f"{name} {value:.4g}" for name, value in candidates.items())
        + f": {choice.name}"
    )
    refit = ridge_fit
    if choice != ridge:
        try:
            refit = fitted_lists(
                values, validation.end, config, targets, choice, next_terms, validation.start
            )
        except ValueError as failure:
            print(f"note: {failure} on train and validation: the linear base is the ridge")
            choice, train_fit = ridge, None
    assets.linear_lags, assets.linear_alpha = choice.lags, choice.alpha
    assets.linear_transform, assets.linear_difference = choice.transform, choice.difference
    assets.linear_season, assets.linear_statistical = choice.season, list(choice.statistical)
    assets.linear_calendar = choice.calendar
    assets.linear_specifications = specifications(values, validation.start, targets, choice)
    for name, found in assets.linear_specifications.items():
        print(f"{name} keeps the specification found on the training part: {', '.join(found)}")
    assets.linear_validation_mae, assets.linear_candidates = candidates[choice.name], candidates
    assets.linear_refit_kernel, assets.linear_refit_bias = refit
    if config.model.linear_base_refit:
        assets.linear_kernel, assets.linear_bias = refit
    elif train_fit is not None:
        assets.linear_kernel, assets.linear_bias = (part.tolist() for part in train_fit)
    else:
        assets.linear_kernel, assets.linear_bias = fitted_lists(
            values, splits["train"].end, config, targets, choice, next_terms
        )


def specifications(
    values: np.ndarray, before: int, targets: int, choice: evaluation.LinearChoice
) -> dict[str, list[str]]:
    """Per statistical model of `choice` (none for the ridge and the seasonal naive forecast),
    the specification each target column keeps, searched on the steps before `before`."""
    if choice.statistical == (evaluation.SEASONAL_NAIVE,):
        return {}
    steps = evaluation.specification_steps(values, before)
    return {
        name: [
            evaluation.specification(
                evaluation.specified_model(name, steps[:, target], choice.season)
            )
            for target in range(targets)
        ]
        for name in choice.statistical
    }


def fitted_lists(
    values: np.ndarray,
    end: int,
    config: ForecastingConfig,
    targets: int,
    choice,
    next_terms: np.ndarray | None,
    specified_before: int | None = None,
) -> tuple[list, list]:
    """`evaluation.fit_linear` on the steps before `end`, as JSON lists for the assets."""
    data = config.data
    kernel, bias = evaluation.fit_linear(
        values, end, data.lookback, data.horizon, targets, choice, next_terms, specified_before
    )
    return kernel.tolist(), bias.tolist()


# Calendar sine-cosine pairs per season when `data.calendar_terms` is derived.
DERIVED_CALENDAR_TERMS = 3


def derive_settings(config: ForecastingConfig, series: time_series.TimeSeries) -> dict[str, Any]:
    """Fills the settings left at 0 or empty (`data.seasons`, `data.lookback`,
    `evaluation.season`, `evaluation.ridge_lags`; `data.calendar_terms` at -1) from the
    series' frequency, in place; returns the values it set. A set value is kept; a pair that
    cannot work names the set field."""
    data, settings = config.data, config.evaluation
    frequency = series.frequency
    derived: dict[str, Any] = {}
    train_steps = windows.time_splits(len(series), data.validation_fraction, data.test_fraction)[
        "train"
    ].end
    if not data.seasons and frequency is not None:
        # A cycle the training part does not hold twice can be neither learnt nor checked (a
        # day of half-second steps in 150 steps).
        data.seasons = derived["data.seasons"] = tuple(
            season for season in frequency.seasons if 2 * season <= train_steps
        )
    if not settings.season:
        settings.season = derived["evaluation.season"] = (
            int(round(data.seasons[0])) if data.seasons else 1
        )
    season = settings.season
    if not data.lookback:
        longest = int(round(max(data.seasons))) if data.seasons else season
        lookback = max(3 * season if season > 1 else 0, 2 * data.horizon, 8)
        if 4 * longest <= train_steps:
            lookback = max(lookback, longest)
        lookback = max(lookback, min(train_steps // 10, 10 * max(season, data.horizon)))
        data.lookback = derived["data.lookback"] = max(season, min(lookback, train_steps // 3))
    elif season > data.lookback and "evaluation.season" in derived:
        raise UserError(
            f"data.lookback: {data.lookback} is shorter than the season of this "
            f"{frequency.name} series ({season} steps); set data.lookback to at least {season}, "
            f"or set evaluation.season to a season it holds"
        )
    if data.calendar_terms == -1:
        # Measured on the panel (benchmarks/RESULTS-forecasting.md, fifth run): the terms of a
        # season the window holds doubled the candidates for no gain.
        longer = any(season > data.lookback for season in data.seasons)
        data.calendar_terms = derived["data.calendar_terms"] = (
            DERIVED_CALENDAR_TERMS if longer else 0
        )
    if not settings.ridge_lags:
        if season > 1:
            lags = list(range(season, data.lookback + 1, season))
        else:
            lags = [2**power for power in range(1, 16) if 2**power < data.lookback]
        lags = sorted(set(lags + [data.lookback]))
        if len(lags) > 8:
            lags = [lags[index] for index in np.linspace(0, len(lags) - 1, 8).round().astype(int)]
        settings.ridge_lags = derived["evaluation.ridge_lags"] = tuple(lags)
    return derived


def complete_config(config: ForecastingConfig) -> ForecastingConfig:
    """`derive_settings` from the series `config` names; prints what it derived."""
    series = read_series(config)
    derived = derive_settings(config, series)
    if derived:
        settings = ", ".join(
            f"{key}={','.join(f'{item:g}' for item in value)}"
            if isinstance(value, tuple)
            else f"{key}={value}"
            for key, value in derived.items()
        )
        name = series.frequency.name if series.frequency else "unknown"
        print(f"derived from the {name} time steps: {settings}")
    return config


def load_data(
    config: ForecastingConfig,
    assets: SeriesAssets | None = None,
    whole_as_test: bool = False,
) -> SeriesDatasets:
    data = config.data
    series = read_series(config)
    derive_settings(config, series)
    check_config(config)
    if assets is not None:
        check_columns(series, assets, config)
    window = data.lookback + data.horizon
    time_series.check_length(
        series, window, f"one window (lookback {data.lookback} + horizon {data.horizon})"
    )
    if whole_as_test:
        splits = {"test": windows.Split(0, len(series))}
    else:
        splits = windows.time_splits(len(series), data.validation_fraction, data.test_fraction)
        time_series.check_length(
            series,
            window + len(splits["validation"]) + len(splits["test"]),
            f"a training window before the validation and test parts "
            f"({data.validation_fraction:.0%} and {data.test_fraction:.0%})",
        )
    if assets is None:
        train_values = series.values[: splits["train"].end]
        targets = len(series.target_columns)
        assets = SeriesAssets(
            target_columns=list(series.target_columns),
            covariate_columns=list(series.covariate_columns),
            known_future_columns=list(data.known_future_columns),
            normalization=windows.Normalization.fit(train_values),
            seasonal_scale=seasonal_scale(train_values[:, :targets], config.evaluation.season),
            calendar_fields=calendar_fields(config, series),
        )
    calendar = assets.calendar
    next_terms = times = None
    if calendar is not None:
        next_terms = calendar.next_terms(series.times)
        times = calendar_terms.time_values(series.times)
    normalized = assets.normalization.normalize(series.values).astype(np.float32)
    model = config.model
    needs_highway = model.highway_window and model.highway_least_squares
    if needs_highway and not assets.highway_kernel and "train" in splits:
        train_starts = windows.window_starts(splits["train"], data.lookback, data.horizon)
        kernel, bias = fit_highway(
            normalized.astype(np.float64), train_starts, config, len(assets.target_columns)
        )
        assets.highway_kernel, assets.highway_bias = kernel.tolist(), bias.tolist()
    if not assets.ridge_kernel and "train" in splits:
        fit_linear_base(series.values.astype(np.float64), splits, config, assets, next_terms)

    def dataset(name: str, training: bool) -> tf.data.Dataset | None:
        if name not in splits or len(splits[name]) < data.horizon:
            return None
        starts = windows.window_starts(
            splits[name], data.lookback, data.horizon, data.stride if training else 1
        )
        if len(starts) == 0:
            return None
        return windows.make_windows(
            normalized,
            starts,
            data.lookback,
            data.horizon,
            target_indices=range(len(assets.target_columns)),
            known_future_indices=assets.known_future_indices,
            teacher_targets=config.model.model_type == "autoregressive",
            calendar=calendar,
            times=times,
            batch_size=config.training.batch_size,
            shuffle=training,
            seed=config.training.seed,
        )

    test_starts = windows.window_starts(splits["test"], data.lookback, data.horizon)
    summary = {
        "steps": {name: len(split) for name, split in splits.items()},
        "columns": {"targets": assets.target_columns, "covariates": assets.covariate_columns},
        "test_windows": int(len(test_starts)),
    }
    if series.missing.any():
        summary["interpolated_cells"] = time_series.missing_counts(series)
    return SeriesDatasets(
        train=dataset("train", training=True),
        validation=dataset("validation", training=False),
        test=dataset("test", training=False),
        assets=assets,
        summary=summary,
        series=series,
        splits=splits,
        test_starts=test_starts,
        next_terms=next_terms,
    )


def calendar_fields(config: ForecastingConfig, series: time_series.TimeSeries) -> dict[str, Any]:
    """The `Calendar` of `data.calendar_terms` over `data.seasons` (JSON fields; empty when
    off or when the series has no season, which is said)."""
    data = config.data
    if not data.calendar_terms:
        return {}
    calendar = None
    if series.frequency is not None and data.seasons:
        calendar = calendar_terms.Calendar.of(series.frequency, data.seasons, data.calendar_terms)
    if calendar is None:
        print(
            f"note: data.calendar_terms: this series has no season of two steps or more "
            f"(data.seasons {list(data.seasons)}): no calendar features"
        )
        return {}
    print(f"calendar features: {', '.join(calendar.names)}")
    return calendar.to_json()
