"""The sentiment app end to end on the tiny preset, with a small task it must learn."""

from __future__ import annotations

import base64
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import fake_serving
import keras
import numpy as np
import pytest
from command_lines import command_line

from apps import client
from apps.core import training
from apps.sentiment import main
from apps.sentiment.app import APP
from layers.cudnn import cudnn_problems

# The synthetic reviews' column names.
COLUMN_SETTINGS = ("data.text_column=review", "data.label_column=stars")


def run_cli(*args: str, capsys=None) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, reviews_csv):
    """A tiny wide-and-deep model trained on 400 synthetic reviews, evaluated, exported twice."""
    root = tmp_path_factory.mktemp("sentiment")
    data = reviews_csv(root / "reviews.csv", 400)
    workdir = root / "run"
    settings = ("training.epochs=8", "model.ngram_bag=true", *COLUMN_SETTINGS)
    assert main(command_line("train --preset tiny", *settings, workdir=workdir, data=data)) == 0
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    export_root = root / "saved_models"
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    return {
        "root": root,
        "data": data,
        "workdir": workdir,
        "export_root": export_root,
    }


def test_training_writes_the_work_dir_and_learns(trained):
    workdir = trained["workdir"]
    for name in [
        "config.json",
        "model.keras",
        "history.csv",
        "training-curves.png",
        "metrics.json",
        "confusion-matrix.png",
        "assets/text_classification.json",
        "assets/ngram_bag.npz",
    ]:
        assert (workdir / name).is_file(), name
    assert any((workdir / "logs").rglob("events.out.tfevents*"))
    assert not (workdir / "backup").exists()
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["labels"] == ["neg", "pos"]
    assert metrics["split"] == {"train": 320, "validation": 40, "test": 40}
    assert metrics["accuracy"] >= 0.9, metrics
    assert np.sum(metrics["confusion_matrix"]) == 40
    config = json.loads((workdir / "config.json").read_text())
    assert config["data"]["text_column"] == "review" and config["training"]["epochs"] == 8


def test_the_fitted_ngram_logistic_regression_stays_frozen_in_training(trained):
    model = keras.saving.load_model(trained["workdir"] / "model.keras")
    bag = model.get_layer("ngram_bag")
    assert not bag.trainable
    with np.load(trained["workdir"] / "assets" / "ngram_bag.npz") as fitted:
        for weight, array in zip(
            bag.get_weights(), (fitted[name] for name in fitted.files), strict=True
        ):
            np.testing.assert_array_equal(weight, array)
    assert np.abs(bag.get_weights()[0]).max() > 0.1  # fitted, not the zero start


