"""The forecasting app end to end on the tiny preset: train, evaluate, export, serve, predict."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import fake_serving
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from command_lines import command_line

from apps import client
from apps.core import training
from apps.forecasting import main
from apps.forecasting.app import APP
from layers.cudnn import cudnn_problems

PERIOD = 12.0


def sine_frame(steps: int, start: str = "1990-01-01") -> pd.DataFrame:
    t = np.arange(steps)
    return pd.DataFrame(
        {
            "month": pd.date_range(start, periods=steps, freq="MS").strftime("%Y-%m-%d"),
            "level": 50.0 + 20.0 * np.sin(2 * np.pi * t / PERIOD),
        }
    )


def run_cli(*args, capsys=None) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny quantile model with a highway and a linear base, trained on a sine and exported."""
    root = tmp_path_factory.mktemp("forecasting")
    data = root / "sine.csv"
    sine_frame(320).to_csv(data, index=False)
    workdir = root / "run"
    arguments = command_line(
        "train --preset tiny",
        "model.quantiles=0.1,0.5,0.9",
        "model.highway_window=12",
        "model.linear_base=true",
        "model.recurrent_window=8",
        "training.epochs=8",
        workdir=workdir,
        data=data,
    )
    assert main(arguments) == 0
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    export_root = root / "saved_models"
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    return {
        "root": root,
        "data": data,
        "workdir": workdir,
        "version": export_root / "forecasting" / "1",
    }


def test_evaluate_reports_model_and_baselines_with_plots(trained):
    workdir = trained["workdir"]
    for name in [
        "config.json",
        "model.keras",
        "assets/series.json",
        "metrics.json",
        "forecasts.png",
        "error-per-step.png",
        "training-curves.png",
    ]:
        assert (workdir / name).is_file(), name
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["steps"] == {"train": 224, "validation": 48, "test": 48}
    assert metrics["test_windows"] == 48 - 4 + 1
    for name in ["model", "last_value", "seasonal_naive", "ridge"]:
        assert set(metrics[name]) >= {"mae", "rmse", "mase", "mae_per_step"}
        assert len(metrics[name]["mae_per_step"]) == 4
    # A pure 12-step sine: the seasonal naive forecast with season 12 is exact.
    assert metrics["seasonal_naive"]["mae"] < 1e-3
    assert metrics["model"]["mae"] < 0.2 * metrics["last_value"]["mae"], metrics
    assert metrics["model"]["interval"]["interval"] == "0.1-0.9"
    assert 0.0 <= metrics["model"]["interval"]["coverage"] <= 1.0


def test_fresh_process_answers_a_rest_request(trained, fresh_process_client):
    frame = sine_frame(40)
    histories = [
        frame["level"].to_numpy()[offset : offset + 16, None].tolist() for offset in (0, 5, 11)
    ]
    truth = np.stack(
        [frame["level"].to_numpy()[offset + 16 : offset + 20] for offset in (0, 5, 11)]
    )
    answer = fresh_process_client(trained["version"], {"instances": histories})
    assert answer["project_modules_loaded"] == []
    forecast, quantiles = answer["outputs"]["forecast"], answer["outputs"]["quantiles"]
    assert forecast["dtype"] == "float32" and forecast["shape"] == [3, 4, 1]
    assert quantiles["shape"] == [3, 4, 1, 3]
    values = np.asarray(forecast["value"])[..., 0]
    assert np.abs(values - truth).mean() < 4.0, (values, truth)  # amplitude 20, original units
    levels = np.asarray(quantiles["value"])
    assert np.all(np.diff(levels, axis=-1) >= 0)
    np.testing.assert_allclose(answer["outputs"]["quantile_levels"]["value"], [[0.1, 0.5, 0.9]] * 3)


