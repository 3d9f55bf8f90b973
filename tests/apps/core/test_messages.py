"""New users' mistakes with data through every app's CLI: one `error:` line, exit status 2, no
traceback, no raw bytes; and `predict --input` refusing a binary file in every app."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from apps.activity import serving as activity_serving
from apps.activity.app import APP as ACTIVITY
from apps.captioning import serving as captioning_serving
from apps.core import cli
from apps.forecasting.app import APP as FORECASTING
from apps.sentiment import serving as sentiment_serving
from apps.sentiment.app import APP as SENTIMENT
from apps.translation import serving as translation_serving
from apps.translation.app import APP as TRANSLATION
from pipelines.errors import DataError

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def one_error_line(app, arguments, capsys) -> str:
    status = cli.main(app, [str(argument) for argument in arguments])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == cli.EXIT_USER_ERROR, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].isprintable()
    return lines[0]


@pytest.mark.parametrize(
    ("app", "name", "expected"),
    [
        (SENTIMENT, "reviews.csv", "CSV"),
        (SENTIMENT, "reviews.jsonl", "JSON lines"),
        (FORECASTING, "series.csv", "CSV"),
        (TRANSLATION, "pairs.tsv", "TSV"),
        (TRANSLATION, "pairs.txt", "a tab-separated text file"),
        (ACTIVITY, "sensors.csv", "CSV"),
    ],
)
def test_training_on_a_binary_file_says_so(app, name, expected, tmp_path, capsys):
    data = tmp_path / name
    data.write_bytes(BINARY)
    arguments = ["train", "--preset", "tiny", "--workdir", tmp_path / "run", "--data", data]
    line = one_error_line(app, arguments, capsys)
    assert line == f"error: {data}: looks like a binary file, not {expected}"


@pytest.mark.parametrize(
    ("serving", "expected"),
    [
        (sentiment_serving, "a text file (one text per line, or .jsonl)"),
        (translation_serving, "a text file (one sentence per line)"),
        (captioning_serving, "a text file of image paths (give images as arguments)"),
        (activity_serving, "a text file of clip paths (give clips as arguments)"),
    ],
)
def test_predict_input_that_is_binary_says_so(serving, expected, tmp_path):
    input_file = tmp_path / "photo.png"
    input_file.write_bytes(BINARY)
    with pytest.raises(DataError) as error:
        serving.read_inputs([], input_file, {})
    assert str(error.value) == f"{input_file}: looks like a binary file, not {expected}"


def test_a_tfds_name_without_the_network_fails_within_seconds(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(urllib.request, "getproxies", dict)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tensorflow_datasets"))
    started = time.perf_counter()
    arguments = ["train", "--preset", "tiny", "--workdir", tmp_path / "run"]
    line = one_error_line(SENTIMENT, [*arguments, "--data", "tfds:imdb_reviews"], capsys)
    assert time.perf_counter() - started < 10
    assert line.startswith("error: tfds:imdb_reviews: not downloaded yet")
    assert "the network is unreachable (storage.googleapis.com:443: Network is unreachable)" in line
