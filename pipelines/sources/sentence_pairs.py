"""Sentence pairs for translation: the "ding-de-en" recipe, the user's files, tfds names.

Sources:
    ding-de-en   the example sentences of the Ding German-English dictionary (Debian package
                 `trans-de-en`, `/usr/share/trans/de-en`, GPL-2+). Lines are
                 `german :: english`, entries split on ` | ` on both sides; alternatives split
                 on `; ` (the first one is kept); tags such as `{m}`, `[Br.]` and
                 parenthesized notes are removed. An entry is kept when its German side is a
                 sentence: it ends in `.`, `!` or `?` and has 4 or more words.
    .tsv / .csv  a header row naming the columns; `source_column`/`target_column` choose them,
                 by name, or by 0-based index in a file without a header row.
    .txt         the Anki/Tatoeba layout without a header: `english<TAB>other<TAB>attribution`;
                 columns are 0-based indices ("0" and "1" by default).
    tfds:NAME    a tensorflow-datasets translation dataset with two text features, e.g.
                 `tfds:ted_hrlr_translate/pt_to_en` (needs the internet).

Pairs with an empty side are skipped and counted in `skipped`. Files are read as UTF-8 with
bytes that are not UTF-8 turned into U+FFFD.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipelines.cache import cache_dir
from pipelines.errors import DataError, check_text_file, quote
from pipelines.sources.debian import debian_file
from pipelines.sources.delimited import read_column_pair
from pipelines.sources.resolve import load_tfds

DING_PACKAGE = "trans-de-en"
DING_FILE = Path("usr/share/trans/de-en")
SYSTEM_DING_PATH = Path("/") / DING_FILE
SENTENCE_ENDINGS = (".", "!", "?")
MINIMUM_SENTENCE_WORDS = 4
SUPPORTED_FILE_TYPES = (".tsv", ".csv", ".txt")

_TAGS = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([.,!?;:])")


@dataclasses.dataclass
class SentencePairs:
    """Parallel source and target sentences, as read from one source."""

    sources: list[str]
    targets: list[str]
    # Human-readable origin, e.g. a path or "ding-de-en".
    source: str
    # Pairs dropped because a side was empty, reported by the CLI.
    skipped: int = 0

    def reversed(self) -> SentencePairs:
        """The same pairs translated the other way."""
        return dataclasses.replace(self, sources=self.targets, targets=self.sources)


def load_ding_de_en() -> SentencePairs:
    """Returns the Ding example sentences, German -> English (source "ding-de-en").

    Raises:
        DataError: the dictionary is neither installed nor downloadable; the message names
            the command to run.
    """
    pairs = parse_ding(find_ding_dictionary())
    return dataclasses.replace(pairs, source="ding-de-en")


def find_ding_dictionary() -> Path:
    """Returns the dictionary file: installed, or extracted from `apt-get download`."""
    path = debian_file(DING_PACKAGE, SYSTEM_DING_PATH, "ding-de-en")
    if path is not None:
        return path
    folder = cache_dir("ding-de-en")
    raise DataError(
        f"dataset ding-de-en: {SYSTEM_DING_PATH} is missing and `apt-get download "
        f"{DING_PACKAGE}` failed. Run `sudo apt-get update && sudo apt-get install -y "
        f"{DING_PACKAGE}`, or `cd /tmp && apt-get download {DING_PACKAGE} && dpkg-deb -x "
        f"{DING_PACKAGE}_*.deb {shlex.quote(str(folder))}`"
    )


def _clean_ding_text(text: str) -> str:
    first_alternative = text.split("; ")[0]
    text = _SPACES.sub(" ", _TAGS.sub("", first_alternative)).strip()
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)


def ding_entries(path: str | Path) -> Iterator[tuple[str, str]]:
    """The cleaned (German, English) entries of a Ding dictionary file (`german :: english`
    lines, entries separated by " | "), comments and lines of unequal entry counts skipped."""
    with Path(path).open(encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.startswith("#") or " :: " not in line:
                continue
            german, english = line.rstrip("\r\n").split(" :: ", 1)
            german_entries, english_entries = german.split(" | "), english.split(" | ")
            if len(german_entries) != len(english_entries):
                continue
            for german_entry, english_entry in zip(german_entries, english_entries, strict=True):
                yield _clean_ding_text(german_entry), _clean_ding_text(english_entry)


def parse_ding(path: str | Path) -> SentencePairs:
    """Reads the example sentences of a Ding dictionary file (`german :: english` lines)."""
    path = Path(path)
    sources, targets, skipped = [], [], 0
    for german_text, english_text in ding_entries(path):
        if not german_text.endswith(SENTENCE_ENDINGS):
            continue
        if len(german_text.split()) < MINIMUM_SENTENCE_WORDS:
            continue
        if not english_text:
            skipped += 1
            continue
        sources.append(german_text)
        targets.append(english_text)
    if not sources:
        raise DataError(f"{path}: no example sentences found")
    return SentencePairs(sources, targets, source=str(path), skipped=skipped)


def read_sentence_pairs(
    path: str | Path,
    source_column: str = "",
    target_column: str = "",
    positions_hint: str = "source and target columns '0' and '1'",
) -> SentencePairs:
    """Reads pairs from a .tsv/.csv file with a header, or an Anki/Tatoeba .txt file.

    Args:
        path: the file.
        source_column: the source column: a header name for .tsv/.csv (default "source"), a
            0-based index for .txt (default "0").
        target_column: the target column, likewise (defaults "target" and "1"). For a
            .tsv/.csv file without a header row, 0-based indices choose the columns.
        positions_hint: how a user chooses columns by position, for the message about a
            .tsv/.csv file whose first row looks like data.

    Raises:
        DataError: the file is missing or of an unsupported type, a column is missing, or no
            pair is left.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        rows = [
            (source, target)
            for _, source, target in read_column_pair(
                path,
                delimiter,
                source_column or "source",
                target_column or "target",
                positions_hint,
            )
        ]
    elif suffix == ".txt":
        rows = _read_anki(path, source_column or "0", target_column or "1")
    else:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; supported: "
            f"{', '.join(SUPPORTED_FILE_TYPES)}"
        )
    return _collect(rows, str(path))


