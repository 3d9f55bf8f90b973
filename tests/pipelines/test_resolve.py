import socket
import time
import urllib.request

import pytest

from pipelines.errors import DataError
from pipelines.sources import resolve
from pipelines.sources.resolve import load_tfds, network_problem, resolve_source

RECIPES = {"mr": lambda: "recipe mr", "sst": lambda: "recipe sst"}


def read_file(path):
    return f"file {path.name}"


def read_tfds(name):
    return f"tfds {name}"


def test_tfds_prefix_goes_to_read_tfds():
    assert resolve_source("tfds:imdb_reviews", RECIPES, read_file, read_tfds) == "tfds imdb_reviews"


def test_recipe_name_calls_the_recipe():
    assert resolve_source("sst", RECIPES, read_file, read_tfds) == "recipe sst"


def test_recipe_name_wins_over_a_file_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mr").write_text("x")
    assert resolve_source("mr", RECIPES, read_file) == "recipe mr"
    assert resolve_source("./mr", RECIPES, read_file) == "file mr"


def test_existing_file_or_folder_goes_to_read_file(tmp_path):
    (tmp_path / "data.csv").write_text("text,label\n")
    assert resolve_source(str(tmp_path / "data.csv"), RECIPES, read_file) == "file data.csv"
    assert resolve_source(str(tmp_path), RECIPES, read_file) == f"file {tmp_path.name}"


def test_unknown_source_lists_recipes_and_tfds():
    with pytest.raises(DataError) as error:
        resolve_source("imbd", RECIPES, read_file, read_tfds)
    assert str(error.value) == (
        "unknown --data 'imbd': not a dataset name (mr, sst) nor an existing file or folder; "
        "for a tensorflow-datasets name write tfds:NAME"
    )


def test_unknown_source_without_tfds_does_not_suggest_it():
    with pytest.raises(DataError) as error:
        resolve_source("imbd", RECIPES, read_file)
    assert str(error.value) == (
        "unknown --data 'imbd': not a dataset name (mr, sst) nor an existing file or folder"
    )


def test_tfds_name_when_the_app_reads_none():
    with pytest.raises(DataError, match="does not read tensorflow-datasets names"):
        resolve_source("tfds:imdb_reviews", RECIPES, read_file)


def test_tfds_prefix_without_a_name():
    with pytest.raises(DataError, match="give a dataset name, e.g. tfds:imdb_reviews"):
        resolve_source("tfds:", RECIPES, read_file, read_tfds)


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """No proxy, every connection refused, and an empty tensorflow-datasets folder."""

    def refuse(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(urllib.request, "getproxies", dict)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tensorflow_datasets"))


def test_network_problem_names_the_host_or_is_empty():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert network_problem(("127.0.0.1", port), timeout=2.0) == ""
    assert network_problem(("127.0.0.1", port), timeout=2.0) == (
        f"127.0.0.1:{port}: Connection refused"
    )


def test_network_problem_trusts_a_configured_proxy(monkeypatch):
    monkeypatch.setattr(urllib.request, "getproxies", lambda: {"https": "http://proxy:3128"})
    assert network_problem(("203.0.113.1", 9), timeout=0.01) == ""


def test_tfds_without_the_network_fails_at_once_naming_dataset_and_network(no_network):
    started = time.perf_counter()
    with pytest.raises(DataError) as error:
        load_tfds("imdb_reviews")
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert message.startswith("tfds:imdb_reviews: not downloaded yet")
    assert f"the network is unreachable ({resolve.TFDS_HOST[0]}:443: Network is unreachable)" in (
        message
    )
    assert "TFDS_DATA_DIR" in message


def test_tfds_unknown_name_is_one_line(no_network):
    with pytest.raises(DataError) as error:
        load_tfds("no_such_dataset_anywhere")
    assert str(error.value).startswith(
        "tfds:no_such_dataset_anywhere: cannot load (DatasetNotFoundError: Dataset"
    )
    assert "\n" not in str(error.value)
