"""The shared CLI on a minimal app (tests/support/toy_app): help, overrides, user errors, and
train -> evaluate -> predict through the core alone."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import toy_app
from command_lines import command_line

from apps.core import cli, training
from apps.core import config as config_lib
from apps.sentiment.app import APP as SENTIMENT
from apps.translation import main as translation_main
from apps.translation.app import APP as TRANSLATION


def run(arguments, capsys):
    status = toy_app.main(arguments)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_help_shows_the_package_docstring_and_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        toy_app.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "rnn-toy: sums three numbers" in text
    for command in ("train", "tune", "evaluate", "export", "predict"):
        assert command in text


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("model.units=3", "unknown config key 'model.units'; valid keys: data.examples"),
        ("training.epochs=many", "training.epochs: expected int, got 'many'"),
        ("training.clip_norm", "--set expects key=value, got 'training.clip_norm'"),
        ("model.activation=tanh", "model.activation: expected one of linear, relu; got 'tanh'"),
    ],
)
def test_a_bad_override_is_one_error_line(setting, message, tmp_path, capsys):
    status, out, err = run(command_line("train", setting, workdir=tmp_path / "run"), capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "run").exists()


def test_a_config_file_with_an_unknown_key_names_it(tmp_path, capsys):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"model": {"depth": 2}}))
    status, _, err = run(
        command_line("train", workdir=tmp_path / "run", config=config_file), capsys
    )
    assert status == 2 and "unknown config key 'model.depth'" in err


def test_predict_and_evaluate_refuse_what_is_not_a_model(tmp_path, capsys):
    status, _, err = run(command_line("predict 1 2 3", model=tmp_path / "missing"), capsys)
    assert status == 2 and "no such file or folder" in err
    status, _, err = run(command_line("evaluate", workdir=tmp_path), capsys)
    assert status == 2 and "is not a work dir" in err


def test_train_evaluate_predict_through_the_core(tmp_path, capsys):
    workdir = tmp_path / "run"
    arguments = command_line("train", "training.epochs=30", workdir=workdir)
    assert run(arguments, capsys)[0] == 0
    config = json.loads((workdir / "config.json").read_text())
    assert config["training"]["epochs"] == 30 and config["data"]["source"] == "sums"

    status, out, _ = run(command_line("evaluate", workdir=workdir), capsys)
    assert status == 0
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["data"] == "sums" and metrics["examples"] == 256
    assert metrics["mae"] < 0.05  # a linear layer learns the sum

    status, out, _ = run(command_line("predict 1 2 3 0.5 -0.5 4", model=workdir), capsys)
    assert status == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["x"] for row in rows] == [[1.0, 2.0, 3.0], [0.5, -0.5, 4.0]]
    assert rows[0]["sum"] == pytest.approx(6.0, abs=0.2)
    assert rows[1]["sum"] == pytest.approx(4.0, abs=0.2)


def test_tensorflow_native_log_lines_are_hidden_and_the_rest_passes_live(capfd):
    with cli.native_logs_hidden():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are ...\n")
        os.write(2, b"I0000 00:00:1796170408.718291   21285 cudart_stub.cc:31] Could not find\n")
        os.write(2, b"W0000 00:00:1796170408.7 9 cpu_feature_guard.cc:227] This TensorFlow\n")
        os.write(
            2, b"E0000 00:00:1796171188.15 28894 cuda_platform.cc:52] failed call to cuInit: x\n"
        )
        os.write(2, b"warning: skipped 2 files\n 50%|#####  \r100%|##########\n")
    assert capfd.readouterr().err == "warning: skipped 2 files\n 50%|#####  \r100%|##########\n"


def test_config_mistakes_answer_without_loading_tensorflow(tmp_path):
    code = (
        "import sys; from apps.sentiment import main\n"
        "status = main(sys.argv[1:]); print(status, 'tensorflow' in sys.modules)"
    )
    arguments = command_line("train", "model.cell=bogus", workdir=tmp_path / "run")
    completed = subprocess.run(
        [sys.executable, "-c", code, *arguments], capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.split() == ["2", "False"]
    assert completed.stderr == "error: model.cell: expected one of gru, lstm; got 'bogus'\n"


def test_a_finished_run_is_refused_without_loading_tensorflow(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "model.keras").write_bytes(b"")
    record = {"finished": True, "epochs_run": 4, "epoch": 2, "stop": "early_stopping"}
    (workdir / "model.json").write_text(json.dumps(record))
    config_lib.save(SENTIMENT.presets["base"](), workdir / "config.json")
    code = (
        "import sys; from apps.sentiment import main\n"
        "status = main(sys.argv[1:]); print(status, 'tensorflow' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, *command_line("train", workdir=workdir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.stdout.split() == ["2", "False"]
    assert completed.stderr.startswith(
        f"error: {workdir} holds a finished run (stopped early at epoch 4, best epoch 2)"
    )


def test_settings_chosen_after_training_are_not_another_config(tmp_path, capsys):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "model.keras").write_bytes(b"")
    record = {"finished": True, "epochs_run": 5, "epoch": 5, "stop": "epochs"}
    (workdir / "model.json").write_text(json.dumps(record))
    trained = TRANSLATION.presets["small"]()
    trained.decoding.beam_width, trained.decoding.serving_beam_width = 2, 2
    trained.decoding.chosen = "on 150 validation pairs, ..."
    config_lib.save(trained, workdir / "config.json")
    rerun = command_line("train --preset small", workdir=workdir)
    assert translation_main(rerun) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {workdir} holds a finished run (ran all 5 epochs, best epoch 5)")
    assert translation_main([*rerun, "--set", "training.epochs=6"]) == 2
    err = capsys.readouterr().err
    assert "finished run with another config (training.epochs 5 -> 6)" in err
    assert "decoding" not in err


def test_an_empty_input_file_is_refused(tmp_path, capsys):
    empty = tmp_path / "inputs.txt"
    empty.write_text("\n  \n")
    status, _, err = run(command_line("predict", model=tmp_path, input=empty), capsys)
    assert status == 2 and err == f"error: --input {empty}: the file is empty; nothing to predict\n"


@pytest.mark.parametrize("width", ["0", "-3", "two"])
def test_a_beam_width_below_one_is_refused(width, tmp_path, capsys):
    from apps.translation import main

    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--workdir", str(tmp_path), "--beam-width", width, "Hallo"])
    assert exit_info.value.code == 2
    assert "argument --beam-width:" in capsys.readouterr().err


def history_epochs(workdir):
    with (workdir / "history.csv").open() as handle:
        return [(int(row["epoch"]), float(row["val_loss"])) for row in csv.DictReader(handle)]


class InterruptAfter(keras.callbacks.Callback):
    """Stops training as a kill would, once epoch `epoch` (from 1) and its backup are written."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt


