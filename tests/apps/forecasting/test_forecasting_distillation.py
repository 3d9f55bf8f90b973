"""statsforecast's models distilled into linear maps of the window, and the linear base chosen
among them and the ridge on the validation windows."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from apps.core import training
from apps.forecasting import evaluation
from apps.forecasting import main as forecasting_main
from apps.forecasting.app import APP
from pipelines import windows

statsforecast_models = pytest.importorskip("statsforecast.models")


def seasonal_series(steps: int, seed: int = 0) -> np.ndarray:
    """A level that wanders (a random walk) plus a season of 4 and noise."""
    random = np.random.default_rng(seed)
    level = 100.0 + np.cumsum(random.normal(0.0, 1.0, steps))
    return level + 5.0 * np.sin(2 * np.pi * np.arange(steps) / 4) + random.normal(0, 0.5, steps)


@pytest.mark.parametrize("name", ["AutoETS", "AutoARIMA"])
def test_a_distilled_model_forecasts_later_windows_as_the_model_does(name):
    values = seasonal_series(200)[:, None]
    end, lookback, horizon = 150, 16, 4
    kernel, bias = evaluation.distilled_forecaster(values, end, lookback, horizon, 1, 4, name)
    assert kernel.shape == (lookback, horizon) and bias.shape == (horizon,)
    model = getattr(statsforecast_models, name)(season_length=4).fit(values[:end, 0])
    gaps, teacher_errors, distilled_errors = [], [], []
    for origin in range(end, len(values) - horizon):  # windows the distillation never saw
        teacher = model.forward(values[:origin, 0], h=horizon)["mean"]
        distilled = values[origin - lookback : origin, 0] @ kernel + bias
        truth = values[origin : origin + horizon, 0]
        gaps.append(np.abs(distilled - teacher).mean())
        teacher_errors.append(np.abs(teacher - truth).mean())
        distilled_errors.append(np.abs(distilled - truth).mean())
    # The map follows the model (additive models are linear in the past; the window holds the
    # latest 16 steps of it) and forecasts about as well as it does.
    assert np.mean(gaps) < 0.4 * np.mean(teacher_errors)
    assert np.mean(distilled_errors) < 1.1 * np.mean(teacher_errors)


def test_each_target_reads_only_its_own_history():
    first, second = seasonal_series(160, seed=1), seasonal_series(160, seed=2) * 3.0
    values = np.stack([first, second, first - second], axis=1)  # two targets, a covariate
    kernel, _ = evaluation.distilled_forecaster(values, 120, 8, 2, 2, 4, "AutoETS")
    grid = kernel.reshape(8, 3, 2, 2)  # (lags, columns, horizon, targets)
    assert np.any(grid[:, 0, :, 0]) and np.any(grid[:, 1, :, 1])
    assert not np.any(grid[:, 1, :, 0]) and not np.any(grid[:, 0, :, 1])
    assert not np.any(grid[:, 2])  # the covariate


def test_the_base_is_the_candidate_with_the_lowest_validation_mae(capsys):
    values = seasonal_series(200)[:, None]
    validation, lookback, horizon = windows.Split(120, 160), 16, 4
    ridge = evaluation.LinearChoice(8, 1.0, "identity", "none", 4)
    models = ("AutoETS", "AutoTheta")
    chosen, errors, train_fit = evaluation.choose_linear_base(
        values, validation, lookback, horizon, 1, ridge, np.inf, models
    )
    assert set(errors) == {
        "ridge", "seasonal_naive", "AutoETS (distilled)", "AutoTheta (distilled)",
        "AutoETS+AutoTheta (distilled)",
    }  # fmt: skip
    assert chosen.statistical and errors[chosen.name] == min(errors.values())
    # The mean of the distilled models is the mean of their maps, fitted where they are.
    combined = evaluation.LinearChoice(lookback, 0.0, "identity", "none", 4, models)
    kernel, bias = evaluation.fit_linear(values, 120, lookback, horizon, 1, combined)
    singles = [
        evaluation.distilled_forecaster(values, 120, lookback, horizon, 1, 4, name)
        for name in models
    ]
    np.testing.assert_allclose(kernel, (singles[0][0] + singles[1][0]) / 2)
    np.testing.assert_allclose(bias, (singles[0][1] + singles[1][1]) / 2)
    # The chosen candidate's first piece is its fit on the training part, as train keeps it.
    for fitted, expected in zip(
        train_fit, evaluation.fit_linear(values, 120, lookback, horizon, 1, chosen), strict=True
    ):
        np.testing.assert_allclose(fitted, expected)
    chosen, _, train_fit = evaluation.choose_linear_base(
        values, validation, lookback, horizon, 1, ridge, 0.0, models
    )
    assert chosen == ridge and train_fit is None


def test_the_seasonal_naive_candidate_is_the_seasonal_naive_forecast():
    values = seasonal_series(120)[:, None]
    histories, _ = windows.window_arrays(values, np.arange(0, 100), 12, 6, 1)
    choice = evaluation.LinearChoice(12, 0.0, "identity", "none", 4, ("seasonal_naive",))
    kernel, bias = evaluation.fit_linear(values, 80, 12, 6, 1, choice)
    np.testing.assert_array_equal(
        evaluation.choice_forecast(histories, kernel, bias, choice, 6),
        evaluation.seasonal_naive_forecast(histories, 6, 1, 4),
    )
    assert choice.name == "seasonal_naive"


def test_without_statsforecast_the_base_is_the_ridge_or_the_seasonal_naive(
    hide_statsforecast, capsys
):
    hide_statsforecast()
    ridge = evaluation.LinearChoice(8, 1.0, "identity", "none", 4)
    chosen, errors, _ = evaluation.choose_linear_base(
        seasonal_series(200)[:, None], windows.Split(120, 160), 16, 4, 1, ridge, 1e9, ("AutoETS",)
    )
    assert set(errors) == {"ridge", "seasonal_naive"} and chosen.name == "seasonal_naive"
    assert "statsforecast is not installed" in capsys.readouterr().out


def test_a_model_that_fails_is_left_out_with_a_note(monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise RuntimeError("no convergence")

    monkeypatch.setattr(statsforecast_models.AutoTheta, "fit", fail)
    values = seasonal_series(200)[:, None]
    ridge = evaluation.LinearChoice(8, 1.0, "identity", "none", 4)
    _, errors, _ = evaluation.choose_linear_base(
        values, windows.Split(120, 160), 16, 4, 1, ridge, 1e9, ("AutoETS", "AutoTheta")
    )
    assert set(errors) == {"ridge", "seasonal_naive", "AutoETS (distilled)"}
    assert "leaves out AutoTheta failed on column 0: no convergence" in capsys.readouterr().out


def test_train_puts_the_chosen_distilled_map_into_the_model(tmp_path):
    """A wandering level with a season: the distilled models against a ridge on one lag."""
    times = pd.date_range("1970-01-01", periods=200, freq="QS").strftime("%Y-%m-%d")
    source = tmp_path / "quarterly.csv"
    pd.DataFrame({"time": times, "value": seasonal_series(200, seed=3)}).to_csv(source, index=False)
    workdir = tmp_path / "run"
    arguments = ["train", "--preset", "tiny", "--data", str(source), "--workdir", str(workdir)]
    overrides = [
        "data.lookback=16", "evaluation.season=4", "evaluation.ridge_lags=1",
        "evaluation.peers=AutoETS,AutoTheta", "model.linear_base=true", "training.epochs=1",
    ]  # fmt: skip
    for override in overrides:
        arguments += ["--set", override]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert forecasting_main(arguments) == 0
    _, model, assets = training.load_trained(APP, workdir)
    candidates = assets.linear_candidates
    assert len(candidates) == 5 and assets.linear_validation_mae == min(candidates.values())
    assert "(distilled)" in assets.linear_choice.name, candidates
    assert f"{assets.linear_choice.name}\n" in out.getvalue()  # train names its choice
    # ... and the specification each chosen model keeps, as the work dir records it.
    assert set(assets.linear_specifications) == set(assets.linear_statistical)
    for name, (found,) in assets.linear_specifications.items():
        assert f"{name} keeps the specification found on the training part: {found}\n" in (
            out.getvalue()
        )
    # The ridge peer keeps its own choice.
    assert assets.ridge_choice.lags == 1 and assets.ridge_choice.statistical == ()
    kernel, _ = model.get_layer("linear_base").get_weights()
    assert kernel.shape[0] == assets.linear_lags
    fitted = (assets.linear_kernel, assets.linear_refit_kernel)  # train, or train + validation
    assert any(np.allclose(kernel, np.asarray(weights), atol=1e-4) for weights in fitted)


@pytest.mark.parametrize(
    ("name", "key", "seed"),
    [("AutoARIMA", "arma", 0), ("AutoETS", "components", 0), ("AutoTheta", "modeltype", 3)],
)
def test_a_specified_model_refits_the_specification_found_before(name, key, seed):
    """Fitted on the steps it was specified on, the fixed model forecasts as the automatic one;
    fitted on all the steps, where the automatic search picks another specification, it keeps
    the one the shorter history chose."""
    values = seasonal_series(160, seed=seed)
    automatic = getattr(statsforecast_models, name)(season_length=4)
    short = automatic.fit(values[:100])
    fixed = evaluation.specified_model(name, values[:100], 4)
    np.testing.assert_allclose(
        fixed.fit(values[:100]).predict(h=6)["mean"], short.predict(h=6)["mean"], rtol=1e-6
    )
    found = short.model_[key]
    assert automatic.fit(values).model_[key] != found
    assert fixed.fit(values).model_[key] == found
    if name == "AutoARIMA":
        p, q, seasonal_p, seasonal_q, period, d, seasonal_d = found[:7]
        drift = " with drift" if "drift" in short.model_["coef"] else ""
        notation = f"ARIMA({p},{d},{q})({seasonal_p},{seasonal_d},{seasonal_q})[{period}]{drift}"
    elif name == "AutoETS":
        notation = f"ETS({found[0]},{found[1]}{'d' * (found[3] == 'D')},{found[2]})"
    else:
        notation = f"Theta ({found})"
    assert evaluation.specification(fixed) == notation
