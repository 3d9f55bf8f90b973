"""Calendar features: Fourier terms of each season's phase at the forecast steps.

A season of `P` steps puts step `t` at the phase `t / P` (in cycles); its Fourier terms of
orders `k = 1..K` are `sin(2 pi k phase)` and `cos(2 pi k phase)` (Hyndman & Athanasopoulos,
"Forecasting: Principles and Practice", 3rd ed., section 7.4: Fourier terms as regressors).
The terms are known for the future, so a forecaster reads them at the steps it forecasts.
The phase comes from the time itself (seconds since 1970-01-01 UTC for dates, the number for a
numeric time column), so the same function gives the same terms to the training windows and to
the export, which computes them in its graph from the time of a request's last history step.
One implementation, in TensorFlow, serves both (`Calendar.terms`); NumPy callers call it
eagerly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from pipelines.sources.time_series import SECONDS_PER_DAY, Frequency

# The mean Gregorian year, the length of a calendar step of months, quarters and years.
SECONDS_PER_YEAR = 365.2425 * SECONDS_PER_DAY
CALENDAR_STEPS = {
    "monthly": SECONDS_PER_YEAR / 12,
    "quarterly": SECONDS_PER_YEAR / 4,
    "yearly": SECONDS_PER_YEAR,
}


@dataclasses.dataclass(frozen=True)
class Calendar:
    """Fourier terms of `seasons` (in steps), `orders[i]` sine-cosine pairs for season `i`, of
    a series whose steps are `step` time units apart (seconds for dates; the mean month, quarter
    or year for calendar steps)."""

    seasons: tuple[float, ...]
    orders: tuple[int, ...]
    step: float

    @classmethod
    def of(cls, frequency: Frequency, seasons: tuple[float, ...], order: int) -> Calendar | None:
        """Up to `order` pairs per season (at most half the season: the higher orders alias onto
        the lower ones at whole steps); None when no season has one."""
        step = CALENDAR_STEPS.get(frequency.name, frequency.step)
        kept = [(float(season), min(order, int(season // 2))) for season in seasons]
        kept = [(season, count) for season, count in kept if count > 0]
        if not kept:
            return None
        return cls(tuple(season for season, _ in kept), tuple(count for _, count in kept), step)

    @property
    def size(self) -> int:
        """Terms per step: a sine and a cosine per order of every season."""
        return 2 * sum(self.orders)

    @property
    def names(self) -> list[str]:
        return [
            f"{function}({order}x season {season:g})"
            for season, count in zip(self.seasons, self.orders, strict=True)
            for order in range(1, count + 1)
            for function in ("sin", "cos")
        ]

    def terms(self, last_times, horizon: int) -> tf.Tensor:
        """The terms of the `horizon` steps after each of `last_times` (batch,): float32
        (batch, horizon, size). The phase is reduced to one cycle in float64 before the sine,
        so times of the order of 1e9 seconds keep their precision; every op has a GPU kernel."""
        last_times = tf.convert_to_tensor(last_times, tf.float64)
        ahead = tf.range(1, horizon + 1, dtype=tf.float64)  # (horizon,)
        columns = []
        for season, count in zip(self.seasons, self.orders, strict=True):
            start = last_times / (season * self.step)  # cycles
            phase = (start - tf.floor(start))[:, None] + ahead[None, :] / season
            for order in range(1, count + 1):
                cycles = order * phase
                angle = tf.cast(2.0 * math.pi * (cycles - tf.floor(cycles)), tf.float32)
                columns += [tf.sin(angle), tf.cos(angle)]
        return tf.stack(columns, axis=-1)

    def next_terms(self, times: np.ndarray) -> np.ndarray:
        """The terms of the step after each of `times` (steps,), as NumPy (steps, size): the
        first forecast step of a window whose history ends there."""
        return self.terms(time_values(times), 1).numpy()[:, 0, :]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> Calendar | None:
        if not values:
            return None
        return cls(tuple(values["seasons"]), tuple(values["orders"]), float(values["step"]))


def time_values(times: np.ndarray) -> np.ndarray:
    """`times` as float64: seconds since 1970-01-01 UTC for dates, the numbers otherwise."""
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        return (times - np.datetime64(0, "s")) / np.timedelta64(1, "s")
    return times.astype(np.float64)
