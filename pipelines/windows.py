"""Time splits, normalization and sliding windows over a series held in memory.

A window starting at step `s` holds the history `values[s : s + lookback]` (every column)
and the targets `values[s + lookback : s + lookback + horizon, target_indices]`. A split owns
the windows whose targets lie entirely inside it; their history may reach back into the
split before it, as a forecaster's history would. Windows start every `stride` steps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines.calendar import Calendar
from pipelines.errors import DataError


@dataclasses.dataclass(frozen=True)
class Split:
    """Half-open range `[start, end)` of time steps."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


def time_splits(
    num_steps: int, validation_fraction: float, test_fraction: float
) -> dict[str, Split]:
    """Splits `num_steps` in time order into train, validation and test (last) parts."""
    for name, fraction in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name}: expected a fraction in [0, 1), got {fraction!r}")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction + test_fraction must be below 1, got "
            f"{validation_fraction} + {test_fraction}"
        )
    test_start = num_steps - int(round(num_steps * test_fraction))
    validation_start = test_start - int(round(num_steps * validation_fraction))
    return {
        "train": Split(0, validation_start),
        "validation": Split(validation_start, test_start),
        "test": Split(test_start, num_steps),
    }


@dataclasses.dataclass
class Normalization:
    """Per-column mean and standard deviation (fitted on the training part only)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Normalization:
        values = np.asarray(values, dtype=np.float64)
        if len(values) == 0:
            raise DataError("cannot fit normalization statistics on an empty training part")
        std = values.std(axis=0)
        std = np.where(std > 1e-8, std, 1.0)
        return cls(values.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def normalize(self, values, columns: Sequence[int] | None = None):
        mean, std = self._select(columns)
        return (values - mean) / std

    def denormalize(self, values, columns: Sequence[int] | None = None):
        mean, std = self._select(columns)
        return values * std + mean

    def _select(self, columns: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        if columns is None:
            return self.mean, self.std
        columns = list(columns)
        return self.mean[columns], self.std[columns]

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, values: dict) -> Normalization:
        return cls(
            np.asarray(values["mean"], dtype=np.float32), np.asarray(values["std"], np.float32)
        )

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()) + "\n")

    @classmethod
    def load(cls, path: Path) -> Normalization:
        return cls.from_json(json.loads(Path(path).read_text()))


def window_starts(split: Split, lookback: int, horizon: int, stride: int = 1) -> np.ndarray:
    """First steps of the windows whose `horizon` targets lie inside `split`."""
    for name, value in (("lookback", lookback), ("horizon", horizon), ("stride", stride)):
        if value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    first = max(split.start - lookback, 0)
    last = split.end - lookback - horizon
    return np.arange(first, last + 1, stride, dtype=np.int64)


def window_arrays(
    values: np.ndarray, starts: np.ndarray, lookback: int, horizon: int, targets: int
) -> tuple[np.ndarray, np.ndarray]:
    """Histories (windows, lookback, columns) and targets (windows, horizon, targets)."""
    history_steps = starts[:, None] + np.arange(lookback)
    target_steps = starts[:, None] + lookback + np.arange(horizon)
    return values[history_steps], values[target_steps][..., :targets]


def make_windows(
    values: np.ndarray,
    starts: np.ndarray,
    lookback: int,
    horizon: int,
    target_indices: Sequence[int],
    known_future_indices: Sequence[int] = (),
    teacher_targets: bool = False,
    calendar: Calendar | None = None,
    times: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batched `({"history", ...}, targets)` windows of `values` (time, columns).

    The inputs hold `history` (lookback, columns); with `known_future_indices`, also
    `future_covariates` (horizon, len(known_future_indices)): those columns over the
    forecast steps; with `teacher_targets`, the targets again (for teacher forcing); with a
    `calendar` and the float64 `times` of the steps (`calendar.time_values`), `calendar`: its
    terms over the forecast steps (horizon, calendar.size), from the time of the last history
    step as the export computes them.
    Windows are cached, reshuffled each epoch when `shuffle`, batched and prefetched.
    """
    series = tf.constant(np.asarray(values, dtype=np.float32))
    target_indices = tf.constant(list(target_indices), dtype=tf.int32)
    known_future = list(known_future_indices)
    known_future_indices = tf.constant(known_future, dtype=tf.int32)
    if calendar is not None:
        times = tf.constant(np.asarray(times, dtype=np.float64))

    def window(start):
        history = series[start : start + lookback]
        future = series[start + lookback : start + lookback + horizon]
        targets = tf.gather(future, target_indices, axis=-1)
        inputs = {"history": history}
        if known_future:
            inputs["future_covariates"] = tf.gather(future, known_future_indices, axis=-1)
        if teacher_targets:
            inputs["teacher_targets"] = targets
        if calendar is not None:
            last_time = times[start + lookback - 1]
            inputs["calendar"] = calendar.terms(last_time[None], horizon)[0]
        return inputs, targets

    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(starts, dtype=np.int64))
    dataset = dataset.map(window, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        dataset = dataset.shuffle(max(len(starts), 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
