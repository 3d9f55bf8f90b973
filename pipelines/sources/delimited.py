"""Two columns of a CSV or TSV file, named by its header row or chosen by position, read lazily."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import DataError, check_text_file, listing, quote

FILE_KINDS = {",": "CSV", "\t": "TSV"}


def _looks_like_data(header: list[str]) -> bool:
    """A first row of sentences rather than column names: some cell holds 3+ words."""
    return any(len(cell.split()) >= 3 for cell in header)


def read_column_pair(
    path: Path,
    delimiter: str,
    first_column: str,
    second_column: str,
    positions_hint: str = "column names '0' and '1'",
) -> Iterator[tuple[int, str, str]]:
    """Yields `(line number, first value, second value)` for every non-blank row.

    A column is a header name, or, when both are 0-based indices that the header does not
    name ("0" and "1"), a position in a file without a header row (every row is data). Cells
    missing from a short row read as "". The file is decoded as UTF-8 (a byte-order mark
    dropped, bad bytes replaced). `positions_hint` tells a caller's user how to choose
    positions (e.g. the settings that name the columns), for the message.

    Raises:
        DataError: the file looks binary, is empty, or the header lacks a column (the message
            lists the columns found, and says how to read a file whose first row looks like
            data rather than a header).
    """
    check_text_file(path, FILE_KINDS.get(delimiter, "delimited text"))
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        reader = csv.reader(file, delimiter=delimiter)
        first_row = next(reader, [])
        header = [name.strip() for name in first_row]
        if not header:
            raise DataError(f"{path}: no rows (the file is empty; expected a header row)")
        columns = (first_column, second_column)
        positional = all(column.isdigit() and column not in header for column in columns)
        if positional:
            first_index, second_index = int(first_column), int(second_column)
            rows = itertools.chain([first_row], reader)
        else:
            for column in columns:
                if column in header:
                    continue
                hint = ""
                if _looks_like_data(header):
                    hint = (
                        f". The first row looks like data, not a header: "
                        f"{quote(delimiter.join(first_row))}; add a header row naming the "
                        f"columns, or read the file by 0-based column positions "
                        f"({positions_hint})"
                    )
                raise DataError(
                    f"{path}: no column {column!r}; columns found: {listing(header)}{hint}"
                )
            first_index, second_index = header.index(first_column), header.index(second_column)
            rows = reader
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            yield (
                reader.line_num,
                row[first_index] if first_index < len(row) else "",
                row[second_index] if second_index < len(row) else "",
            )
