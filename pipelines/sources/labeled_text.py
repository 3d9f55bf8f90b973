"""Texts with a class label each, read from the user's files or from tensorflow-datasets.

File formats (`read_labeled_texts`):
    .csv     comma-separated, header row naming the columns (quoted fields as the csv module reads)
    .tsv     tab-separated, header row, same quoting rules as .csv
    .jsonl   one JSON object per line
    folder   one sub-folder per class holding .txt files, one text per file; the class is the
             sub-folder name (as keras.utils.text_dataset_from_directory reads them)

Rows whose text is empty or only whitespace are skipped and counted. Labels are stripped
strings, numbers kept as written ("1"). Files are read as UTF-8 (a leading byte-order mark is
dropped); bytes that are not UTF-8 become U+FFFD. Bad data raises `DataError` naming the file,
line and column.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pipelines.errors import DataError, check_text_file, listing, quote
from pipelines.sources.delimited import read_column_pair
from pipelines.sources.resolve import load_tfds

SUPPORTED_FILE_TYPES = (".csv", ".tsv", ".jsonl")


@dataclasses.dataclass
class LabeledTexts:
    """Texts and their labels, as read from one source."""

    texts: list[str]
    # Label names as strings, one per text.
    labels: list[str]
    # Sorted unique label names, or the known classes when they were given: the class order.
    label_names: list[str]
    # Human-readable origin, e.g. a path or "mr".
    source: str
    # Rows dropped (e.g. empty text), reported by the CLI.
    skipped: int = 0


def read_labeled_texts(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
) -> LabeledTexts:
    """Reads a .csv, .tsv or .jsonl file, or a folder of class sub-folders of .txt files.

    Args:
        path: the file or folder.
        text_column: the column (JSON key) holding the text; unused for a folder.
        label_column: the column (JSON key) holding the label; unused for a folder.
        label_names: the known classes (from training). When given, a label outside them is an
            error, and they are returned as `label_names` in their given order.

    Returns:
        LabeledTexts whose `source` is the path.

    Raises:
        DataError: the path is missing or of an unsupported type, a column is missing, a label
            is empty or unknown, or no row has text.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    if path.is_dir():
        rows = _read_class_folders(path)
    elif path.suffix.lower() == ".csv":
        rows = _read_delimited(path, ",", text_column, label_column)
    elif path.suffix.lower() == ".tsv":
        rows = _read_delimited(path, "\t", text_column, label_column)
    elif path.suffix.lower() == ".jsonl":
        rows = _read_json_lines(path, text_column, label_column)
    else:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; supported: "
            f"{', '.join(SUPPORTED_FILE_TYPES)}, or a folder with one sub-folder of .txt files "
            "per class"
        )
    return _collect(rows, str(path), label_names)


def read_tfds_labeled_texts(
    name: str, text_key: str = "text", label_key: str = "label"
) -> LabeledTexts:
    """Reads a tensorflow-datasets text classification dataset, e.g. "imdb_reviews".

    The "train" and "test" splits are joined (whichever exist; all splits when neither does).
    Label names come from the label feature when it is a `tfds.features.ClassLabel`; examples
    labelled -1 (unlabelled) are skipped.

    Raises:
        DataError: the dataset cannot be loaded, or has no such text or label feature.
    """
    import tensorflow_datasets as tfds

    splits, info = load_tfds(name)
    features = list(info.features.keys())
    for key in (text_key, label_key):
        if key not in features:
            raise DataError(
                f"tfds:{name}: no feature {key!r}; features found: {', '.join(features)}"
            )
    chosen = [split for split in ("train", "test") if split in splits] or sorted(splits)
    if not chosen:
        raise DataError(f"tfds:{name}: the dataset has no splits")

    label_feature = info.features[label_key]
    class_names = (
        list(label_feature.names) if isinstance(label_feature, tfds.features.ClassLabel) else None
    )
    texts, labels, skipped = [], [], 0
    for split in chosen:
        for example in tfds.as_numpy(splits[split]):
            label = example[label_key]
            if class_names is not None:
                if label < 0:
                    skipped += 1
                    continue
                label = class_names[label]
            text = _decode(example[text_key])
            if not text.strip():
                skipped += 1
                continue
            texts.append(text)
            labels.append(_decode(label).strip())
    if not texts:
        raise DataError(f"tfds:{name}: no labelled examples in the splits {', '.join(chosen)}")
    return LabeledTexts(
        texts=texts,
        labels=labels,
        label_names=class_names if class_names is not None else sorted(set(labels)),
        source=f"tfds:{name} ({'+'.join(chosen)})",
        skipped=skipped,
    )


def _decode(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


# A row as the readers yield it: (where it is, for messages; text; label).
_Row = tuple[str, str, str]


def _collect(rows: Iterable[_Row], source: str, label_names: Sequence[str] | None) -> LabeledTexts:
    known = set(label_names) if label_names is not None else None
    texts, labels, skipped = [], [], 0
    for where, text, raw_label in rows:
        if not text.strip():
            skipped += 1
            continue
        label = raw_label.strip()
        if not label:
            raise DataError(f"{where}: empty label")
        if known is not None and label not in known:
            raise DataError(
                f"{where}: label {quote(label)} is not one of the known classes: "
                f"{listing(label_names)}"
            )
        texts.append(text)
        labels.append(label)
    if not texts:
        detail = f" ({skipped} rows with empty text)" if skipped else ""
        raise DataError(f"{source}: no rows{detail}")
    return LabeledTexts(
        texts=texts,
        labels=labels,
        label_names=list(label_names) if label_names is not None else sorted(set(labels)),
        source=source,
        skipped=skipped,
    )


def _read_delimited(
    path: Path, delimiter: str, text_column: str, label_column: str
) -> Iterator[_Row]:
    for line_number, text, label in read_column_pair(path, delimiter, text_column, label_column):
        yield f"{path} line {line_number}", text, label


def _read_json_lines(path: Path, text_column: str, label_column: str) -> Iterator[_Row]:
    check_text_file(path, "JSON lines")
    with path.open(encoding="utf-8-sig", errors="replace") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            where = f"{path} line {line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not valid JSON ({error})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
            for column in (text_column, label_column):
                if column not in record:
                    raise DataError(
                        f"{where}: no column {column!r}; columns found: {listing(record)}"
                    )
            yield (
                where,
                _json_cell(record[text_column], where, text_column),
                _json_cell(record[label_column], where, label_column),
            )


def _json_cell(value: object, where: str, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise DataError(f"{where}: column {column!r} holds a JSON {type(value).__name__}, not text")
    return value if isinstance(value, str) else json.dumps(value)


def _read_class_folders(folder: Path) -> Iterator[_Row]:
    class_folders = sorted(
        child for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")
    )
    if len(class_folders) < 2:
        found = ", ".join(child.name for child in class_folders) or "none"
        raise DataError(
            f"{folder}: a folder of texts needs one sub-folder per class (at least 2) holding "
            f".txt files; sub-folders found: {found}"
        )
    for class_folder in class_folders:
        for text_file in sorted(class_folder.rglob("*.txt")):
            text = text_file.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
            yield str(text_file), text, class_folder.name
