"""Sensor clips: multichannel time series with a class each, the activity app's sensor mode.

Two layouts:
    folder   one sub-folder per class holding one file per clip: a .csv with a header row
             naming the channels (one row per time step), or an .npz holding one
             (time, channels) array (or several, one of them named "values")
    .csv     one long table with a clip-id column, a label column and the channel columns;
             a clip's rows are its time steps in file order and must share one label

Every clip must have the same channels: their count is taken from the first clip, or given
(the count the model was trained on). Values are float32; a cell that is not a number, or a
clip with a different channel count, raises `DataError` naming the file (row, column, counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.errors import DataError, check_text_file, listing, quote
from pipelines.sources.clips import LabeledClips, list_class_folders, pad_clips

SENSOR_SUFFIXES = (".csv", ".npz")


def read_sensor_clips(
    path: str | Path,
    channels: int | None = None,
    channel_columns: Sequence[str] | None = None,
    clip_column: str = "clip",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
) -> LabeledClips:
    """Reads sensor clips from a folder of class sub-folders or from one long .csv table.

    Args:
        path: the folder or the .csv file.
        channels: the expected channel count (from training); None: the first clip's.
        channel_columns: the CSV columns that are channels, in order; None: every column
            (of the table: every column but the clip and label columns).
        clip_column: the table's clip-id column; unused for a folder.
        label_column: the table's label column; unused for a folder.
        label_names: the known classes (from training), in their order; a label outside them
            is an error. None: the sorted labels (folder: sub-folder names).

    Returns:
        LabeledClips with (clips, time, channels) float32 frames padded to the longest clip,
        and the clip files (or table clip ids) as paths.

    Raises:
        DataError: a missing path or column, a cell that is no number, a channel count that
            differs, a clip with two labels, an unknown label, or no clips.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, channels, channel_columns, label_names)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _read_table(path, channels, channel_columns, clip_column, label_column, label_names)
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    raise DataError(
        f"{path}: unsupported sensor file type {path.suffix!r}; give a .csv table or a folder "
        "with one sub-folder per class of .csv or .npz clips"
    )


