"""Labelled clips (video frames or sensor time series) and the class-folder layout they come in.

A clip is a sequence of frames: an image (height, width, channels) for video, one row of
channel values for a sensor. Clips of one source are stacked right-padded with zeros to the
longest, and `lengths` says how many frames of each are real: frame t of clip i is real when
t < lengths[i], which is the mask a model needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipelines.errors import DataError


@dataclasses.dataclass
class LabeledClips:
    """Clips, how many frames of each are real, and their class indices."""

    # (clips, time, height, width, channels) uint8 frames, or (clips, time, channels) float32
    # sensor values; frames at and after `lengths[i]` are zeros.
    frames: np.ndarray
    # (clips,) int32: real frames per clip.
    lengths: np.ndarray
    # (clips,) int32 indices into `label_names`.
    labels: np.ndarray
    label_names: list[str]
    # Human-readable origin, e.g. a folder or "moving-digits/train".
    source: str
    # Where each clip came from (file paths, or clip ids of a table); empty for generated clips.
    paths: list[str] = dataclasses.field(default_factory=list)
    # Files left out (unreadable), reported by the CLI.
    skipped: int = 0
    # One line per problem found: a skipped file with its reason, an empty class folder.
    problems: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def pad_clips(
    clips: Sequence[np.ndarray], dtype: type, length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stacks clips right-padded with zeros to the longest (or `length` if longer).

    Returns (frames, lengths).
    """
    lengths = np.array([len(clip) for clip in clips], dtype=np.int32)
    time = max(lengths.max(), length or 0)
    frames = np.zeros((len(clips), time, *clips[0].shape[1:]), dtype=dtype)
    for index, clip in enumerate(clips):
        frames[index, : len(clip)] = clip
    return frames, lengths


def list_class_folders(
    folder: Path, suffixes: Sequence[str], label_names: Sequence[str] | None
) -> tuple[list[tuple[Path, int]], list[str], list[str]]:
    """Finds the files of a folder with one sub-folder per class (as UCF101 is laid out).

    Args:
        folder: the root folder.
        suffixes: the file types to take (lower case, with the dot), e.g. (".avi", ".mp4").
        label_names: the known classes (from training): a sub-folder outside them is an error,
            and they are the class order. None: the sorted sub-folder names.

    Returns:
        ((file, class index) pairs in class then path order, label names, problems): a class
        sub-folder without such files is reported in problems and keeps its class.

    Raises:
        DataError: the folder is missing, has fewer than 2 class sub-folders, or one outside
            `label_names`.
    """
    if not folder.is_dir():
        raise DataError(f"no such folder: {folder}")
    class_folders = sorted(
        child for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")
    )
    kinds = ", ".join(suffixes)
    if len(class_folders) < 2:
        found = ", ".join(child.name for child in class_folders) or "none"
        raise DataError(
            f"{folder}: expected one sub-folder per class (at least 2) holding {kinds} files; "
            f"sub-folders found: {found}"
        )
    names = [child.name for child in class_folders]
    if label_names is None:
        label_names = names
    else:
        unknown = [name for name in names if name not in label_names]
        if unknown:
            raise DataError(
                f"{folder}: class folder {unknown[0]!r} is not one of the known classes: "
                f"{', '.join(label_names)}"
            )
    files, problems = [], []
    for class_folder in class_folders:
        found = sorted(
            path
            for path in class_folder.rglob("*")
            if path.is_file() and path.suffix.lower() in suffixes
        )
        if not found:
            problems.append(f"{class_folder}: empty class folder (no {kinds} files)")
        label = list(label_names).index(class_folder.name)
        files.extend((path, label) for path in found)
    return files, list(label_names), problems