def test_export_layout_for_tf_serving(trained):
    root = trained["export_root"]
    assert sorted(path.name for path in (root / "sentiment").iterdir()) == ["1", "2"]
    version = root / "sentiment" / "2"
    assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
    assert (version / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0
    assert 'name: "sentiment"' in (root / "models.config").read_text()
    assert "max_batch_size" in (root / "batching.config").read_text()


def test_fresh_process_answers_a_rest_request_including_bad_text(trained, fresh_process_client):
    instances = [
        "a wonderful and superb film",
        "the plot was dull and tedious",
        "",
        "    ",
        "great " * 20000,
        {"b64": base64.b64encode(b"awful \xff\xfe bytes").decode()},
    ]
    answer = fresh_process_client(
        trained["export_root"] / "sentiment" / "2", {"instances": instances}
    )
    assert answer["project_modules_loaded"] == []
    label, probabilities = answer["outputs"]["label"], answer["outputs"]["probabilities"]
    assert label["dtype"] == "string" and label["shape"] == [6]
    assert probabilities["dtype"] == "float32" and probabilities["shape"] == [6, 2]
    np.testing.assert_allclose(np.sum(probabilities["value"], axis=1), 1.0, rtol=1e-5)
    assert label["value"][:2] == ["pos", "neg"]
    assert label["value"][4] == "pos" and label["value"][5] == "neg"


def test_predict_from_work_dir_and_export_agree(trained, capsys, tmp_path):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a delightful story\nclumsy and boring acting\n")
    answers = []
    for model in [trained["workdir"], trained["export_root"] / "sentiment"]:
        code, out, _ = run_cli(
            "predict", "--model", model, "--input", inputs, "brilliant", capsys=capsys
        )
        assert code == 0
        answers.append([json.loads(line) for line in out.splitlines()])
    assert [row["label"] for row in answers[0]] == ["pos", "pos", "neg"]
    assert [row["text"] for row in answers[0]] == [
        "brilliant",
        "a delightful story",
        "clumsy and boring acting",
    ]
    for from_workdir, from_export in zip(*answers, strict=True):
        np.testing.assert_allclose(
            from_workdir["probabilities"], from_export["probabilities"], atol=1e-5
        )


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_the_client_asks_a_server_and_answers_as_predict_does(trained, capsys, protocol):
    export = trained["export_root"] / "sentiment" / "2"
    code, expected, _ = run_cli("predict", "--model", export, "brilliant", "dull", capsys=capsys)
    assert code == 0
    with fake_serving.serving(export, "sentiment", protocol) as server:
        arguments = ["sentiment", "brilliant", "dull", "--server", server, "--protocol", protocol]
        assert client.main(arguments) == 0
        answered = capsys.readouterr().out
        assert client.main([*arguments, "--signature", "beam"]) == 2
        assert "--signature beam: the model has serving_default" in capsys.readouterr().err
    for row, expected_row in zip(answered.splitlines(), expected.splitlines(), strict=True):
        row, expected_row = json.loads(row), json.loads(expected_row)
        assert row["label"] == expected_row["label"] and row["text"] == expected_row["text"]
        np.testing.assert_allclose(row["probabilities"], expected_row["probabilities"], atol=1e-6)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_the_client_says_when_no_server_answers(protocol, capsys):
    with socket.socket() as probe:  # a free port that nothing listens on
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    arguments = ["sentiment", "fine", "--server", f"localhost:{port}", "--protocol", protocol]
    assert client.main([*arguments, "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    api = {"rest": "REST", "grpc": "gRPC"}[protocol]
    assert err.startswith(f"error: cannot reach TF Serving's {api} API at localhost:{port}")
    assert err.count("\n") == 1


def test_evaluate_on_a_user_file_and_unknown_labels(trained, capsys, tmp_path):
    code, out, _ = run_cli(
        "evaluate", "--workdir", trained["workdir"], "--data", trained["data"], capsys=capsys
    )
    assert code == 0 and "accuracy" in out
    # Beside the held-out results, not over them.
    metrics = json.loads((trained["workdir"] / "metrics-reviews.json").read_text())
    assert metrics["split"]["test"] == 400
    assert (trained["workdir"] / "confusion-matrix-reviews.png").is_file()
    assert json.loads((trained["workdir"] / "metrics.json").read_text())["split"]["test"] == 40
    # Other column names, read with evaluate's --set.
    renamed = tmp_path / "renamed.csv"
    with trained["data"].open() as source, renamed.open("w", newline="") as target:
        rows = list(csv.DictReader(source))
        writer = csv.writer(target)
        writer.writerow(["text", "label"])
        writer.writerows([row["review"], row["stars"]] for row in rows[:50])
    settings = ("data.text_column=text", "data.label_column=label")
    code, _, err = run_cli(
        *command_line("evaluate", *settings, workdir=trained["workdir"], data=renamed),
        capsys=capsys,
    )
    assert code == 0, err
    renamed_metrics = json.loads((trained["workdir"] / "metrics-renamed.json").read_text())
    assert renamed_metrics["split"]["test"] == 50
    bad = tmp_path / "bad.csv"
    bad.write_text("review,stars\ngreat film,pos\nodd film,meh\n")
    code, _, err = run_cli(
        "evaluate", "--workdir", trained["workdir"], "--data", bad, capsys=capsys
    )
    assert code == 2 and "meh" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("make_file", "args", "expected"),
    [
        (None, ["--data", "no/such/file.csv"], "no/such/file.csv"),
        (None, ["--data", "imaginary"], "unknown --data 'imaginary'"),
        ("text,rating\nfine,1\n", [], "columns found: text, rating"),
        ("text,label\nfine,\nok,1\n", [], "empty label"),
        (None, ["--set", "model.colour=blue"], "unknown config key 'model.colour'"),
        (None, ["--set", "model.units=lots"], "model.units: expected int"),
    ],
)
def test_train_user_errors_are_one_line(tmp_path, capsys, make_file, args, expected):
    data_args = []
    if make_file is not None:
        path = tmp_path / "data.csv"
        path.write_text(make_file)
        data_args = ["--data", str(path)]
    code, _, err = run_cli(
        "train", "--workdir", tmp_path / "run", "--preset", "tiny", *data_args, *args, capsys=capsys
    )
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert expected.lower() in err.lower(), err


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["export"], ["predict"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rnn-sentiment" in capsys.readouterr().out


def test_a_killed_run_resumes_where_it_stopped(tmp_path, reviews_csv):
    """kill -9 during training, rerun the same command: finished epochs are not repeated."""
    data = reviews_csv(tmp_path / "reviews.csv", 3000)
    workdir = tmp_path / "run"
    settings = ("training.epochs=12", "training.early_stopping_patience=12", *COLUMN_SETTINGS)
    command = [
        sys.executable,
        "-m",
        "apps.sentiment",
        *command_line("train --preset tiny", *settings, workdir=workdir, data=data),
    ]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
        start_new_session=True,
    )
    history = workdir / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (workdir / "backup").is_dir()
    epochs_before = [int(row["epoch"]) for row in csv.DictReader(history.open())]
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
        timeout=300,
    )
    epochs = [int(row["epoch"]) for row in csv.DictReader(history.open())]
    # Epochs count from 1; a kill before an epoch's backup repeats that epoch.
    resumed_from = epochs[len(epochs_before)]
    assert 2 <= len(epochs_before) <= resumed_from <= len(epochs_before) + 1, epochs
    assert sorted(set(epochs)) == list(range(1, 13)) and len(epochs) <= 13, epochs
    assert not (workdir / "backup").exists()
    assert (workdir / "model.keras").is_file() and APP.name == "sentiment"


def test_every_recurrent_layer_can_use_cudnn_on_a_gpu(trained):
    _, model, _ = training.load_trained(APP, trained["workdir"])
    assert cudnn_problems(model) == {}


def test_malformed_requests_are_refused_cleanly_in_one_process(
    trained, bad_requests_in_fresh_process
):
    export = trained["export_root"] / "sentiment" / "2"
    result = bad_requests_in_fresh_process(export)
    assert result["outcomes"]["empty batch"] == "answered", result
    assert result["outcomes"]["256 rows"] == "answered", result
    assert set(result["good_rows"].values()) == {3}, result


def test_saved_model_cli_lists_the_documented_signatures(trained, saved_model_cli_signatures):
    assert saved_model_cli_signatures(trained["export_root"] / "sentiment" / "2") == {
        "serving_default": {
            "inputs": {"text": "DT_STRING (-1)"},
            "outputs": {"label": "DT_STRING (-1)", "probabilities": "DT_FLOAT (-1, 2)"},
        }
    }
