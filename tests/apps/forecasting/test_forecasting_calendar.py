"""Calendar features: the linear base gains from them, and the export computes the terms the
training windows carried from the time of the last history step."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from command_lines import command_line

from apps.core import training
from apps.forecasting import evaluation, main, serving
from apps.forecasting.app import APP
from pipelines import windows
from pipelines.calendar import Calendar, time_values
from pipelines.sources.time_series import Frequency


def test_calendar_terms_let_the_linear_base_see_a_cycle_longer_than_its_window():
    # Four years of a yearly cycle and noise (std 0.5): 28 days of history cannot tell where
    # the next 60 days of the year go; the phase of the year can.
    days = pd.date_range("2019-01-01", periods=1460, freq="D")
    day_of_year = days.dayofyear.to_numpy()
    noise = np.random.default_rng(0).normal(0.0, 0.5, len(days))
    yearly = 5 * np.sin(2 * np.pi * day_of_year / 365.25) + 3 * np.cos(
        4 * np.pi * day_of_year / 365.25
    )
    values = (10 + yearly + noise)[:, None]
    calendar = Calendar.of(Frequency("daily", (7.0, 365.25), 86_400.0), (365.25,), order=3)
    next_terms = calendar.next_terms(days.to_numpy())
    splits = windows.time_splits(len(values), 0.2, 0.2)
    validation = splits["validation"]
    errors = {}
    for terms in (None, next_terms):
        choice, _ = evaluation.choose_ridge(
            values[: validation.end], validation, 28, 60, 1, (7, 14, 28), 7, terms
        )
        kernel, bias = evaluation.fit_linear(values, validation.end, 28, 60, 1, choice, terms)
        histories, truth, rows = evaluation.split_windows(values, splits["test"], 28, 60, 1, terms)
        forecast = evaluation.choice_forecast(histories, kernel, bias, choice, 60, rows)
        errors[choice.name] = float(np.abs(forecast - truth).mean())
    assert set(errors) == {"ridge", "ridge + calendar"}
    # The noise alone costs 0.5 * sqrt(2 / pi) = 0.40.
    assert errors["ridge + calendar"] < 0.48 < 0.5 * errors["ridge"], errors


def monthly_frame(steps: int, start: str = "1990-01-01") -> pd.DataFrame:
    months = pd.date_range(start, periods=steps, freq="MS")
    month = months.month.to_numpy()
    noise = np.random.default_rng(1).normal(0.0, 1.0, steps)
    return pd.DataFrame(
        {
            "month": months.strftime("%Y-%m-%d"),
            "sales": 100 + 15 * np.sin(2 * np.pi * month / 12) + 5 * (month == 12) + noise,
        }
    )


@pytest.fixture(scope="module", params=["point", "quantiles"])
def calendar_run(tmp_path_factory, request):
    """A tiny model on a linear base with calendar features, trained and exported: a point
    model (whose residual the gate drops, so the export serves the base alone) and a quantile
    model (the whole model)."""
    root = tmp_path_factory.mktemp(f"forecasting-calendar-{request.param}")
    data = root / "sales.csv"
    monthly_frame(240).to_csv(data, index=False)
    workdir = root / "run"
    arguments = command_line(
        "train --preset tiny",
        "data.calendar_terms=2",
        "model.linear_base=true",
        "model.recurrent_window=8",
        "training.epochs=3",
        *(["model.quantiles=0.1,0.5,0.9"] if request.param == "quantiles" else []),
        workdir=workdir,
        data=data,
    )
    assert main(arguments) == 0
    export_root = root / "saved_models"
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    return {"data": data, "workdir": workdir, "version": export_root / "forecasting" / "1"}


def test_the_export_computes_the_calendar_terms_the_model_trained_on(calendar_run):
    config, model, assets = training.load_trained(APP, calendar_run["workdir"])
    assert assets.calendar == Calendar((12.0,), (2,), 365.2425 * 86_400 / 12)
    assert assets.linear_calendar and assets.linear_choice.name == "ridge + calendar"
    datasets = APP.data.load_data(config, assets)
    inputs, _ = next(iter(datasets.test))
    series, starts = datasets.series, datasets.test_starts
    normalized = assets.normalization.normalize(series.values).astype(np.float32)
    direct = evaluation.model_inputs(normalized, starts, config, assets, series.times)
    # The training pipeline's terms are the ones `evaluate` gives the model.
    count = len(inputs["calendar"])
    np.testing.assert_allclose(inputs["calendar"].numpy(), direct["calendar"][:count], atol=1e-6)
    output = model.predict(direct, verbose=0)
    if config.model.quantiles:
        output = np.sort(output, axis=-1)[..., 1]  # the median, as the export answers
    expected = assets.normalization.denormalize(output, columns=[0])

    serve = tf.saved_model.load(str(calendar_run["version"])).signatures["serving_default"]
    lookback = config.data.lookback
    histories = np.stack([series.values[start : start + lookback] for start in starts])
    last_times = time_values(series.times)[starts + lookback - 1]
    answer = serve(
        history=tf.constant(histories, tf.float32), last_time=tf.constant(last_times, tf.float64)
    )
    np.testing.assert_allclose(answer["forecast"].numpy(), expected, atol=1e-3)
    # The terms move the forecast: another time of the year gives another answer.
    half_a_year = serve(
        history=tf.constant(histories, tf.float32),
        last_time=tf.constant(last_times + 0.5 * 365.2425 * 86_400, tf.float64),
    )
    assert np.abs(half_a_year["forecast"].numpy() - expected).max() > 1.0


def test_the_signatures_take_the_last_time(calendar_run, saved_model_cli_signatures):
    signatures = saved_model_cli_signatures(calendar_run["version"])
    assert signatures["serving_default"]["inputs"] == {
        "history": "DT_FLOAT (-1, 16, 1)",
        "last_time": "DT_DOUBLE (-1)",
    }
    assert signatures["stream"]["inputs"] == {
        "observation": "DT_FLOAT (-1, 1)",
        "state": "DT_FLOAT (-1, 16, 1)",
        "last_time": "DT_DOUBLE (-1)",
    }


def test_predict_from_csv_sends_the_time_of_the_last_row(calendar_run, tmp_path, capsys):
    recent = monthly_frame(40, start="2010-01-01")
    recent.to_csv(tmp_path / "recent.csv", index=False)
    output = tmp_path / "forecast.csv"
    code = main(
        ["predict", "--model", str(calendar_run["version"]), "--input",
         str(tmp_path / "recent.csv"), "--output", str(output)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(output.open()))
    assert [row["time"] for row in rows] == ["2013-05-01", "2013-06-01", "2013-07-01", "2013-08-01"]
    serve = tf.saved_model.load(str(calendar_run["version"])).signatures["serving_default"]
    last = time_values(pd.to_datetime(recent["month"]).to_numpy()[-1:])
    answer = serve(
        history=tf.constant(recent["sales"].to_numpy()[None, -16:, None], tf.float32),
        last_time=tf.constant(last, tf.float64),
    )
    np.testing.assert_allclose(
        [float(row["sales"]) for row in rows], answer["forecast"].numpy()[0, :, 0], rtol=1e-5
    )

    stream = tf.saved_model.load(str(calendar_run["version"])).signatures["stream"]
    values = recent["sales"].to_numpy()
    stepped = stream(
        observation=tf.constant(values[None, -1:], tf.float32),
        state=tf.constant(values[None, -17:-1, None], tf.float32),
        last_time=tf.constant(last, tf.float64),
    )
    np.testing.assert_allclose(stepped["forecast"].numpy(), answer["forecast"].numpy(), atol=1e-5)
    # The client's stream sends each observation's time with it.
    [client_stream] = serving.read_stream(
        [], tmp_path / "recent.csv", stream.structured_input_signature[1]
    )
    times = time_values(pd.to_datetime(recent["month"]).to_numpy())
    assert [step.inputs["last_time"][0] for step in client_stream.steps] == list(times[16:])
