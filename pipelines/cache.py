"""Where fetched datasets are kept between runs."""

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Returns `$RNN_SUITE_CACHE/<parts>` (default `~/.cache/rnn-suite/<parts>`), created.

    Example: `cache_dir("movie_reviews")` -> `~/.cache/rnn-suite/movie_reviews`.
    """
    root = os.environ.get("RNN_SUITE_CACHE") or Path.home() / ".cache" / "rnn-suite"
    path = Path(root).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