def test_export_rejects_nan_and_wrong_shapes(trained, fresh_process_client):
    history = sine_frame(16)["level"].to_numpy()[:, None].tolist()
    history[3][0] = float("nan")
    with pytest.raises(AssertionError, match="history holds NaN or infinity"):
        fresh_process_client(trained["version"], {"instances": [history]})
    serve = tf.saved_model.load(str(trained["version"])).signatures["serving_default"]
    for shape in ([1, 15, 1], [1, 16, 2]):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"shape \[batch, 16, 1\]"):
            serve(history=tf.zeros(shape))


def test_predict_from_csv_writes_the_next_steps(trained, tmp_path, capsys):
    series = tmp_path / "recent.csv"
    sine_frame(30, start="2000-01-01").to_csv(series, index=False)
    output = tmp_path / "forecast.csv"
    code, _, err = run_cli(
        "predict",
        "--model",
        trained["version"],
        "--input",
        series,
        "--output",
        output,
        capsys=capsys,
    )
    assert code == 0, err
    rows = list(csv.DictReader(output.open()))
    assert [row["time"] for row in rows] == ["2002-07-01", "2002-08-01", "2002-09-01", "2002-10-01"]
    assert set(rows[0]) == {
        "time",
        "level",
        "level_q0.1",
        "level_q0.5",
        "level_q0.9",
    }
    assert all(
        float(row["level_q0.1"]) <= float(row["level"]) <= float(row["level_q0.9"]) for row in rows
    )
    expected = 50 + 20 * np.sin(2 * np.pi * np.arange(30, 34) / PERIOD)
    np.testing.assert_allclose([float(row["level"]) for row in rows], expected, atol=6.0)
    from_workdir = tmp_path / "from-workdir.csv"
    assert (
        run_cli(
            "predict",
            "--model",
            trained["workdir"],
            "--input",
            series,
            "--output",
            from_workdir,
            capsys=capsys,
        )[0]
        == 0
    )
    assert list(csv.DictReader(from_workdir.open()))[0]["time"] == "2002-07-01"


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_the_client_streams_a_series_as_predict_answers_each_window(
    trained, tmp_path, capsys, protocol
):
    frame = sine_frame(19, start="2000-01-01")  # lookback 16: the start state and 3 steps
    series = tmp_path / "recent.csv"
    frame.to_csv(series, index=False)
    expected = []
    for end in (17, 18, 19):  # predict on each window the stream reaches
        window = tmp_path / f"window-{end}.csv"
        frame.iloc[end - 16 : end].to_csv(window, index=False)
        code, out, err = run_cli("predict", "--model", trained["version"], "--input", window,
                                 capsys=capsys)  # fmt: skip
        assert code == 0, err
        expected += [
            {"origin": frame["month"][end - 1], **row} for row in csv.DictReader(out.splitlines())
        ]
    with fake_serving.serving(trained["version"], "forecasting", protocol) as server:
        arguments = ["forecasting", "--input", str(series), "--signature", "stream",
                     "--server", server, "--protocol", protocol]  # fmt: skip
        assert client.main(arguments) == 0
    streamed = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(streamed) == 3 * 4 and streamed[0]["origin"] == "2001-05-01"
    for row, expected_row in zip(streamed, expected, strict=True):
        assert row.keys() == expected_row.keys()
        assert (row["origin"], row["time"]) == (expected_row["origin"], expected_row["time"])
        for name in ("level", "level_q0.1", "level_q0.9"):
            assert float(row[name]) == pytest.approx(float(expected_row[name]), abs=1e-3)