def _collect(rows: Iterable[tuple[str, str]], source: str) -> SentencePairs:
    sources, targets, skipped = [], [], 0
    for source_text, target_text in rows:
        source_text, target_text = source_text.strip(), target_text.strip()
        if not source_text or not target_text:
            skipped += 1
            continue
        sources.append(source_text)
        targets.append(target_text)
    if not sources:
        detail = f" ({skipped} pairs with an empty side)" if skipped else ""
        raise DataError(f"{source}: no sentence pairs{detail}")
    return SentencePairs(sources, targets, source=source, skipped=skipped)


def _column_index(path: Path, column: str, name: str) -> int:
    if not column.isdigit():
        raise DataError(
            f"{path}: {name} must be a 0-based column index for a .txt file, got {column!r}"
        )
    return int(column)


def _read_anki(path: Path, source_column: str, target_column: str):
    source_index = _column_index(path, source_column, "source_column")
    target_index = _column_index(path, target_column, "target_column")
    needed = max(source_index, target_index) + 1
    check_text_file(path, "a tab-separated text file")
    rows = []
    with path.open(encoding="utf-8-sig", errors="replace") as file:
        for line_number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < needed:
                raise DataError(
                    f"{path} line {line_number}: expected at least {needed} tab-separated "
                    f"columns, got {len(fields)}: {quote(line)}"
                )
            rows.append((fields[source_index], fields[target_index]))
    return rows


def read_tfds_sentence_pairs(name: str) -> SentencePairs:
    """Reads every split of a tensorflow-datasets translation dataset (two text features).

    The source is the dataset's first supervised key, e.g. Portuguese for
    "ted_hrlr_translate/pt_to_en".

    Raises:
        DataError: the dataset cannot be loaded or has no supervised pair of features.
    """
    import tensorflow_datasets as tfds

    splits, _ = load_tfds(name, as_supervised=True)
    rows = [
        (source.decode("utf-8", errors="replace"), target.decode("utf-8", errors="replace"))
        for split in sorted(splits)
        for source, target in tfds.as_numpy(splits[split])
    ]
    return _collect(rows, f"tfds:{name}")
