"""Forecast scoring: baselines, metrics and plots on the same test windows.

Peers: the last observed value, the seasonal naive forecast (the value one season earlier), the
ridge regression from the latest lags (every column, original units) to every horizon step, its lag
count, penalty, square-root or log transform and differencing chosen by rolling-origin validation
(`choose_ridge`) and fitted on train and validation, kept in the assets so that `evaluate --data
FILE` compares the same peers, and statsforecast's AutoETS, AutoARIMA and AutoTheta filtered over
the same windows (`statistical_forecasts`). `best_baseline` is the strongest on the test part. The
model's linear base is chosen on the same validation among that ridge, the seasonal naive forecast
and those peers distilled into linear maps of the window (`choose_linear_base`). Metrics per
forecaster: MAE, RMSE, MASE (MAE over the mean absolute seasonal-naive error on the training part,
with the series' season) and MAE per horizon step; quantile models add interval coverage.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import sklearn.linear_model

from apps.core.app import EvaluationOutputs
from apps.core.metrics import headline
from apps.core.plots import plt
from apps.forecasting.config import ForecastingConfig
from layers.highway import LOG_CAP, LOG_FLOOR
from layers.losses import median_index
from pipelines import calendar as calendar_terms
from pipelines import windows

if TYPE_CHECKING:
    from apps.forecasting.data import SeriesAssets, SeriesDatasets

# The grid `choose_ridge` searches besides the lag counts (`evaluation.ridge_lags`).
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
# Transforms applied to every column before the ridge: (forward, inverse) on numpy arrays; the
# Box-Cox family's usual grid (lambda 1, 1/2, 0), as `layers.highway.LinearForecast` applies it.
RIDGE_TRANSFORMS = {
    "identity": (lambda values: values, lambda values: values),
    "sqrt": (np.sqrt, lambda values: np.square(np.maximum(values, 0.0))),
    "log": (
        lambda values: np.log(np.maximum(values, LOG_FLOOR)),
        lambda values: np.exp(np.minimum(values, LOG_CAP)),
    ),
}
# What the ridge forecasts: levels, changes from the last value, or changes from the value one
# season earlier (inputs differenced the same way).
RIDGE_DIFFERENCES = ("none", "first", "seasonal")
# The linear base candidate that repeats the last season (the last value for season 1).
SEASONAL_NAIVE = "seasonal_naive"
# Origins of the rolling-origin validation: the validation part is cut into this many
# consecutive pieces, each scored by a candidate fitted on every step before it.
VALIDATION_ORIGINS = 3


@dataclasses.dataclass(frozen=True)
class LinearChoice:
    """A linear forecaster: the last `lags` steps of every column, `transform`ed, `difference`d
    (`season` steps for the seasonal difference), to every horizon step; L2 penalty `alpha`.

    With `statistical` (statsforecast model names), it is the mean forecast of those models
    distilled into a map of each target's own last `lags` steps (`distilled_forecaster`; identity,
    no difference) instead of a ridge fitted on the truths; `(SEASONAL_NAIVE,)` is the seasonal
    naive forecast itself. With `calendar`, the map also reads the calendar terms of the first
    forecast step (`pipelines.calendar`; those of the later steps are fixed rotations of them,
    which the per-step weights absorb), after the window's values.
    """

    lags: int
    alpha: float
    transform: str
    difference: str
    season: int
    statistical: tuple[str, ...] = ()
    calendar: bool = False

    @property
    def name(self) -> str:
        if not self.statistical:
            name = "ridge"
        elif self.statistical == (SEASONAL_NAIVE,):
            name = SEASONAL_NAIVE
        else:
            name = "+".join(self.statistical) + " (distilled)"
        return name + " + calendar" if self.calendar else name


def last_value_forecast(histories: np.ndarray, horizon: int, targets: int) -> np.ndarray:
    """Repeats each window's last target values: (windows, horizon, targets)."""
    return np.repeat(histories[:, -1:, :targets], horizon, axis=1)


def seasonal_naive_forecast(
    histories: np.ndarray, horizon: int, targets: int, season: int
) -> np.ndarray:
    """Step `h` (1-based) takes the value `season * ceil(h / season)` steps before it."""
    lookback = histories.shape[1]
    if not 1 <= season <= lookback:
        raise ValueError(f"season: expected 1..{lookback} (the lookback), got {season}")
    steps = lookback - season + np.arange(horizon) % season
    return histories[:, steps, :targets]