def test_evaluate_on_a_user_file(trained, tmp_path, capsys):
    workdir = trained["workdir"]
    held_out = json.loads((workdir / "metrics.json").read_text())
    data = tmp_path / "other.csv"
    # Other column names, read with evaluate's --set.
    sine_frame(60, start="2010-01-01").rename(columns={"month": "t", "level": "y"}).to_csv(
        data, index=False
    )
    code, out, err = run_cli(
        "evaluate",
        "--workdir",
        workdir,
        "--data",
        data,
        "--set",
        "data.time_column=t",
        "--set",
        "data.target_columns=y",
        capsys=capsys,
    )
    assert code == 0, err
    assert json.loads((workdir / "metrics.json").read_text()) == held_out
    metrics = json.loads((workdir / "metrics-other.json").read_text())
    assert metrics["test_windows"] == 60 - 16 - 4 + 1
    # The same forecasters as on the held-out split: the ridge is the training run's.
    assert {name for name in metrics if isinstance(metrics[name], dict)} >= {
        "model",
        "last_value",
        "seasonal_naive",
        "ridge",
    }
    assert metrics["ridge"]["mae"] < 0.2 * metrics["last_value"]["mae"], metrics
    assert metrics["best_baseline"] == held_out["best_baseline"] == "seasonal_naive"
    for name in ["forecasts", "error-per-step"]:
        assert (workdir / f"{name}-other.png").is_file()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("t,y\n1,1\n2,x\n", [], "row 3, column 'y': 'x' is not a number"),
        ("t,y\n" + "".join(f"{i},{i}\n" for i in range(10)), [], "fewer than the"),
        ("t,y\n1,1\n3,2\n2,3\n", [], "sort the file by time"),
        ("t,y\n1,1\n1,2\n", [], "duplicated"),
        ("t,y\n1,1\n", ["--set", "data.target_columns=z"], "unknown column 'z'"),
        ("t,y\n1,\n", ["--set", "data.missing=fail"], "row 2, column 'y': missing value"),
        (
            "t,y,z\n" + "".join(f"{i},{'' if i % 8 == 1 else i},{i}\n" for i in range(40)),
            [],
            "too many missing values to interpolate in 'y' 12.5% (5 of 40), more than 0.05 of "
            "a column; fill the gaps, or allow more with --set data.max_missing_fraction=SHARE",
        ),
        (None, ["--set", "data.max_missing_fraction=2"], "data.max_missing_fraction: expected"),
        (None, ["--set", "model.residual_margin=-0.1"], "model.residual_margin: expected"),
        (
            None,
            ["--set", "model.model_type=magic"],
            "model.model_type: expected one of direct, autoregressive, encoder-decoder",
        ),
        (None, ["--data", "no/such.csv"], "no/such.csv"),
    ],
)
def test_train_user_errors_are_one_line(tmp_path, capsys, text, args, expected):
    data_args = []
    if text is not None:
        data_args = ["--data", write(tmp_path / "data.csv", text)]
    code, _, err = run_cli(
        "train", "--workdir", tmp_path / "run", "--preset", "tiny", *data_args, *args, capsys=capsys
    )
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert expected.lower() in err.lower(), err


def test_predict_rejects_a_short_or_malformed_series(trained, tmp_path, capsys):
    short = write(tmp_path / "short.csv", "month,level\n2000-01-01,1\n2000-02-01,2\n")
    code, _, err = run_cli(
        "predict", "--model", trained["version"], "--input", short, capsys=capsys
    )
    assert code == 2 and "fewer than the 16" in err
    wide = write(tmp_path / "wide.csv", "t,a,b\n" + "".join(f"{i},1,2\n" for i in range(20)))
    code, _, err = run_cli("predict", "--model", trained["version"], "--input", wide, capsys=capsys)
    assert code == 2 and "the model reads 1" in err


def test_tail_writes_the_last_steps_as_predict_input(tmp_path, capsys):
    data = tmp_path / "series.csv"
    sine_frame(30).to_csv(data, index=False)
    code, out, err = run_cli("tail", "--data", data, "--steps", 2, capsys=capsys)
    assert code == 0, err
    assert out.splitlines() == ["time,level", "1992-05-01,67.3205", "1992-06-01,60"]


def test_every_recurrent_layer_can_use_cudnn_on_a_gpu(trained):
    _, model, _ = training.load_trained(APP, trained["workdir"])
    assert cudnn_problems(model) == {}