def read_sensor_clip(
    path: str | Path, channels: int | None = None, channel_columns: Sequence[str] | None = None
) -> np.ndarray:
    """Reads one clip file, a .csv with a header row or an .npz: (time, channels) float32.

    Args:
        path: the clip file.
        channels: the expected channel count (from training); None: any.
        channel_columns: the CSV columns that are channels, in order; None: every column.

    Raises:
        DataError: a missing file or column, a cell that is no number, or another channel
            count; the message names the file and the counts.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if path.suffix.lower() == ".npz":
        values = _read_npz(path)
    elif path.suffix.lower() == ".csv":
        values = _numeric(_read_csv(path), channel_columns, str(path))
    else:
        raise DataError(f"{path}: a sensor clip is a .csv or .npz file, got {path.suffix!r}")
    _Channels(channels).check(values, str(path))
    return values


def _read_folder(
    folder: Path,
    channels: int | None,
    channel_columns: Sequence[str] | None,
    label_names: Sequence[str] | None,
) -> LabeledClips:
    files, label_names, problems = list_class_folders(folder, SENSOR_SUFFIXES, label_names)
    if not files:
        raise DataError(f"{folder}: no sensor clips ({'; '.join(problems)})")
    clips, labels, paths = [], [], []
    expected = _Channels(channels)
    for path, label in files:
        if path.suffix.lower() == ".npz":
            values = _read_npz(path)
        else:
            values = _numeric(_read_csv(path), channel_columns, str(path))
        expected.check(values, str(path))
        clips.append(values)
        labels.append(label)
        paths.append(str(path))
    frames, lengths = pad_clips(clips, np.float32)
    return LabeledClips(
        frames=frames,
        lengths=lengths,
        labels=np.array(labels, dtype=np.int32),
        label_names=label_names,
        source=str(folder),
        paths=paths,
        problems=problems,
    )


def _read_table(
    path: Path,
    channels: int | None,
    channel_columns: Sequence[str] | None,
    clip_column: str,
    label_column: str,
    label_names: Sequence[str] | None,
) -> LabeledClips:
    table = _read_csv(path, (clip_column, label_column))
    for column in (clip_column, label_column):
        if column not in table.columns:
            raise DataError(
                f"{path}: no column {column!r}; columns found: {listing(table.columns)}"
            )
    if channel_columns is None:
        channel_columns = [
            column for column in table.columns if column not in (clip_column, label_column)
        ]
    values = _numeric(table, channel_columns, str(path))
    _Channels(channels).check(values, str(path))
    clip_ids = table[clip_column].fillna("").str.strip()
    table_labels = table[label_column].fillna("").str.strip()
    for column, cells in ((clip_column, clip_ids), (label_column, table_labels)):
        if (cells == "").any():
            raise DataError(f"{path} row {_row(cells.eq('').argmax())}: empty {column!r}")
    # Clips in order of first appearance; each clip's rows keep their file order.
    order = pd.unique(clip_ids)
    groups = clip_ids.groupby(clip_ids, sort=False).indices
    clips, clip_labels = [], []
    for clip_id in order:
        rows = groups[clip_id]
        labels = pd.unique(table_labels.iloc[rows])
        if len(labels) > 1:
            raise DataError(
                f"{path}: clip {quote(clip_id)} has rows with different labels: {listing(labels)}"
            )
        clips.append(values[rows])
        clip_labels.append(labels[0])
    known = sorted(set(clip_labels)) if label_names is None else list(label_names)
    unknown = [label for label in clip_labels if label not in known]
    if unknown:
        raise DataError(
            f"{path}: label {quote(unknown[0])} is not one of the known classes: {listing(known)}"
        )
    frames, lengths = pad_clips(clips, np.float32)
    return LabeledClips(
        frames=frames,
        lengths=lengths,
        labels=np.array([known.index(label) for label in clip_labels], dtype=np.int32),
        label_names=known,
        source=str(path),
        paths=[str(clip_id) for clip_id in order],
    )


class _Channels:
    """The channel count every clip must have: given, or set by the first clip."""

    def __init__(self, count: int | None):
        self.count = count
        self.first = None

    def check(self, values: np.ndarray, where: str) -> None:
        if self.count is None:
            self.count, self.first = values.shape[1], where
        if values.shape[1] != self.count:
            reference = f"as in {self.first}" if self.first else "as the model was trained"
            raise DataError(
                f"{where}: {values.shape[1]} channels, expected {self.count} ({reference})"
            )


def _row(index: int) -> int:
    """The file line of a table row: the header is line 1."""
    return int(index) + 2


def _numeric(table: pd.DataFrame, columns: Sequence[str] | None, where: str) -> np.ndarray:
    """The channel columns of a CSV table as (time, channels) float32."""
    columns = list(table.columns) if columns is None else list(columns)
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise DataError(
            f"{where}: no column {missing[0]!r}; columns found: {listing(table.columns)}"
        )
    if not columns or table.empty:
        raise DataError(f"{where}: no channel values")
    for column in columns:
        cells = pd.to_numeric(table[column], errors="coerce")
        bad = cells.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{where} row {_row(row)} column {column!r}: "
                f"{quote(table[column].iloc[row])} is not a number"
            )
    return table[columns].to_numpy(dtype=np.float32)


def _read_csv(path: Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    check_text_file(path, "CSV")
    try:
        return pd.read_csv(path, dtype=dict.fromkeys(text_columns, str))
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV table ({error})") from None


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path) as arrays:
            arrays = dict(arrays)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the .npz file ({error})") from None
    if len(arrays) != 1 and "values" not in arrays:
        raise DataError(
            f"{path}: expected one array or one named 'values'; found: {listing(arrays)}"
        )
    values = arrays["values"] if "values" in arrays else next(iter(arrays.values()))
    if values.ndim == 1:
        values = values[:, None]  # (time, 1)
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.number) or not len(values):
        raise DataError(
            f"{path}: expected a (time, channels) array of numbers, got {values.dtype} "
            f"{values.shape}"
        )
    return values.astype(np.float32)