# The toy's loss stops improving after epoch 3 with these settings: patience 2 stops it at 5.
EARLY_STOPPING = ("training.epochs=30", "training.early_stopping_patience=2")


def test_a_resumed_run_stops_where_the_uninterrupted_one_stops(tmp_path, capsys, monkeypatch):
    reference = tmp_path / "reference"
    status, out, _ = run(command_line("train", *EARLY_STOPPING, workdir=reference), capsys)
    assert status == 0
    assert "stopped early at epoch 5, best epoch 3" in out
    expected = history_epochs(reference)
    assert [epoch for epoch, _ in expected] == [1, 2, 3, 4, 5]  # counted from 1, as printed

    workdir = tmp_path / "resumed"
    plain_callbacks = training.callbacks
    monkeypatch.setattr(
        training, "callbacks", lambda *arguments: [*plain_callbacks(*arguments), InterruptAfter(4)]
    )
    assert run(command_line("train", *EARLY_STOPPING, workdir=workdir), capsys)[0] == 130
    assert (workdir / "backup").is_dir() and "finished" not in json.loads(
        (workdir / "model.json").read_text()
    )
    monkeypatch.setattr(training, "callbacks", plain_callbacks)
    status, out, _ = run(command_line("train", *EARLY_STOPPING, workdir=workdir), capsys)
    assert status == 0
    resumed = history_epochs(workdir)
    assert [epoch for epoch, _ in resumed] == [1, 2, 3, 4, 5]
    assert "resuming at epoch 5 of 30: 4 done, best epoch 3" in out
    assert "1 of patience 2 epochs without improvement" in out
    assert "stopped early at epoch 5, best epoch 3" in out
    np.testing.assert_allclose([loss for _, loss in resumed], [loss for _, loss in expected])
    record = json.loads((workdir / "model.json").read_text())
    assert record == json.loads((reference / "model.json").read_text())
    assert record["finished"] and record["epochs_run"] == 5 and record["stop"] == "early_stopping"
    assert not (workdir / "backup").exists()