def test_malformed_requests_are_refused_cleanly_in_one_process(
    trained, bad_requests_in_fresh_process
):
    export = trained["version"]
    result = bad_requests_in_fresh_process(export)
    assert result["outcomes"]["empty batch"] == "answered", result
    assert result["outcomes"]["256 rows"] == "answered", result
    assert set(result["good_rows"].values()) == {3}, result


def test_interpolated_cells_are_reported_and_too_many_refused(trained, tmp_path, capsys):
    frame = sine_frame(60, start="2010-01-01")
    frame["level"] = frame["level"].astype(object)
    frame.loc[[20, 41], "level"] = ""
    gappy = tmp_path / "gappy.csv"
    frame.to_csv(gappy, index=False)
    code, _, err = run_cli(
        "evaluate", "--workdir", trained["workdir"], "--data", gappy, capsys=capsys
    )
    assert code == 0, err
    assert f"note: {gappy}: interpolated 2 missing cells ('level' 2) of 60 time steps\n" in err
    metrics = json.loads((trained["workdir"] / "metrics-gappy.json").read_text())
    assert metrics["interpolated_cells"] == {"level": 2}

    code, out, err = run_cli(
        "predict", "--model", trained["version"], "--input", gappy, capsys=capsys
    )
    assert code == 0 and "interpolated 2 missing cells ('level' 2)" in err
    assert out.startswith("time,level")  # the forecast alone on stdout
    frame.loc[[30, 35, 40, 45, 50], "level"] = ""
    frame.to_csv(gappy, index=False)
    code, _, err = run_cli(
        "predict", "--model", trained["version"], "--input", gappy, capsys=capsys
    )
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "'level' 11.7% (7 of 60), more than 0.05 of a column; fill the gaps in the file" in err


# Steps a series through `stream` in a process that imports only tensorflow: the answer at
# each step against `serving_default` on the window that ends there.
STREAMING_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

model_dir, values = sys.argv[1], np.asarray(json.loads(sys.argv[2]), np.float32)
loaded = tf.saved_model.load(model_dir)
stream, serve = loaded.signatures["stream"], loaded.signatures["serving_default"]
state, worst, steps = values[None, :16], 0.0, 0
for step in range(16, len(values)):
    answer = stream(observation=tf.constant(values[None, step]), state=tf.constant(state))
    state = answer["state"].numpy()
    whole = serve(history=tf.constant(values[None, step - 15 : step + 1]))
    for name in ("forecast", "quantiles"):
        worst = max(worst, float(np.abs(answer[name].numpy() - whole[name].numpy()).max()))
    steps += 1
print(json.dumps({"worst": worst, "steps": steps, "state": state[0, :, 0].tolist()}))
"""


def test_stream_answers_as_serving_default_step_by_step(trained):
    values = sine_frame(40)["level"].to_numpy()[:, None]
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            STREAMING_SCRIPT,
            str(trained["version"]),
            json.dumps(values.tolist()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["steps"] == 24
    assert answer["worst"] < 1e-4, answer
    np.testing.assert_allclose(answer["state"], values[-16:, 0], rtol=1e-6)


def test_saved_model_cli_lists_the_documented_signatures(trained, saved_model_cli_signatures):
    outputs = {
        "forecast": "DT_FLOAT (-1, 4, 1)",
        "quantiles": "DT_FLOAT (-1, 4, 1, 3)",
        "quantile_levels": "DT_FLOAT (-1, 3)",
    }
    assert saved_model_cli_signatures(trained["version"]) == {
        "serving_default": {"inputs": {"history": "DT_FLOAT (-1, 16, 1)"}, "outputs": outputs},
        "stream": {
            "inputs": {"observation": "DT_FLOAT (-1, 1)", "state": "DT_FLOAT (-1, 16, 1)"},
            "outputs": {**outputs, "state": "DT_FLOAT (-1, 16, 1)"},
        },
    }
