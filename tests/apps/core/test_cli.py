"""The shared CLI on a minimal app (tests/support/toy_app): help, overrides, user errors, and
train -> evaluate -> predict through the core alone."""

from __future__ import annotations

import json

import pytest
import toy_app
from command_lines import command_line


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
