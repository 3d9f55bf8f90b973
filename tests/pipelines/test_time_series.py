import re

import numpy as np
import pytest

from pipelines.errors import DataError
from pipelines.sources import time_series


def write_csv(tmp_path, text, name="series.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_reads_targets_and_covariates_in_order(tmp_path):
    path = write_csv(
        tmp_path, "date,load,temperature\n2024-01-01,1,10\n2024-01-02,2,11\n2024-01-03,3.5,12\n"
    )
    series = time_series.load_time_series(path, covariate_columns=["temperature"])
    assert series.target_columns == ("load",)
    assert series.covariate_columns == ("temperature",)
    np.testing.assert_allclose(series.values, [[1, 10], [2, 11], [3.5, 12]])
    assert series.values.dtype == np.float32
    assert len(series) == 3


def test_interpolates_missing_values_linearly(tmp_path):
    path = write_csv(tmp_path, "t,y\n1,1\n2,\n3,NA\n4,4\n5,\n")
    series = time_series.load_time_series(path, missing="interpolate")
    np.testing.assert_allclose(series.values[:, 0], [1, 2, 3, 4, 4])


def test_interpolated_cells_are_marked_counted_and_refused_above_a_share(tmp_path):
    path = write_csv(tmp_path, "t,a,b\n1,1,1\n2,,2\n3,3,\n4,,4\n5,5,5\n")
    series = time_series.load_time_series(path)
    np.testing.assert_array_equal(series.missing[:, 0], [False, True, False, True, False])
    assert time_series.missing_counts(series) == {"a": 2, "b": 1}
    report = time_series.missing_report(series, 0.4, "fill them")
    assert report == f"{path}: interpolated 3 missing cells ('a' 2, 'b' 1) of 5 time steps"
    message = f"{path}: too many missing values to interpolate in 'a' 40.0% (2 of 5), more than "
    with pytest.raises(DataError, match=re.escape(message + "0.2 of a column; fill them")):
        time_series.missing_report(series, 0.2, "fill them")
    complete = time_series.load_time_series(write_csv(tmp_path, "t,y\n1,1\n2,2\n", "full.csv"))
    assert time_series.missing_report(complete, 0.0, "fill them") == ""


def test_missing_policy_fail_names_the_first_missing_cell(tmp_path):
    path = write_csv(tmp_path, "t,a,b\n1,1,1\n2,2,\n3,,3\n")
    with pytest.raises(DataError, match=r"row 3, column 'b': missing value"):
        time_series.load_time_series(path, missing="fail")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t,y\n1,1\n2,abc\n", r"row 3, column 'y': 'abc' is not a number"),
        ("t,y\n1,1\n3,2\n2,3\n", r"row 4, column 't': time '2' comes before"),
        ("t,y\n2020-01-01,1\n2020-01-01,2\n", r"row 3, column 't'.*duplicated"),
        ("t,y\nmonday,1\n", r"row 2, column 't': 'monday' is not a date"),
        ("t,y\n1,inf\n", r"row 2, column 'y': 'inf' is infinite"),
    ],
)
def test_bad_cells_name_row_and_column(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        time_series.load_time_series(write_csv(tmp_path, text))


def test_unknown_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, "t,y\n1,1\n")
    with pytest.raises(DataError, match=r"unknown column 'z'; the columns are t, y"):
        time_series.load_time_series(path, target_columns=["z"])


def test_missing_file_names_the_bundled_datasets(tmp_path):
    with pytest.raises(DataError, match="not a dataset name.*sunspots"):
        time_series.load_time_series(str(tmp_path / "nope.csv"))


def test_short_series_is_rejected(tmp_path):
    series = time_series.load_time_series(write_csv(tmp_path, "t,y\n1,1\n2,2\n"))
    with pytest.raises(DataError, match="2 time steps, fewer than the 5"):
        time_series.check_length(series, 5, "one window")


def test_sunspots_recipe(tmp_path, monkeypatch):
    pytest.importorskip("pmdarima")
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path))
    series = time_series.load_time_series("sunspots")
    assert len(series) == 2820
    assert series.target_columns == ("sunspots",)
    assert series.values[0, 0] == pytest.approx(58.0)
    assert str(series.times[0])[:7] == "1749-01"
    assert (tmp_path / "time_series" / "sunspots.csv").is_file()
    cached = time_series.load_time_series("sunspots")
    np.testing.assert_array_equal(cached.values, series.values)
    np.testing.assert_array_equal(cached.times, series.times)
