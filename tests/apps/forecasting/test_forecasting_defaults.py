"""Settings derived from the series: frequency, seasons, lookback, lag grid; the linear base's
differencing and rolling-origin choice; the statistical peers' windows."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from apps.core import config as config_lib
from apps.core import training
from apps.core.app import EvaluationOutputs
from apps.core.errors import UserError
from apps.forecasting import config as forecasting_config
from apps.forecasting import data, evaluation
from apps.forecasting import main as forecasting_main
from apps.forecasting.app import APP
from pipelines import windows
from pipelines.errors import DataError
from pipelines.sources import time_series


def write_series(path, times, values):
    pd.DataFrame({"time": times, "value": values}).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("frequency", "name", "seasons"),
    [
        ("h", "hourly", (24.0, 168.0)),
        ("30min", "every 1800 seconds", (48.0, 336.0)),
        ("D", "daily", (7.0, 365.25)),
        ("W-SAT", "weekly", (52.18,)),
        ("MS", "monthly", (12.0,)),
        ("ME", "monthly", (12.0,)),
        ("QS", "quarterly", (4.0,)),
        ("YS", "yearly", ()),
    ],
)
def test_frequency_is_detected_from_the_time_column(frequency, name, seasons):
    times = pd.date_range("2001-01-01", periods=40, freq=frequency).to_numpy()
    detected, positions = time_series.detect_frequency(times)
    assert (detected.name, detected.seasons) == (name, seasons)
    np.testing.assert_array_equal(positions, np.arange(40))


def test_numeric_times_are_a_regular_step_without_seasons():
    detected, positions = time_series.detect_frequency(np.arange(5, 50, 5))
    assert (detected.name, detected.seasons, detected.step) == ("every 5", (), 5.0)
    np.testing.assert_array_equal(positions, np.arange(9))


def test_a_gap_is_named_or_interpolated(tmp_path):
    times = pd.date_range("2001-01-01", periods=30, freq="D")
    kept = np.delete(np.arange(30), [10, 11])
    path = write_series(
        tmp_path / "gap.csv", times[kept].strftime("%Y-%m-%d"), np.arange(30.0)[kept]
    )
    with pytest.raises(DataError, match=r"2 time steps are missing, the first between 2001-01-10"):
        time_series.load_time_series(path, missing="fail")
    series = time_series.load_time_series(path, missing="interpolate")
    np.testing.assert_allclose(series.values[:, 0], np.arange(30.0))
    assert series.missing[:, 0].tolist() == [step in (10, 11) for step in range(30)]
    assert pd.DatetimeIndex(series.times).equals(times)


def test_an_off_grid_time_is_refused(tmp_path):
    stamps = [f"2001-01-01 0{hour}:00" for hour in range(5)] + ["2001-01-01 05:20"]
    path = write_series(tmp_path / "odd.csv", stamps, np.arange(6.0))
    with pytest.raises(DataError, match=r"row 7: time 2001-01-01T05:20.* not a whole number"):
        time_series.load_time_series(path)


def weekly_config(tmp_path, overrides=()):
    times = pd.date_range("2000-01-01", periods=400, freq="W-SAT").strftime("%Y-%m-%d")
    values = 10 + np.sin(2 * np.pi * np.arange(400) / 52.18)
    config = APP.make_config("base")
    config.data.source = write_series(tmp_path / "weekly.csv", times, values)
    return config_lib.apply_overrides(config, list(overrides))


def test_weekly_settings_are_derived_and_a_set_value_wins(tmp_path, capsys):
    config = APP.complete_config(weekly_config(tmp_path))
    assert "derived from the weekly time steps: data.seasons=52.18" in capsys.readouterr().out
    assert config.data.seasons == (52.18,)
    assert config.evaluation.season == 52
    # Three seasons, cut to a third of the training part (240 steps).
    assert config.data.lookback == 80
    assert config.evaluation.ridge_lags == (52, 80)
    config = APP.complete_config(weekly_config(tmp_path, ["data.lookback=104"]))
    assert config.data.lookback == 104 and config.evaluation.season == 52
    assert config.evaluation.ridge_lags == (52, 104)
    config = APP.complete_config(weekly_config(tmp_path, ["evaluation.season=4"]))
    assert config.evaluation.season == 4 and config.data.seasons == (52.18,)
    # The longest season (52), which the training part holds four times; 8 multiples of 4.
    assert config.data.lookback == 52
    assert config.evaluation.ridge_lags == (4, 12, 16, 24, 32, 40, 44, 52)


def test_a_cycle_longer_than_half_the_training_part_is_not_derived(tmp_path):
    """Half-second steps: a day would be 172,800 of them; 150 steps hold no such cycle."""
    times = pd.date_range("2000-01-01", periods=150, freq="500ms")
    values = 80 + np.sin(np.arange(150) / 5)
    config = APP.make_config("base")
    config.data.source = write_series(
        tmp_path / "half-seconds.csv", times.strftime("%Y-%m-%d %H:%M:%S.%f"), values
    )
    config.data.horizon = 10
    config = APP.complete_config(config)
    assert config.data.seasons == () and config.evaluation.season == 1
    assert config.data.lookback == 20  # two horizons, within a third of the 90 training steps
    hourly = pd.date_range("2000-01-01", periods=24 * 20, freq="h").strftime("%Y-%m-%d %H:%M")
    config = APP.make_config("base")
    config.data.source = write_series(tmp_path / "hourly.csv", hourly, np.arange(480.0))
    # 288 training steps hold a day (24) twice, not a week (168).
    assert APP.complete_config(config).data.seasons == (24.0,)


def test_an_inconsistent_pair_names_the_field_the_user_set(tmp_path):
    with pytest.raises(UserError, match=r"data.lookback: 30 is shorter than the season of this "):
        APP.complete_config(weekly_config(tmp_path, ["data.lookback=30"]))
    config = APP.complete_config(
        weekly_config(tmp_path, ["data.lookback=30", "evaluation.season=13"])
    )
    assert config.evaluation.ridge_lags == (13, 26, 30)


def test_differenced_ridge_folds_back_onto_the_window_exactly():
    generator = np.random.default_rng(3)
    histories = generator.normal(size=(60, 10, 2)) + 5.0  # (windows, lags, columns)
    futures = generator.normal(size=(60, 3, 1))  # (windows, horizon, targets)
    flat = histories.reshape(60, -1)
    for difference, season in (("none", 1), ("first", 1), ("seasonal", 4)):
        choice = evaluation.LinearChoice(10, 0.5, "identity", difference, season)
        weights, bias = evaluation.fit_choice(histories, futures, choice)
        if difference == "none":
            changes, reference = histories, np.zeros((60, 3, 1))
        elif difference == "first":
            changes, reference = np.diff(histories, axis=1), np.repeat(histories[:, -1:, :1], 3, 1)
        else:
            changes = histories[:, 4:] - histories[:, :-4]
            reference = histories[:, [6, 7, 8], :1]  # steps 10 - 4 + h % 4
        change_weights, change_bias = evaluation.fit_ridge(changes, futures - reference, 0.5)
        expected = evaluation.ridge_forecast(changes, change_weights, change_bias, 3) + reference
        np.testing.assert_allclose(flat @ weights + bias, expected.reshape(60, -1), atol=1e-9)
        forecast = evaluation.choice_forecast(histories, weights, bias, choice, 3)
        np.testing.assert_allclose(forecast, expected, atol=1e-9)


def test_ridge_path_equals_scikit_learn_for_every_alpha():
    generator = np.random.default_rng(4)
    features, outputs = generator.normal(size=(30, 5)), generator.normal(size=(30, 2))
    for (weights, bias), alpha in zip(
        evaluation.ridge_path(features, outputs, (0.1, 10.0)), (0.1, 10.0), strict=True
    ):
        expected_weights, expected_bias = evaluation.fit_ridge(features, outputs, alpha)
        np.testing.assert_allclose(weights, expected_weights, atol=1e-10)
        np.testing.assert_allclose(bias, expected_bias, atol=1e-10)


def test_rolling_origins_cut_the_validation_part():
    pieces = evaluation.validation_origins(windows.Split(100, 130), horizon=4)
    assert pieces == [windows.Split(100, 110), windows.Split(110, 120), windows.Split(120, 130)]
    assert evaluation.validation_origins(windows.Split(100, 107), horizon=4) == [
        windows.Split(100, 107)
    ]


@pytest.mark.parametrize(
    ("kind", "difference"), [("seasonal pattern", "seasonal"), ("trend walk", "first")]
)
def test_choose_ridge_picks_the_difference_that_fits(kind, difference):
    generator = np.random.default_rng(5)
    steps = 400
    if kind == "seasonal pattern":
        # A pattern that rises by 0.5 each season: its seasonal difference is exactly constant.
        pattern = generator.normal(size=8)
        values = (pattern[np.arange(steps) % 8] + 0.5 * (np.arange(steps) // 8))[:, None]
    else:
        values = np.cumsum(1.0 + 0.1 * generator.normal(size=steps)).reshape(-1, 1)
    choice, error = evaluation.choose_ridge(
        values, windows.Split(300, 360), 16, 4, 1, (8, 16), season=8
    )
    assert choice.difference == difference, choice
    if kind == "seasonal pattern":
        assert error < 1e-9


def test_the_statistical_peers_see_the_windows_the_app_sees():
    pytest.importorskip("statsforecast")
    generator = np.random.default_rng(6)
    values = generator.normal(size=(60, 2))  # (time, targets)
    split = windows.Split(48, 60)
    starts = windows.window_starts(split, 8, 3)
    histories, _ = windows.window_arrays(values, starts, 8, 3, 2)
    forecasts = evaluation.statistical_forecasts(values, starts + 8, 3, 4, ("SeasonalNaive",))
    expected = evaluation.seasonal_naive_forecast(histories, 3, 2, season=4)
    np.testing.assert_allclose(forecasts["SeasonalNaive"], expected, rtol=1e-6)


def test_evaluate_scores_the_statistical_peers_or_says_they_are_missing(
    tmp_path, hide_statsforecast
):
    pytest.importorskip("statsforecast")
    times = pd.date_range("2000-01-01", periods=120, freq="MS").strftime("%Y-%m-%d")
    steps = np.arange(120)
    values = 20 + 0.1 * steps + 3 * np.sin(2 * np.pi * steps / 12)
    config = forecasting_config.tiny()
    config.data.source = write_series(tmp_path / "monthly.csv", times, values)
    config.evaluation.peers = ("AutoETS", "AutoTheta")
    datasets = data.load_data(config)
    model = APP.model.build_model(config, datasets.assets)
    outputs = EvaluationOutputs(tmp_path)
    metrics = evaluation.evaluate(model, config, datasets, outputs)
    for name in ("AutoETS", "AutoTheta", "ridge", "seasonal_naive"):
        assert metrics[name]["mae"] >= 0, name
    peers = [name for name, value in metrics.items() if isinstance(value, dict) and "mae" in value]
    peers.remove("model")
    assert metrics["best_baseline"] == min(peers, key=lambda name: metrics[name]["mae"])
    assert "notes" not in metrics

    hide_statsforecast()
    metrics = evaluation.evaluate(model, config, datasets, outputs)
    assert "AutoETS" not in metrics
    assert "statsforecast is not installed" in metrics["notes"][0]


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    """`tiny` with its lookback and season derived, on a linear base, trained on a pure sine:
    the base (a seasonal difference) is exact."""
    root = tmp_path_factory.mktemp("gated")
    times = pd.date_range("1990-01-01", periods=240, freq="MS").strftime("%Y-%m-%d")
    values = 50.0 + 20.0 * np.sin(2 * np.pi * np.arange(240) / 12)
    source = write_series(root / "sine.csv", times, values)
    workdir = root / "run"
    arguments = ["train", "--preset", "tiny", "--data", source, "--workdir", str(workdir)]
    overrides = ["data.lookback=0", "evaluation.season=0", "model.linear_base=true"]
    for override in [*overrides, "training.epochs=2"]:
        arguments += ["--set", override]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert forecasting_main(arguments) == 0
    return {"workdir": workdir, "values": values, "out": out.getvalue()}


def test_train_writes_the_derived_settings_into_config_json(gated_run):
    assert "derived from the monthly time steps: data.seasons=12" in gated_run["out"]
    saved = json.loads((gated_run["workdir"] / "config.json").read_text())
    assert saved["data"]["seasons"] == [12.0]
    assert saved["evaluation"]["season"] == 12
    # Three seasons (a tenth of the 168 training steps is less).
    assert saved["data"]["lookback"] == 36
    assert saved["evaluation"]["ridge_lags"] == [12, 24, 36]


def test_the_residual_is_dropped_where_the_linear_base_is_exact(gated_run):
    assert "does not beat its linear base on the validation windows" in gated_run["out"]
    config, model, assets = training.load_trained(APP, gated_run["workdir"])
    assert assets.linear_difference == "seasonal" and assets.linear_validation_mae < 1e-6
    for weights in model.get_layer("head").get_weights():
        assert not np.any(weights)
    # The base is the ridge peer: the same choice refitted on train and validation.
    kernel, bias = model.get_layer("linear_base").get_weights()
    np.testing.assert_allclose(kernel, assets.ridge_kernel, atol=1e-6)
    np.testing.assert_allclose(bias, assets.ridge_bias, atol=1e-4)
    endpoints = APP.serving.endpoints(model, config, assets)
    values = gated_run["values"]
    history = values[None, -40:-4, None].astype(np.float32)
    forecast = endpoints.functions["serving_default"](history=history)["forecast"].numpy()
    np.testing.assert_allclose(forecast[0, :, 0], values[-4:], atol=1e-3)


def test_calendar_terms_are_derived_for_a_season_longer_than_the_window(tmp_path, capsys):
    days = pd.date_range("2000-01-01", periods=1600, freq="D")
    daily = APP.make_config("base")
    daily.data.source = write_series(
        tmp_path / "daily.csv", days.strftime("%Y-%m-%d"), np.sin(np.arange(1600) / 58.1)
    )
    config = APP.complete_config(daily)
    # A year (365.25 days) is longer than the derived lookback (96 days): three pairs.
    assert config.data.lookback < 365.25 and config.data.calendar_terms == 3
    assert "data.calendar_terms=3" in capsys.readouterr().out
    # The weekly sine's 80-week lookback holds its year: none.
    assert APP.complete_config(weekly_config(tmp_path)).data.calendar_terms == 0
    daily.data.calendar_terms = 1
    assert APP.complete_config(daily).data.calendar_terms == 1


def test_choose_ridge_forecasts_in_logs_where_the_series_grows_by_factors():
    """A series whose logarithm is a sinusoid on a linear trend (a linear recurrence, so exact
    for a ridge of its logs; its levels are not): the logarithm is chosen, and where a value is
    zero it is not tried."""
    steps = np.arange(300)
    values = np.exp(1.0 + 0.01 * steps + 1.5 * np.sin(2 * np.pi * steps / 10))[:, None]
    assert evaluation.usable_transforms(values) == ["identity", "sqrt", "log"]
    choice, error = evaluation.choose_ridge(
        values, windows.Split(200, 260), 12, 4, 1, (6, 12), season=10
    )
    assert choice.transform == "log", choice
    assert error < 1e-3 * np.abs(values[200:260]).mean()
    values[5] = 0.0
    assert evaluation.usable_transforms(values) == ["identity", "sqrt"]
    assert evaluation.usable_transforms(-values) == ["identity"]


def test_the_nested_ridge_score_searches_before_each_piece_and_is_not_biased_low():
    """`nested_ridge_validation` searches the grid on the steps before each piece alone: a
    piece's forecast ignores every later value; on noise, where no configuration of the grid is
    better than another, the grid's own validation MAE (its lowest) is below the nested one;
    where the grid holds an exact model, the nested score finds it too."""
    validation, lag_counts = windows.Split(180, 220), (4, 8, 16, 24)
    for seed in range(3):
        values = 10.0 + np.random.default_rng(seed).normal(size=(220, 1))
        _, grid_error = evaluation.choose_ridge(values, validation, 24, 4, 1, lag_counts, 8)
        nested_error, forecasts = evaluation.nested_ridge_validation(
            values, validation, 24, 4, 1, lag_counts, 8
        )
        assert grid_error < nested_error
    changed = values.copy()
    changed[190:] += np.random.default_rng(9).normal(size=(30, 1))  # from the second piece on
    _, changed_forecasts = evaluation.nested_ridge_validation(
        changed, validation, 24, 4, 1, lag_counts, 8
    )
    np.testing.assert_array_equal(changed_forecasts[0], forecasts[0])
    assert not np.array_equal(changed_forecasts[1], forecasts[1])
    pattern = np.random.default_rng(5).normal(size=8)  # rises by 0.5 each season of 8
    exact = (pattern[np.arange(360) % 8] + 0.5 * (np.arange(360) // 8))[:, None]
    error, _ = evaluation.nested_ridge_validation(
        exact, windows.Split(300, 360), 16, 4, 1, (8, 16), season=8
    )
    assert error < 1e-9
