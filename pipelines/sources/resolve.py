"""Turns a `--data` value into examples: a dataset name, "tfds:NAME", or a file or folder;
and loads tensorflow-datasets names, failing at once when a download needs a network that is
not there."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pipelines.errors import DataError

T = TypeVar("T")

TFDS_PREFIX = "tfds:"
# tensorflow-datasets' own host (its prepared datasets on Google Cloud Storage): reached in a
# few seconds when the internet is, before any download is tried.
TFDS_HOST = ("storage.googleapis.com", 443)
NETWORK_TIMEOUT_SECONDS = 5.0


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


def network_problem(
    host: tuple[str, int] = TFDS_HOST, timeout: float = NETWORK_TIMEOUT_SECONDS
) -> str:
    """Why `host` cannot be reached ("" when it can): one TCP connection of at most `timeout`
    seconds. Behind a configured proxy the proxy is trusted and nothing is tried."""
    if urllib.request.getproxies():
        return ""
    try:
        with socket.create_connection(host, timeout=timeout):
            return ""
    except OSError as error:
        return f"{host[0]}:{host[1]}: {error.strerror or error}"


def load_tfds(name: str, split: str | None = None, **options: Any) -> tuple[Any, Any]:
    """A tensorflow-datasets dataset as `tfds.load(..., with_info=True)` returns it.

    The data lives in `$TFDS_DATA_DIR` (default `~/tensorflow_datasets`). A dataset not
    prepared there yet is downloaded and prepared first, which needs the internet: without it
    this fails within seconds (`network_problem`) instead of retrying every download.

    Args:
        name: the dataset, e.g. "imdb_reviews" or "ted_hrlr_translate/pt_to_en".
        split: one split, or None for a dict of every split.
        **options: passed to `DatasetBuilder.as_dataset` (e.g. `as_supervised`, `decoders`).

    Returns:
        `(dataset or {split: dataset}, tfds.core.DatasetInfo)`.

    Raises:
        DataError: tensorflow-datasets is missing, `name` is unknown, the dataset is not
            prepared and the network is unreachable, or downloading or reading it fails.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(
            f"tfds:{name}: tensorflow-datasets is not installed: pip install tensorflow-datasets"
        ) from None
    loading = f"cannot load split {split!r}" if split else "cannot load"
    try:
        builder = tfds.builder(name, data_dir=os.environ.get("TFDS_DATA_DIR"))
    except Exception as error:  # An unknown name or config, a broken registry: one answer.
        raise DataError(f"tfds:{name}: {loading} ({_first_line(error)})") from error
    if not builder.is_prepared():
        problem = network_problem()
        if problem:
            raise DataError(
                f"tfds:{name}: not downloaded yet (no {builder.data_dir}) and the network is "
                f"unreachable ({problem}); connect to the internet once to download it, or "
                f"set TFDS_DATA_DIR to a folder that holds it"
            )
        try:
            builder.download_and_prepare()
        except Exception as error:  # A broken download, a manual-download dataset: one answer.
            raise DataError(f"tfds:{name}: cannot download it ({_first_line(error)})") from error
    try:
        return builder.as_dataset(split=split, **options), builder.info
    except Exception as error:  # An unknown split, features that do not fit the options.
        raise DataError(f"tfds:{name}: {loading} ({_first_line(error)})") from error


def _first_line(error: Exception) -> str:
    message = str(error).strip()
    return f"{type(error).__name__}: {message.splitlines()[0]}" if message else type(error).__name__
