"""Messages that quote file content: cut, escaped, and binary files named as such."""

import pytest

from pipelines.errors import DataError, check_text_file, escape, listing, quote
from pipelines.sources.image_captions import read_image_captions
from pipelines.sources.labeled_text import read_labeled_texts
from pipelines.sources.sensor_clips import read_sensor_clips
from pipelines.sources.sentence_pairs import read_sentence_pairs
from pipelines.sources.time_series import load_time_series

# A PNG signature and header: NUL bytes and control characters, as any image or archive has.
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4


def test_escape_cuts_and_escapes_control_characters():
    assert escape("plain text, ümlaut") == "plain text, ümlaut"
    assert escape("\x1b[31mred\x1b[0m\x00\n") == "\\x1b[31mred\\x1b[0m\\x00\\n"
    assert escape("a" * 70) == "a" * 60 + "..."
    assert escape("abcdef", limit=3) == "abc..."


def test_quote_is_repr_of_the_cut_text():
    assert quote("abc") == "'abc'"
    assert quote("it's") == '"it\'s"'
    assert quote("\x00" * 100, limit=2) == "'\\x00\\x00'..."


def test_listing_keeps_plain_names_and_counts_the_rest():
    assert listing(["time", "value"]) == "time, value"
    assert listing([f"c{index}" for index in range(25)]) == (
        ", ".join(f"c{index}" for index in range(20)) + ", ... (5 more)"
    )
    assert listing(["\x07bell"]) == "\\x07bell"


@pytest.mark.parametrize(
    "content",
    [
        b"text,label\nfine,1\n",
        "Zeit\tWert\nMärz\t3\n".encode("latin-1"),  # not UTF-8, still text
        b"",
    ],
)
def test_text_files_pass(tmp_path, content):
    path = tmp_path / "file.csv"
    path.write_bytes(content)
    check_text_file(path, "CSV")


@pytest.mark.parametrize("content", [BINARY, b"a,b\n1,2\n\x00", b"\x01\x02\x03\x04" * 10])
def test_binary_files_are_named(tmp_path, content):
    path = tmp_path / "file.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"file\.csv: looks like a binary file, not CSV$"):
        check_text_file(path, "CSV")


@pytest.mark.parametrize(
    ("name", "read", "expected"),
    [
        ("reviews.csv", read_labeled_texts, "CSV"),
        ("reviews.tsv", read_labeled_texts, "TSV"),
        ("reviews.jsonl", read_labeled_texts, "JSON lines"),
        ("series.csv", load_time_series, "CSV"),
        ("pairs.tsv", read_sentence_pairs, "TSV"),
        ("pairs.txt", read_sentence_pairs, "a tab-separated text file"),
        ("sensors.csv", read_sensor_clips, "CSV"),
    ],
)
def test_every_reader_refuses_a_binary_file_in_one_readable_line(tmp_path, name, read, expected):
    path = tmp_path / name
    path.write_bytes(BINARY)
    with pytest.raises(DataError) as error:
        read(str(path))
    assert str(error.value) == f"{path}: looks like a binary file, not {expected}"


def test_captions_reader_refuses_a_binary_captions_file(tmp_path):
    (tmp_path / "captions.txt").write_bytes(BINARY)
    with pytest.raises(DataError, match="looks like a binary file, not a captions text file"):
        read_image_captions(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "read", "shown"),
    [
        (
            "series.csv",
            "t,\x1b[31mred\x1b[0m\n" + "".join(f"{step},{step}\n" for step in range(20)),
            lambda path: load_time_series(path, target_columns=["blue"]),
            "the columns are t, \\x1b[31mred\\x1b[0m",
        ),
        (
            "reviews.csv",
            "words,\x1b]0;title\x07\nfine,1\n",
            read_labeled_texts,
            "columns found: words, \\x1b]0;title\\x07",
        ),
        (
            "pairs.txt",
            "a" * 200 + "\x1b\n",
            read_sentence_pairs,
            "got 1: '" + "a" * 60 + "'...",
        ),
        ("series.csv", "t,y\n1,\x1b[2J" + "9" * 90 + "\n", load_time_series, "'\\x1b[2J999"),
    ],
)
def test_quoted_content_is_cut_and_escaped(tmp_path, name, content, read, shown):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as error:
        read(str(path))
    message = str(error.value)
    assert shown in message
    assert message.isprintable()
    assert len(message) < len(str(path)) + 200
