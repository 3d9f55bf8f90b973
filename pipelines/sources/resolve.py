"""Turns a `--data` value into examples: a dataset name, "tfds:NAME", or a file or folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines.errors import DataError

T = TypeVar("T")

TFDS_PREFIX = "tfds:"


def resolve_source(
    source: str,
    recipes: dict[str, Callable[[], T]],
    read_file: Callable[[Path], T],
    read_tfds: Callable[[str], T] | None = None,
) -> T:
    """Loads `source`, tried in this order: "tfds:NAME", a recipe name, an existing path.

    A recipe name wins over a file or folder of the same name; write "./mr" for the path.

    Args:
        source: the user's `--data` value, e.g. "mr", "tfds:imdb_reviews" or "reviews.csv".
        recipes: the app's bundled datasets by name, each a function that loads it.
        read_file: reads the user's file or folder.
        read_tfds: reads a tensorflow-datasets name; None when the app accepts none.

    Raises:
        DataError: `source` is none of these.
    """
    if source.startswith(TFDS_PREFIX):
        name = source.removeprefix(TFDS_PREFIX)
        if read_tfds is None:
            raise DataError(f"--data {source!r}: this app does not read tensorflow-datasets names")
        if not name:
            raise DataError(f"--data {source!r}: give a dataset name, e.g. tfds:imdb_reviews")
        return read_tfds(name)
    if source in recipes:
        return recipes[source]()
    path = Path(source).expanduser()
    if path.exists():
        return read_file(path)
    tfds_hint = "; for a tensorflow-datasets name write tfds:NAME" if read_tfds is not None else ""
    raise DataError(
        f"unknown --data {source!r}: not a dataset name ({', '.join(recipes) or 'none'}) "
        f"nor an existing file or folder{tfds_hint}"
    )