def fit_ridge(
    histories: np.ndarray, futures: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights (lookback * columns, horizon * targets) and bias; the bias is unpenalized.

    `histories` and `futures` are flattened per window (2-D inputs are used as they are) and
    fitted in float64 by scikit-learn's `Ridge`.
    """
    features = histories.reshape(len(histories), -1).astype(np.float64)
    outputs = futures.reshape(len(futures), -1).astype(np.float64)
    ridge = sklearn.linear_model.Ridge(alpha=alpha).fit(features, outputs)
    return ridge.coef_.T, ridge.intercept_


def ridge_path(
    features: np.ndarray, outputs: np.ndarray, alphas: tuple[float, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`fit_ridge` of 2-D `features` and `outputs` for every alpha, from one SVD."""
    feature_mean, output_mean = features.mean(axis=0), outputs.mean(axis=0)
    left, singular, right = np.linalg.svd(features - feature_mean, full_matrices=False)
    projected = left.T @ (outputs - output_mean)
    fits = []
    for alpha in alphas:
        weights = right.T @ ((singular / (singular**2 + alpha))[:, None] * projected)
        fits.append((weights, output_mean - feature_mean @ weights))
    return fits


def ridge_forecast(histories: np.ndarray, weights: np.ndarray, bias: np.ndarray, horizon: int):
    flat = histories.reshape(len(histories), -1) @ weights + bias
    return flat.reshape(len(histories), horizon, -1)  # (windows, horizon, targets)


def difference_maps(
    lags: int, columns: int, horizon: int, targets: int, difference: str, season: int
) -> tuple[np.ndarray, np.ndarray]:
    """The linear maps of `difference` on a flattened window (lags * columns, step-major).

    Returns `features` (lags * columns, differenced features), which turns a window into its
    differences, and `reference` (lags * columns, horizon * targets), which gives the level
    each forecast step's change is added to (zero for "none", the last value for "first", the
    value one season before the step for "seasonal"). A change forecast `W` of the features
    is then the level forecast `features @ W + reference` of the window.
    """
    size = lags * columns
    identity = np.eye(size)
    reference = np.zeros((size, horizon * targets))
    if difference == "none":
        return identity, reference
    lag = 1 if difference == "first" else season
    if lags <= lag:
        raise ValueError(f"lags: a {difference} difference needs more than {lag} lags, got {lags}")
    # (lags, columns, size) -> differences of consecutive rows `lag` apart
    rows = identity.reshape(lags, columns, size)
    features = (rows[lag:] - rows[:-lag]).reshape(-1, size).T
    for step in range(horizon):
        source = lags - 1 if difference == "first" else lags - season + step % season
        for target in range(targets):
            reference[source * columns + target, step * targets + target] = 1.0
    return features, reference


def fit_choice(
    histories: np.ndarray,
    futures: np.ndarray,
    choice: LinearChoice,
    calendar_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (lags * columns [+ calendar terms], horizon * targets) and bias of `choice` on
    these windows, in `choice.transform` space and folded back onto the transformed window: the
    forecast is `inverse(forward(window[-lags:]) @ weights + bias)` whatever the difference
    (with `choice.calendar`, the window's `calendar_rows` follow its values)."""
    return _fit_choices(histories, futures, choice, (choice.alpha,), calendar_rows)[0]


def _fit_choices(histories, futures, choice, alphas, calendar_rows=None):
    forward, _ = RIDGE_TRANSFORMS[choice.transform]
    windows_count, _, columns = histories.shape
    horizon, targets = futures.shape[1:]
    inputs = forward(histories[:, -choice.lags :]).reshape(windows_count, -1)
    outputs = forward(futures).reshape(windows_count, -1)
    features, reference = difference_maps(
        choice.lags, columns, horizon, targets, choice.difference, choice.season
    )
    design = inputs @ features
    if not choice.calendar:
        fits = ridge_path(design, outputs - inputs @ reference, alphas)
        return [(features @ weights + reference, bias) for weights, bias in fits]
    # The terms (in [-1, 1]) scaled to the window features' spread, so that one penalty suits
    # both; the scale is folded back into their weights.
    scale = float(design.std()) or 1.0
    fits = ridge_path(
        np.concatenate([design, scale * calendar_rows], axis=1),
        outputs - inputs @ reference,
        alphas,
    )
    size = features.shape[1]
    return [
        (np.concatenate([features @ weights[:size] + reference, scale * weights[size:]]), bias)
        for weights, bias in fits
    ]


def choice_forecast(
    histories: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    choice: LinearChoice,
    horizon: int,
    calendar_rows: np.ndarray | None = None,
) -> np.ndarray:
    """The forecast (windows, horizon, targets) of `fit_choice`'s weights, in original units."""
    forward, inverse = RIDGE_TRANSFORMS[choice.transform]
    inputs = forward(histories[:, -choice.lags :]).reshape(len(histories), -1)
    if choice.calendar:
        inputs = np.concatenate([inputs, calendar_rows], axis=1)
    return inverse(ridge_forecast(inputs, weights, bias, horizon))


def usable_transforms(values: np.ndarray) -> list[str]:
    """The `RIDGE_TRANSFORMS` defined on every one of `values`: the square root where none is
    negative, the logarithm where all are positive."""
    return ["identity"] + ["sqrt"] * bool(np.all(values >= 0)) + ["log"] * bool(np.all(values > 0))


def ridge_candidates(
    lag_counts: tuple[int, ...], season: int, transforms: list[str], calendar: bool = False
) -> list[LinearChoice]:
    """Every lag count, transform, difference and (with `calendar`) use of the calendar terms
    of the grid (alpha 0: the path covers it)."""
    candidates = []
    for lags, transform, difference, with_calendar in itertools.product(
        lag_counts, transforms, RIDGE_DIFFERENCES, (False, True) if calendar else (False,)
    ):
        if difference == "first" and lags < 2 or difference == "seasonal" and lags <= season:
            continue
        if difference == "seasonal" and season < 2:
            continue
        candidates.append(
            LinearChoice(lags, 0.0, transform, difference, season, calendar=with_calendar)
        )
    return candidates


def window_calendar(
    next_terms: np.ndarray | None, starts: np.ndarray, lookback: int
) -> np.ndarray | None:
    """The calendar terms of each window's first forecast step, from `next_terms` (steps, size)
    (`Calendar.next_terms` of the series' times); None without a calendar."""
    return None if next_terms is None else next_terms[starts + lookback - 1]


def split_windows(
    values: np.ndarray,
    split: windows.Split,
    lookback: int,
    horizon: int,
    targets: int,
    next_terms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Histories, futures and calendar rows (`window_calendar`) of the windows of `split`."""
    starts = windows.window_starts(split, lookback, horizon)
    histories, futures = windows.window_arrays(values, starts, lookback, horizon, targets)
    return histories, futures, window_calendar(next_terms, starts, lookback)


def validation_origins(validation: windows.Split, horizon: int) -> list[windows.Split]:
    """Up to `VALIDATION_ORIGINS` consecutive pieces of `validation`, each holding at least one
    window."""
    count = max(1, min(VALIDATION_ORIGINS, len(validation) // horizon))
    edges = np.linspace(validation.start, validation.end, count + 1).round().astype(int)
    return [
        windows.Split(int(low), int(high)) for low, high in zip(edges[:-1], edges[1:], strict=True)
    ]


def validation_pieces(
    values: np.ndarray,
    validation: windows.Split,
    lookback: int,
    horizon: int,
    targets: int,
    next_terms: np.ndarray | None = None,
) -> list[tuple[windows.Split, tuple, tuple]]:
    """Per rolling origin (`validation_origins`): its piece, and the `split_windows` of the
    windows whose targets end before it and of the windows of the piece."""
    pieces = []
    for piece in validation_origins(validation, horizon):
        train = split_windows(
            values, windows.Split(0, piece.start), lookback, horizon, targets, next_terms
        )
        scored = split_windows(values, piece, lookback, horizon, targets, next_terms)
        if len(train[0]) and len(scored[0]):
            pieces.append((piece, train, scored))
    if not pieces:
        raise ValueError("validation: no validation window with a training window before it")
    return pieces


def choose_ridge(
    values: np.ndarray,
    validation: windows.Split,
    lookback: int,
    horizon: int,
    targets: int,
    lag_counts: tuple[int, ...],
    season: int,
    next_terms: np.ndarray | None = None,
) -> tuple[LinearChoice, float]:
    """The ridge with the lowest rolling-origin validation MAE, and that MAE.

    `values` (time, columns) in original units up to the end of `validation`; every origin
    (`validation_origins`) fits on the windows whose targets end before it and scores the
    windows of its piece; the MAE is the mean over the pieces. The square root and logarithm
    are tried where every value is in their domain (`usable_transforms`), the calendar terms
    only with `next_terms` (`Calendar.next_terms`).
    """
    pieces = validation_pieces(values, validation, lookback, horizon, targets, next_terms)
    lag_counts = tuple(lags for lags in lag_counts if lags <= lookback) or (lookback,)
    transforms = usable_transforms(values[: validation.end])
    best = None
    for candidate in ridge_candidates(lag_counts, season, transforms, next_terms is not None):
        errors = np.zeros(len(RIDGE_ALPHAS))
        for _, (train_histories, train_futures, train_rows), (histories, truth, rows) in pieces:
            fits = _fit_choices(train_histories, train_futures, candidate, RIDGE_ALPHAS, train_rows)
            for index, (weights, bias) in enumerate(fits):
                forecast = choice_forecast(histories, weights, bias, candidate, horizon, rows)
                errors[index] += np.abs(forecast - truth).mean()
        index = int(np.argmin(errors))
        if best is None or errors[index] < best[1]:
            best = (dataclasses.replace(candidate, alpha=RIDGE_ALPHAS[index]), errors[index])
    choice, error = best
    return choice, float(error / len(pieces))


def nested_ridge_validation(
    values: np.ndarray,
    validation: windows.Split,
    lookback: int,
    horizon: int,
    targets: int,
    lag_counts: tuple[int, ...],
    season: int,
    next_terms: np.ndarray | None = None,
) -> tuple[float, list[np.ndarray]]:
    """The rolling-origin validation MAE of the ridge's whole procedure, grid search included,
    and its forecasts of each piece (`validation_pieces`): before each piece, `choose_ridge`
    picks the ridge from the steps before it alone (its own rolling-origin validation on as
    many steps as `validation`, ending where the piece starts), fitted on the windows before it.

    This is nested cross-validation (Varma and Simon, 2006). `choose_ridge`'s own MAE is the
    lowest of its grid's on the pieces themselves, biased low by the search most where the
    pieces hold a few windows, while each statistical model brings one specification, found on
    the training part; `choose_linear_base` compares the candidates on this MAE. Raises
    ValueError where the steps before a piece hold no inner validation window with a training
    window before it.
    """
    errors, forecasts = [], []
    for piece, (histories, futures, rows), (scored, truth, scored_rows) in validation_pieces(
        values, validation, lookback, horizon, targets, next_terms
    ):
        inner = windows.Split(max(0, piece.start - len(validation)), piece.start)
        choice, _ = choose_ridge(
            values[: piece.start], inner, lookback, horizon, targets, lag_counts, season,
            next_terms,
        )  # fmt: skip
        weights, bias = fit_choice(histories, futures, choice, rows)
        forecasts.append(choice_forecast(scored, weights, bias, choice, horizon, scored_rows))
        errors.append(np.abs(forecasts[-1] - truth).mean())
    return float(np.mean(errors)), forecasts


# statsforecast's models as linear forecasters of the window, for the linear base. AutoETS,
# AutoARIMA and AutoTheta read a series' whole history through their state, which a served
# window does not carry; but their point forecasts are (nearly) linear in the latest values: an
# additive ETS or an ARIMA forecast is a decaying weighted sum of the past (its state-space or
# AR-infinity form), and Theta is simple exponential smoothing with a drift. So each model,
# fitted on a target's history, is distilled into the linear map from the window's last
# `lookback` values to its `horizon` forecasts, by least squares on its own forecasts from the
# latest window ends, and runs in the export as the linear base's one matrix product (no
# statsforecast in the graph, on any device). statsforecast has no such export (its models are
# NumPy/Numba state machines); the distillation is ours. The base is then chosen on the
# rolling-origin validation windows among the validation-chosen ridge, each distilled model and
# their mean (forecast combination, as the M4 competition's combined benchmarks did). Each
# model's specification is searched once, on the training part, and kept in the later fits
# (the validation pieces, the refit on train and validation: `specified_model`).

# A model is fitted on at most this many of the latest steps (AutoARIMA on 1,700 monthly
# steps: 47 s; on 600: seconds), and distilled on the latest this many window ends and the end.
DISTILLATION_FIT_STEPS = 600
DISTILLED_ORIGINS = 500
# Ridge penalty of the distillation, relative to the windows' centred sum of squares per lag
# (their variance times their count): the targets are the model's own forecasts, so the fit
# is near exact and the penalty only steadies it.
DISTILLATION_RELATIVE_ALPHA = 1e-4


def specification_steps(values: np.ndarray, before: int) -> np.ndarray:
    """The steps a statistical model's specification is searched on: the latest
    `DISTILLATION_FIT_STEPS` before `before`, in float64."""
    return values[max(0, before - DISTILLATION_FIT_STEPS) : before].astype(np.float64)


def specification(model) -> str:
    """A `specified_model` in the usual notation: ARIMA(p,d,q)(P,D,Q)[m], ETS(A,Ad,N), Theta
    (OTM)."""
    if hasattr(model, "order"):
        drift = " with drift" if model.include_drift else ""
        return (
            f"ARIMA({','.join(map(str, model.order))})"
            f"({','.join(map(str, model.seasonal_order))})[{model.season_length}]{drift}"
        )
    if hasattr(model, "damped"):
        error, trend, season = model.model
        return f"ETS({error},{trend}{'d' if model.damped else ''},{season})"
    return f"Theta ({model.model})"


def specified_model(name: str, series: np.ndarray, season: int):
    """statsforecast's automatic model `name` (AutoARIMA, AutoETS, AutoTheta) fitted on `series`,
    returned unfitted with the specification it found fixed: the ARIMA orders, mean and drift;
    the ETS error, trend, season and damping; the Theta variant. Fitting it on more steps
    re-estimates the parameters only, so the model a validation piece scores is the model
    refitted after it; the order search on 53 to 71 quarterly steps of austres moves from a
    first to a second difference as the steps grow, and the refit then forecasts elsewhere.
    """
    import statsforecast.models

    found = getattr(statsforecast.models, name)(season_length=season).fit(series).model_
    if name == "AutoARIMA":
        p, q, seasonal_p, seasonal_q, period, d, seasonal_d = found["arma"][:7]
        return statsforecast.models.ARIMA(
            order=(p, d, q),
            season_length=period,
            seasonal_order=(seasonal_p, seasonal_d, seasonal_q),
            include_mean="intercept" in found["coef"],
            include_drift="drift" in found["coef"],
        )
    if name == "AutoETS":
        components = found["components"]  # error, trend, season, "D" when damped
        return statsforecast.models.AutoETS(
            season_length=season, model=components[:3], damped=components[3] == "D"
        )
    if name == "AutoTheta":
        return statsforecast.models.AutoTheta(season_length=season, model=found["modeltype"])
    raise ValueError(f"{name}: no fixed specification known (AutoARIMA, AutoETS, AutoTheta)")


def distilled_forecaster(
    values: np.ndarray,
    end: int,
    lookback: int,
    horizon: int,
    targets: int,
    season: int,
    name: str,
    next_terms: np.ndarray | None = None,
    specified_before: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """statsforecast's `name` fitted on each target column of `values[:end]`, distilled into a
    kernel (lookback * columns, horizon * targets) and bias (horizon * targets) of the window;
    with `next_terms` (`Calendar.next_terms`), of the window and the calendar terms of its
    first forecast step (kernel rows after the window's), which carry the phase of a seasonal
    model's state that the window alone does not. With `specified_before`, the model's
    specification is searched on the steps before it (`specified_model`) and only its
    parameters are fitted on those before `end`.

    Each target's forecasts depend on its own history only (the kernel is zero elsewhere),
    like the peer `evaluate` compares. `SEASONAL_NAIVE` is linear as it is: its exact map (no
    calendar rows). Raises ValueError when the model fails or forecasts a non-finite value,
    ImportError when statsforecast is missing.
    """
    columns = values.shape[1]
    if name == SEASONAL_NAIVE:
        if not 1 <= season <= lookback:
            raise ValueError(f"season: expected 1..{lookback} (the lookback), got {season}")
        kernel = np.zeros((lookback, columns, horizon, targets))
        for step in range(horizon):
            for target in range(targets):
                kernel[lookback - season + step % season, target, step, target] = 1.0
        return kernel.reshape(lookback * columns, -1), np.zeros(horizon * targets)
    import statsforecast.models

    first = max(0, end - DISTILLATION_FIT_STEPS)
    origins = np.arange(max(first + lookback, end - DISTILLED_ORIGINS), end + 1)
    kernel = np.zeros((lookback, columns, horizon, targets))
    terms = 0 if next_terms is None else next_terms.shape[1]
    calendar_kernel = np.zeros((terms, horizon, targets))
    bias = np.zeros((horizon, targets))
    for target in range(targets):
        series = values[first:end, target].astype(np.float64)
        try:
            if specified_before is None:
                model = getattr(statsforecast.models, name)(season_length=season)
            else:
                known = specification_steps(values, specified_before)[:, target]
                model = specified_model(name, known, season)
            model = model.fit(series)
            forecasts = np.stack(
                [model.forward(series[: origin - first], h=horizon)["mean"] for origin in origins]
            )  # (origins, horizon)
        except Exception as error:  # noqa: BLE001 - any failure of the third-party fit
            raise ValueError(f"{name} failed on column {target}: {error}") from error
        if not np.all(np.isfinite(forecasts)):
            raise ValueError(f"{name} forecast a non-finite value on column {target}")
        recent = np.stack([values[origin - lookback : origin, target] for origin in origins])
        spread = float(np.mean(np.square(recent - recent.mean(axis=0))))
        alpha = DISTILLATION_RELATIVE_ALPHA * spread * len(recent)
        scale = np.sqrt(spread) or 1.0  # the calendar terms on the window's scale
        design = recent
        if terms:
            design = np.concatenate([recent, scale * next_terms[origins - 1]], axis=1)
        [(weights, intercept)] = ridge_path(design, forecasts, (max(alpha, 1e-12),))
        kernel[:, target, :, target], bias[:, target] = weights[:lookback], intercept
        calendar_kernel[:, :, target] = scale * weights[lookback:]
    return (
        np.concatenate(
            [
                kernel.reshape(lookback * columns, horizon * targets),
                calendar_kernel.reshape(terms, horizon * targets),
            ]
        ),
        bias.reshape(-1),
    )


def choose_linear_base(
    values: np.ndarray,
    validation: windows.Split,
    lookback: int,
    horizon: int,
    targets: int,
    ridge: LinearChoice,
    ridge_error: float,
    models: tuple[str, ...],
    next_terms: np.ndarray | None = None,
) -> tuple[LinearChoice, dict[str, float], tuple[np.ndarray, np.ndarray] | None]:
    """The linear base with the lowest rolling-origin validation MAE among `ridge` (its MAE
    `ridge_error`), the seasonal naive forecast, each of `models` distilled (with the calendar
    terms when `next_terms` is given) and the mean of them; every candidate's MAE; and, for a
    chosen candidate other than the ridge, its fit on the steps before `validation` (the first
    piece's, which `fit_linear` there would repeat), or None.

    As the ridge is, the models are fitted and distilled on the steps before each validation
    piece (`validation_pieces`) and score its windows; the MAE is the mean over the pieces. A
    model that fails on a piece is left out with a printed note.
    """
    pieces = validation_pieces(values, validation, lookback, horizon, targets, next_terms)
    fits = {}  # model name -> (kernel, bias) per piece
    for name in models:
        try:
            fits[name] = [
                distilled_forecaster(
                    values,
                    piece.start,
                    lookback,
                    horizon,
                    targets,
                    ridge.season,
                    name,
                    next_terms,
                    validation.start,
                )  # fmt: skip
                for piece, _, _ in pieces
            ]
        except ValueError as error:
            print(f"note: the linear base leaves out {error}")
        except ImportError:
            print(
                "note: statsforecast is not installed: the linear base is chosen among the "
                "ridge and the seasonal naive forecast (pip install 'rnn-suite[forecast-peers]')"
            )
            break
    candidates = {(name,): per_piece for name, per_piece in fits.items()}
    if len(fits) > 1:
        candidates[tuple(fits)] = [
            tuple(np.mean([fits[name][index][part] for name in fits], axis=0) for part in (0, 1))
            for index in range(len(pieces))
        ]
    candidates[(SEASONAL_NAIVE,)] = [
        distilled_forecaster(values, 0, lookback, horizon, targets, ridge.season, SEASONAL_NAIVE)
    ] * len(pieces)
    errors = {ridge.name: ridge_error}
    best, best_error, best_fits = ridge, ridge_error, None
    for names, per_piece in candidates.items():
        calendar = next_terms is not None and names != (SEASONAL_NAIVE,)
        choice = LinearChoice(lookback, 0.0, "identity", "none", ridge.season, names, calendar)
        error = np.mean(
            [
                np.abs(
                    choice_forecast(histories, kernel, bias, choice, horizon, rows) - truth
                ).mean()
                for (kernel, bias), (_, _, (histories, truth, rows)) in zip(
                    per_piece, pieces, strict=True
                )
            ]
        )
        errors[choice.name] = float(error)
        if error < best_error:
            best, best_error, best_fits = choice, float(error), per_piece
    first_piece = pieces[0][0]
    train_fit = best_fits[0] if best_fits and first_piece.start == validation.start else None
    return best, errors, train_fit


def fit_linear(
    values: np.ndarray,
    end: int,
    lookback: int,
    horizon: int,
    targets: int,
    choice: LinearChoice,
    next_terms: np.ndarray | None = None,
    specified_before: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`choice` fitted on the steps before `end`: the ridge on the windows whose targets end
    there, or its statistical models fitted there and distilled (their mean; specified on the
    steps before `specified_before` when given, `distilled_forecaster`); with
    `choice.calendar`, on the calendar terms of `next_terms` too."""
    terms = next_terms if choice.calendar else None
    if not choice.statistical:
        histories, futures, rows = split_windows(
            values, windows.Split(0, end), lookback, horizon, targets, terms
        )
        return fit_choice(histories, futures, choice, rows)
    fits = [
        distilled_forecaster(
            values, end, lookback, horizon, targets, choice.season, name, terms, specified_before
        )
        for name in choice.statistical
    ]
    return np.mean([kernel for kernel, _ in fits], axis=0), np.mean([b for _, b in fits], axis=0)


def statistical_forecasts(
    values: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    season: int,
    models: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """statsforecast's `models` forecasting `horizon` steps from each of the consecutive
    `origins` of the columns of `values` (time, targets), each column its own series.

    Each model is fitted once on the steps before the first origin and then filtered forward
    over the later steps (`cross_validation(refit=False)`), so every forecast reads the history
    before its origin only, as the app's windows do. Returns (windows, horizon, targets) per
    model name. Raises ImportError when statsforecast is not installed.
    """
    import pandas as pd
    import statsforecast
    import statsforecast.models

    if not len(origins) or np.any(np.diff(origins) != 1) or origins[-1] + horizon != len(values):
        raise ValueError(
            f"origins: expected consecutive steps, the last {horizon} before the end "
            f"({len(values)}), got {origins}"
        )
    steps, targets = values.shape
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(targets), steps),
            "ds": np.tile(np.arange(steps), targets),
            "y": values.T.reshape(-1).astype(np.float64),
        }
    )
    forecaster = statsforecast.StatsForecast(
        models=[getattr(statsforecast.models, name)(season_length=season) for name in models],
        freq=1,
    )
    result = forecaster.cross_validation(
        df=frame, h=horizon, n_windows=len(origins), step_size=1, refit=False
    )
    result = result.sort_values(["unique_id", "cutoff", "ds"])
    # (targets, windows, horizon) -> (windows, horizon, targets)
    return {
        name: np.moveaxis(result[name].to_numpy().reshape(targets, len(origins), horizon), 0, -1)
        for name in models
    }


def point_metrics(forecast: np.ndarray, truth: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE and MASE over everything; MAE per horizon step (averaged over targets)."""
    errors = forecast - truth
    absolute = np.abs(errors)
    return {
        "mae": float(absolute.mean()),
        "rmse": float(np.sqrt((errors**2).mean())),
        "mase": float((absolute.mean(axis=(0, 1)) / scale).mean()),
        "mae_per_step": absolute.mean(axis=(0, 2)).tolist(),
    }


def interval_coverage(
    quantile_forecast: np.ndarray, truth: np.ndarray, levels: tuple[float, ...]
) -> dict[str, float]:
    """Share of truths inside [lowest, highest] quantile, against the nominal share."""
    low, high = np.argmin(levels), np.argmax(levels)
    inside = (truth >= quantile_forecast[..., low]) & (truth <= quantile_forecast[..., high])
    return {
        "interval": f"{levels[low]:g}-{levels[high]:g}",
        "coverage": float(inside.mean()),
        "nominal": float(levels[high] - levels[low]),
        "mean_width": float((quantile_forecast[..., high] - quantile_forecast[..., low]).mean()),
    }


def plot_forecasts(
    times: np.ndarray,
    truth: np.ndarray,
    forecast_steps: np.ndarray,
    forecasts: dict[str, np.ndarray],
    target_names: list[str],
    output: Path,
    interval: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """The series (history before the first forecast step, truth from it on) and back-to-back
    forecasts (step indices `forecast_steps`)."""
    figure, axes = plt.subplots(
        len(target_names), 1, figsize=(11, 3.2 * len(target_names)), squeeze=False
    )
    first = int(forecast_steps[0])
    for index, (axis, name) in enumerate(zip(axes[:, 0], target_names, strict=True)):
        axis.plot(
            times[: first + 1], truth[: first + 1, index], color="gray", linewidth=1.0,
            label="history",
        )  # fmt: skip
        axis.plot(times[first:], truth[first:, index], color="black", linewidth=1.2, label="truth")
        forecast_times = times[forecast_steps]
        if interval is not None:
            axis.fill_between(
                forecast_times,
                interval[0][:, index],
                interval[1][:, index],
                color="tab:blue",
                alpha=0.2,
                label="interval",
            )
        for label, values in forecasts.items():
            axis.plot(forecast_times, values[:, index], linewidth=1.0, label=label)
        axis.set_ylabel(name)
        axis.legend(loc="upper left", fontsize="small")
    axes[0, 0].set_title("forecasts on the test part (windows laid back to back)")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)


def plot_step_errors(step_errors: dict[str, list[float]], output: Path) -> None:
    """MAE per horizon step, one line per forecaster."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, errors in step_errors.items():
        axis.plot(np.arange(1, len(errors) + 1), errors, marker="o", label=label)
    axis.set_xlabel("horizon step")
    axis.set_ylabel("MAE (original units)")
    axis.set_title("error per horizon step on the test windows")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)


def model_inputs(
    normalized: np.ndarray,
    starts: np.ndarray,
    config: ForecastingConfig,
    assets: SeriesAssets,
    times: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The model's inputs for the windows at `starts` of the normalized series (and of its
    `times`, for a model that reads calendar features)."""
    lookback, horizon = config.data.lookback, config.data.horizon
    targets = len(assets.target_columns)
    histories, futures = windows.window_arrays(
        normalized, starts, lookback, horizon, targets=normalized.shape[1]
    )
    inputs = {"history": histories}
    if assets.known_future_indices:
        inputs["future_covariates"] = futures[..., assets.known_future_indices]
    if config.model.model_type == "autoregressive":
        inputs["teacher_targets"] = np.zeros((len(starts), horizon, targets), np.float32)
    calendar = assets.calendar
    if calendar is not None:
        last_times = calendar_terms.time_values(times)[starts + lookback - 1]
        inputs["calendar"] = calendar.terms(last_times, horizon).numpy()
    return inputs


def evaluate(
    trained_model: keras.Model,
    config: ForecastingConfig,
    datasets: SeriesDatasets,
    outputs: EvaluationOutputs,
) -> dict[str, Any]:
    """Scores the test windows against the baselines; plots forecasts and errors per step."""
    assets, series = datasets.assets, datasets.series
    lookback, horizon = config.data.lookback, config.data.horizon
    targets = len(assets.target_columns)
    quantiles = tuple(config.model.quantiles)
    normalized = assets.normalization.normalize(series.values).astype(np.float32)
    starts = datasets.test_starts
    histories, truth = windows.window_arrays(series.values, starts, lookback, horizon, targets)

    output = trained_model.predict(
        model_inputs(normalized, starts, config, assets, series.times), batch_size=256, verbose=0
    )
    target_columns = list(range(targets))
    if quantiles:
        levels = assets.normalization.denormalize(
            np.moveaxis(output, -1, 0), columns=target_columns
        )
        # (windows, horizon, targets, quantiles), sorted as the export sorts them
        levels = np.sort(np.moveaxis(levels, 0, -1), axis=-1)
        forecast = levels[..., median_index(quantiles)]
    else:
        forecast = assets.normalization.denormalize(output, columns=target_columns)
    forecasts = {
        "model": forecast,
        "last_value": last_value_forecast(histories, horizon, targets),
        "seasonal_naive": seasonal_naive_forecast(
            histories, horizon, targets, config.evaluation.season
        ),
    }
    if assets.ridge_kernel:  # chosen and fitted at training time (data.fit_linear_base)
        weights, bias = np.asarray(assets.ridge_kernel), np.asarray(assets.ridge_bias)
        forecasts["ridge"] = choice_forecast(
            histories, weights, bias, assets.ridge_choice, horizon,
            window_calendar(datasets.next_terms, starts, lookback),
        )  # fmt: skip
    notes = []
    if config.evaluation.peers:
        try:
            forecasts.update(
                statistical_forecasts(
                    series.values[:, :targets], starts + lookback, horizon,
                    config.evaluation.season, config.evaluation.peers,
                )
            )  # fmt: skip
        except ImportError:
            notes.append(
                "statsforecast is not installed, so AutoETS, AutoARIMA and AutoTheta are not "
                "compared: pip install 'rnn-suite[forecast-peers]'"
            )
            print(f"note: {notes[-1]}")

    scale = np.asarray(assets.seasonal_scale)
    metrics = {name: point_metrics(values, truth, scale) for name, values in forecasts.items()}
    if len(quantiles) > 1:
        metrics["model"]["interval"] = interval_coverage(levels, truth, quantiles)
    best_baseline = min(
        (name for name in metrics if name != "model"), key=lambda name: metrics[name]["mae"]
    )
    metrics["best_baseline"] = best_baseline
    metrics["mae_ratio_to_best_baseline"] = metrics["model"]["mae"] / max(
        metrics[best_baseline]["mae"], 1e-12
    )
    if notes:
        metrics["notes"] = notes

    tiles = np.arange(0, len(starts), horizon)
    if config.evaluation.plot_steps:
        tiles = tiles[: max(1, config.evaluation.plot_steps // horizon)]
    forecast_steps = (starts[tiles][:, None] + lookback + np.arange(horizon)).reshape(-1)
    first, last = max(forecast_steps[0] - lookback, 0), forecast_steps[-1] + 1

    def tiled(values):
        return values[tiles].reshape(-1, targets)  # (steps, targets)

    shown = {"model": tiled(forecast), best_baseline: tiled(forecasts[best_baseline])}
    interval = None
    if len(quantiles) > 1:
        low, high = int(np.argmin(quantiles)), int(np.argmax(quantiles))
        interval = (tiled(levels[..., low]), tiled(levels[..., high]))
    plot_forecasts(
        np.asarray(series.times[first:last]),
        series.values[first:last, :targets],
        forecast_steps - first,
        shown,
        assets.target_columns,
        outputs.path("forecasts.png"),
        interval,
    )
    plot_step_errors(
        {
            name: values["mae_per_step"]
            for name, values in metrics.items()
            if isinstance(values, dict)
        },
        outputs.path("error-per-step.png"),
    )
    metrics["headline"] = headline(
        "mae",
        metrics["model"]["mae"],
        {name: metrics[name]["mae"] for name in forecasts if name != "model"},
        higher_is_better=False,
    )
    return metrics


class ResidualGate(keras.callbacks.Callback):
    """Keeps the recurrent residual of a linear-base model only where it beats the base.

    The base alone is the model with the (median) forecast's columns of the output layer
    `head` at zero. At the start the callback scores it on `validation`; at each epoch end,
    unless the model's `monitor` is below the base's by more than the share `margin` and its
    per-window errors are below the base's by more than chance (`significant_gain`), those
    columns are set to zero, so that the model is its base (quantile models keep the other
    levels' residual, their interval), and the logs carry its scores, so the checkpoint and
    early stopping follow the model as it is saved. The base is scored as it was fitted (on the
    training part), and then, given `refit` (the same base fitted on train and validation), the
    saved model holds the refitted one: the choice is made out of sample, the forecast uses
    every step before the test part. The next epoch trains on from the weights it had before.
    At the end it prints which of the two the best epoch kept.
    """

    def __init__(
        self,
        validation,
        monitor: str,
        median_columns: np.ndarray,
        horizon: int,
        median_level: int | None,
        refit: list[np.ndarray] | None = None,
        margin: float = 0.0,
    ):
        super().__init__()
        self.validation, self.monitor, self.median_columns = validation, monitor, median_columns
        self.horizon, self.median_level = horizon, median_level
        self.refit, self.margin = refit, margin
        self.trained_weights = None
        self.kept: list[tuple[float, bool]] = []
        self.base_scores: dict[str, float] = {}
        self.base_errors = np.zeros(0)

    def _window_errors(self) -> np.ndarray:
        """The point forecast's mean absolute error per validation window, in time order."""
        output, truth = dataset_outputs(self.model, self.validation)
        if self.median_level is not None:
            output = output[..., self.median_level]
        return np.abs(output - truth).mean(axis=(1, 2))

    def _gate(self) -> dict[str, float]:
        head = self.model.get_layer("head")
        kernel, bias = head.get_weights()
        kernel[:, self.median_columns], bias[self.median_columns] = 0.0, 0.0
        head.set_weights([kernel, bias])
        scores = self.model.evaluate(self.validation, verbose=0, return_dict=True)
        return {f"val_{name}": float(value) for name, value in scores.items()}

    def on_train_begin(self, logs=None):
        weights = self.model.get_layer("head").get_weights()
        self.base_scores = self._gate()
        self.base_errors = self._window_errors()
        self.model.get_layer("head").set_weights(weights)

    def on_epoch_begin(self, epoch, logs=None):
        if self.trained_weights is not None:
            head_weights, base_weights = self.trained_weights
            self.model.get_layer("head").set_weights(head_weights)
            self.model.get_layer("linear_base").set_weights(base_weights)
            self.trained_weights = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.monitor not in logs:
            return
        keep = logs[self.monitor] < self.base_scores[self.monitor] * (
            1.0 - self.margin
        ) and significant_gain(self.base_errors, self._window_errors(), self.horizon)
        if not keep:
            self.trained_weights = (
                self.model.get_layer("head").get_weights(),
                self.model.get_layer("linear_base").get_weights(),
            )
            logs.update(self._gate())
            if self.refit is not None:
                self.model.get_layer("linear_base").set_weights(self.refit)
        self.kept.append((float(logs[self.monitor]), keep))

    def on_train_end(self, logs=None):
        if not self.kept:
            return
        value, keep = min(self.kept)
        base = self.base_scores[self.monitor]
        if keep:
            print(
                f"the recurrent residual beats its linear base on the validation windows "
                f"({self.monitor} {value:.4g} against {base:.4g}, more than the "
                f"{self.margin:.0%} margin and than chance): kept"
            )
        else:
            print(
                f"the recurrent residual does not beat its linear base on the validation "
                f"windows by more than the {self.margin:.0%} margin and than chance "
                f"({self.monitor} {base:.4g} for the base alone): the forecast is the linear "
                f"base alone"
                + (", refitted on train and validation" if self.refit is not None else "")
            )


def dataset_outputs(model: keras.Model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs and the truths of every `(inputs, truth)` batch, concatenated."""
    outputs, truths = [], []
    for inputs, truth in dataset:
        outputs.append(np.asarray(model(inputs, training=False)))
        truths.append(np.asarray(truth))
    return np.concatenate(outputs), np.concatenate(truths)


def significant_gain(base_errors: np.ndarray, errors: np.ndarray, horizon: int) -> bool:
    """True when `errors` (per validation window, in time order) are below `base_errors` by
    more than chance: the mean gain over blocks of `horizon` consecutive windows exceeds two
    standard errors (a one-sided paired t-test at about 2.5%). Windows one step apart share all
    but one truth, so single windows are not independent samples; with fewer than two blocks
    nothing can be shown and the answer is False."""
    blocks = len(errors) // horizon
    if blocks < 2:
        return False
    gains = (base_errors - errors)[: blocks * horizon].reshape(blocks, horizon).mean(axis=1)
    return bool(gains.mean() > 2.0 * gains.std(ddof=1) / np.sqrt(blocks))


def median_columns(config: ForecastingConfig, targets: int) -> np.ndarray:
    """The output columns of the direct head that hold the (median) point forecast."""
    quantiles = tuple(config.model.quantiles)
    levels = len(quantiles) or 1
    median = median_index(quantiles) if quantiles else 0
    # the head's columns are (horizon, targets, levels) flattened
    return np.arange(config.data.horizon * targets) * levels + median


def conformal_offset(residuals: np.ndarray, level: float, upper: bool) -> np.ndarray:
    """The split-conformal offset of one quantile level along axis 0 of `residuals` (truth
    minus that level's forecast, one row per validation window): their order statistic of rank
    ceil((n + 1) q) for an `upper` level, floor((n + 1) q) for a lower one. A new truth then
    falls below the forecast plus the offset with probability at least q (upper levels) or at
    most q (lower levels) when the windows are exchangeable (Vovk et al., "Algorithmic Learning
    in a Random World", 2005). The plain empirical quantile falls short of that on few
    windows: on 12 (a short series' validation part) its 0.1-0.9 interval holds about 67% of
    new values, these offsets' 84%. Fewer windows than the rank needs give the extreme
    residual, the widest finite offset."""
    count = len(residuals)
    rank = math.ceil((count + 1) * level) if upper else math.floor((count + 1) * level)
    return np.sort(residuals, axis=0)[min(max(rank, 1), count) - 1]


def interval_offsets(output: np.ndarray, truth: np.ndarray, quantiles: tuple) -> np.ndarray:
    """The split-conformal offsets (horizon, targets, levels) that calibrate the quantile levels
    of `output` (windows, horizon, targets, levels) on `truth` (windows, horizon, targets).

    The levels pair off outwards from the median (0.4 with 0.6, 0.1 with 0.9); each pair
    widens on both sides by the `conformal_offset` of its interval's share of the score
    max(lower - truth, truth - upper), Conformalized Quantile Regression's (Romano et al.,
    2019). A base biased on validation then widens the interval rather than moving it to one
    side: on austres (the panel) the validation bias of the base fitted on the training part
    vanished once refitted on train and validation, and one offset per level, from each
    level's own residuals, gave a 0.1-0.9 interval above the truth (16% coverage). A level
    without a partner moves by the offset of its own residuals. The median stays as it is and
    no level crosses it on the validation windows, so sorting the levels (as `evaluate` and
    the export do) leaves the point forecast unchanged.
    """
    median = median_index(quantiles)
    lower = sorted((q, i) for i, q in enumerate(quantiles) if q < quantiles[median])[::-1]
    upper = sorted((q, i) for i, q in enumerate(quantiles) if q > quantiles[median])
    offsets = np.zeros(output.shape[1:])
    for (low_level, low), (high_level, high) in zip(lower, upper, strict=False):
        scores = np.maximum(output[..., low] - truth, truth - output[..., high])
        widening = conformal_offset(scores, high_level - low_level, upper=True)
        offsets[..., low], offsets[..., high] = -widening, widening
    for level, index in lower[len(upper) :]:
        offsets[..., index] = conformal_offset(truth - output[..., index], level, upper=False)
    for level, index in upper[len(lower) :]:
        offsets[..., index] = conformal_offset(truth - output[..., index], level, upper=True)
    gap = output[..., median : median + 1] - output  # (windows, horizon, targets, levels)
    below, above = [i for _, i in lower], [i for _, i in upper]
    offsets[..., below] = np.minimum(offsets[..., below], gap[..., below].min(axis=0))
    offsets[..., above] = np.maximum(offsets[..., above], gap[..., above].max(axis=0))
    return offsets


def calibrate_quantiles(
    model: keras.Model, config: ForecastingConfig, datasets: SeriesDatasets
) -> bool:
    """Split-conformal offsets (`interval_offsets`) for the quantile levels of a direct model.

    Each level's bias in the output layer `head` moves, per horizon step and target, by its
    offset on the validation windows. The pinball-trained levels start at the point forecast
    and, early-stopped on few windows, hardly spread; the median (the point forecast the
    residual gate chose) is left as it is. The residuals are those of the linear base fitted
    on the training part: where the gate put in the base refitted on train and validation,
    its validation residuals would be in-sample, too small. True when it changed the model.
    """
    quantiles = tuple(config.model.quantiles)
    if len(quantiles) < 2 or config.model.model_type != "direct" or datasets.validation is None:
        return False
    base = model.get_layer("linear_base") if config.model.linear_base else None
    if base is not None:
        published = base.get_weights()
        assets = datasets.assets
        base.set_weights(
            [
                np.asarray(weights, np.float32)
                for weights in (assets.linear_kernel, assets.linear_bias)
            ]
        )
    output, truth = dataset_outputs(model, datasets.validation)
    if base is not None:
        base.set_weights(published)
    # output (windows, horizon, targets, levels), truth (windows, horizon, targets): normalized
    offsets = interval_offsets(output, truth, quantiles)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + offsets.reshape(-1).astype(bias.dtype)])
    before = interval_coverage(output, truth, quantiles)
    after = interval_coverage(output + offsets, truth, quantiles)
    print(
        f"quantiles calibrated on {len(truth)} validation windows: the {before['interval']} "
        f"interval held {before['coverage']:.0%} of the truths there, now {after['coverage']:.0%} "
        f"(nominal {before['nominal']:.0%})"
    )
    return True


def validation_callbacks(
    config: ForecastingConfig, datasets: SeriesDatasets
) -> list[keras.callbacks.Callback]:
    """The residual gate (`ResidualGate`) for a direct model on a linear base."""
    model = config.model
    if not (model.linear_base and model.model_type == "direct" and datasets.validation):
        return []
    assets = datasets.assets
    refit = None
    if not model.linear_base_refit:
        refit = [
            np.asarray(weights, np.float32)
            for weights in (assets.linear_refit_kernel, assets.linear_refit_bias)
        ]
    columns = median_columns(config, len(assets.target_columns))
    quantiles = tuple(model.quantiles)
    return [
        ResidualGate(
            datasets.validation,
            "val_mae",
            columns,
            config.data.horizon,
            median_index(quantiles) if quantiles else None,
            refit,
            model.residual_margin,
        )  # fmt: skip
    ]
