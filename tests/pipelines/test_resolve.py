import pytest

from pipelines.errors import DataError
from pipelines.sources.resolve import resolve_source

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
