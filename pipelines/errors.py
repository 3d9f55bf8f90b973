"""The exception that pipelines raise for bad data (the CLI prints it as one line), and the
helpers that keep file content in its messages readable: text is cut and escaped, and a binary
file is named as one instead of being quoted."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Characters of a quoted value, and values of a quoted list, that a message shows.
QUOTE_LIMIT = 60
LIST_LIMIT = 20
# Bytes read to tell text from binary, and the share of them that may be control characters.
SNIFF_BYTES = 8192
CONTROL_SHARE = 0.1
TEXT_CONTROLS = frozenset("\t\n\r\f\v")


class DataError(ValueError):
    """Bad or missing data; the message names the input (file, row, column, value)."""


def escape(text: object, limit: int = QUOTE_LIMIT) -> str:
    """`text` as a message shows it unquoted: cut to `limit` characters ("..." marks the cut),
    every non-printable character escaped as Python writes it (`\\x1b`, `\\n`, `\\x00`)."""
    text = str(text)
    shown = "".join(
        character if character.isprintable() else repr(character)[1:-1]
        for character in text[:limit]
    )
    return shown + ("..." if len(text) > limit else "")


def quote(text: object, limit: int = QUOTE_LIMIT) -> str:
    """`text` quoted for a message, as `repr` quotes it, cut to `limit` characters."""
    text = str(text)
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def listing(values: Iterable[object], limit: int = LIST_LIMIT) -> str:
    """Comma-separated escaped values (e.g. the columns of a file), the first `limit` of them."""
    values = list(values)
    shown = ", ".join(escape(value) for value in values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


def check_text_file(path: Path, expected: str) -> None:
    """Raises `DataError` when `path` looks like a binary file rather than `expected` text.

    Binary means a NUL byte, or more than a tenth of control characters (tab, newline and
    form feed aside), in the first 8 KiB. UTF-8 and other 8-bit text encodings pass.

    Args:
        path: the file to check.
        expected: what the file should be, for the message, e.g. "CSV" or "a text file".
    """
    with Path(path).open("rb") as file:
        sample = file.read(SNIFF_BYTES)
    text = sample.decode("utf-8", errors="replace")
    controls = sum(
        1 for character in text if ord(character) < 32 and character not in TEXT_CONTROLS
    )
    if b"\x00" in sample or controls > CONTROL_SHARE * max(len(text), 1):
        raise DataError(f"{path}: looks like a binary file, not {expected}")