def test_a_finished_run_is_kept_unless_overwrite_moves_it_aside(tmp_path, capsys):
    workdir = tmp_path / "run"
    status, out, _ = run(command_line("train", workdir=workdir), capsys)
    assert status == 0 and "ran all 3 epochs, best epoch 3" in out
    model_bytes = (workdir / "model.keras").read_bytes()

    status, _, err = run(command_line("train", workdir=workdir), capsys)
    assert status == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {workdir} holds a finished run (ran all 3 epochs, best epoch 3)")
    assert "--overwrite" in err

    status, _, err = run(
        command_line("train", "training.learning_rate=0.01", workdir=workdir), capsys
    )
    assert status == 2 and err.count("\n") == 1
    assert "finished run with another config (training.learning_rate 0.05 -> 0.01)" in err
    assert "--overwrite" in err
    assert (workdir / "model.keras").read_bytes() == model_bytes

    arguments = command_line("train --overwrite", "training.learning_rate=0.01", workdir=workdir)
    status, out, _ = run(arguments, capsys)
    assert status == 0
    (aside,) = tmp_path.glob("run.old-*")
    assert f"moved the earlier run in {workdir} to {aside}" in out
    assert (aside / "model.keras").read_bytes() == model_bytes
    assert json.loads((aside / "config.json").read_text())["training"]["learning_rate"] == 0.05
    assert json.loads((workdir / "config.json").read_text())["training"]["learning_rate"] == 0.01


def test_an_interrupted_run_is_not_resumed_under_another_config(tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "run"
    plain_callbacks = training.callbacks
    monkeypatch.setattr(
        training, "callbacks", lambda *arguments: [*plain_callbacks(*arguments), InterruptAfter(1)]
    )
    assert run(command_line("train", workdir=workdir), capsys)[0] == 130
    monkeypatch.setattr(training, "callbacks", plain_callbacks)
    arguments = command_line("train", "model.activation=relu", "training.epochs=4", workdir=workdir)
    status, _, err = run(arguments, capsys)
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "interrupted run with another config (model.activation" in err
    assert '"linear" -> "relu"; training.epochs 3 -> 4)' in err and "--overwrite" in err
    status, out, _ = run(command_line("train", workdir=workdir), capsys)
    assert status == 0 and "resuming at epoch 2 of 3: 1 done" in out


def test_evaluate_on_a_file_writes_beside_the_held_out_results(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert run(command_line("train", workdir=workdir), capsys)[0] == 0
    assert run(command_line("evaluate", workdir=workdir), capsys)[0] == 0
    held_out = (workdir / "metrics.json").read_text(), (workdir / "errors.csv").read_text()
    assert json.loads(held_out[0])["examples"] == 256

    other = tmp_path / "other sums.csv"  # the toy draws its own numbers; the name matters
    arguments = command_line("evaluate", "data.examples=64", workdir=workdir, data=other)
    status, out, _ = run(arguments, capsys)
    assert status == 0
    metrics = json.loads((workdir / "metrics-other-sums.json").read_text())
    assert metrics["data"] == str(other) and metrics["examples"] == 64
    assert len((workdir / "errors-other-sums.csv").read_text().splitlines()) == 64
    assert f"wrote {workdir / 'metrics-other-sums.json'}\n" in out
    assert (
        (workdir / "metrics.json").read_text(),
        (workdir / "errors.csv").read_text(),
    ) == held_out
    status, out, _ = run(arguments, capsys)
    assert status == 0 and "metrics-other-sums.json (replacing the earlier one)" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--data", "other.csv", "--set", "model.activation=relu"],
            "evaluate --set model.activation: only data fields (data.*) can change after training",
        ),
        (
            ["--data", "other.csv", "--set", "data.rows=3"],
            "unknown config key 'data.rows'; valid keys: data.examples",
        ),
        (["--set", "data.examples=64"], "evaluate --set changes how --data FILE is read"),
    ],
)
def test_evaluate_settings_are_data_fields_for_a_file(arguments, message, tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    status, _, err = run(["evaluate", "--workdir", str(tmp_path), *arguments], capsys)
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: ") and message in err
