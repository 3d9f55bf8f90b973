"""Two named columns of a CSV or TSV file with a header row, read lazily."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import DataError, check_text_file, listing

FILE_KINDS = {",": "CSV", "\t": "TSV"}


def read_column_pair(
    path: Path, delimiter: str, first_column: str, second_column: str
) -> Iterator[tuple[int, str, str]]:
    """Yields `(line number, first value, second value)` for every non-blank row.

    Cells missing from a short row read as "". The file is decoded as UTF-8 (a byte-order mark
    dropped, bad bytes replaced).

    Raises:
        DataError: the file looks binary, has no header row, or the header lacks a column (the
            message lists the columns found).
    """
    check_text_file(path, FILE_KINDS.get(delimiter, "delimited text"))
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        reader = csv.reader(file, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise DataError(f"{path}: no rows (the file is empty; expected a header row)")
        for column in (first_column, second_column):
            if column not in header:
                raise DataError(f"{path}: no column {column!r}; columns found: {listing(header)}")
        first_index, second_index = header.index(first_column), header.index(second_column)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            yield (
                reader.line_num,
                row[first_index] if first_index < len(row) else "",
                row[second_index] if second_index < len(row) else "",
            )
