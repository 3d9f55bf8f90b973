"""The main job (`make demo`, scripts/main_job.sh) run with stand-in app commands: it ends with
a summary, a second run reuses every finished step and says so, and FRESH=1 trains anew."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("rnn-sentiment", "rnn-forecast", "rnn-translate", "rnn-caption", "rnn-activity")
APPS = ("sentiment", "forecasting", "translation", "captioning", "activity")

# Logs its command line, then writes what the real subcommand leaves behind.
STAND_IN = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    set -eu
    name=$(basename "$0")
    echo "$name $*" >> "$CALLS"
    command=$1
    shift
    while [[ $# -gt 0 ]]; do
      case $1 in
        --workdir) workdir=$2; shift ;;
        --output-dir) output_dir=$2; shift ;;
      esac
      shift
    done
    case $command in
      train)
        mkdir -p "$workdir"
        echo weights > "$workdir/model.keras"
        echo "{}" > "$workdir/model.json"
        echo png > "$workdir/training-curves.png"
        rm -rf "$workdir/backup" ;;
      evaluate)
        echo '{"headline": {"metric": "mae", "model": 17.5, "baseline": "ridge",
          "baseline_value": 18.25, "higher_is_better": false, "beats": true},
          "samples": []}' > "$workdir/metrics.json" ;;
      export)
        version=$EXPORTS/$name/$(( $(ls "$EXPORTS/$name" 2>/dev/null | wc -l) + 1 ))
        mkdir -p "$version"
        echo "some other line"
        echo "$version" ;;
      clips)
        mkdir -p "$output_dir"
        echo gif > "$output_dir/clip.gif" ;;
    esac
    """
)


@pytest.fixture
def stand_ins(tmp_path):
    """A BIN folder of stand-in app commands and a `python` that runs this suite's Python."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in COMMANDS:
        path = bin_dir / command
        path.write_text(STAND_IN)
        path.chmod(0o755)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    environment = {
        **os.environ,
        "BIN": str(bin_dir),
        "RUNS": str(tmp_path / "runs"),
        "CALLS": str(tmp_path / "calls.txt"),
        "EXPORTS": str(tmp_path / "saved_models"),
        "PYTHONPATH": str(ROOT),
    }
    return tmp_path, environment


def main_job(environment, **extra) -> tuple[str, list[str]]:
    calls = Path(environment["CALLS"])
    calls.write_text("")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "main_job.sh")],
        env={**environment, **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, calls.read_text().splitlines()


def steps(calls: list[str]) -> list[str]:
    return [call.split()[1] for call in calls if call.split()[1] in ("train", "evaluate", "export")]


def test_first_run_does_every_step_and_ends_with_the_summary(stand_ins):
    tmp_path, environment = stand_ins
    out, calls = main_job(environment)
    assert steps(calls) == ["train", "evaluate", "export"] * 5
    summary = out[out.index("== summary ==") :]
    assert "Quick presets" in summary and "make demo FRESH=1" in summary
    runs = tmp_path / "runs"
    for app, command in zip(APPS, COMMANDS, strict=True):
        assert f"{app}: {command}, preset" in summary
        assert f"metrics: {runs / app / 'metrics.json'}" in summary
        assert f"plots:   {runs / app / 'training-curves.png'}" in summary
        assert f"export:  {tmp_path / 'saved_models' / command / '1'}" in summary
    assert "mae 17.5 against ridge 18.25 (lower is better): ahead of it" in summary
    assert "preset base (the full preset)" in summary  # sentiment's main job runs base
    assert (
        f"full:    rnn-forecast train --workdir {runs / 'forecasting'}-base --preset base"
        in summary
    )
    predict = [call for call in calls if call.startswith("rnn-translate predict")]
    assert predict == [
        f"rnn-translate predict --model {tmp_path / 'saved_models' / 'rnn-translate' / '1'} "
        "Das ist ein gutes Buch. Ich habe keine Zeit. Wo ist der Bahnhof?"
    ]


def test_a_second_run_reuses_finished_steps_and_says_so(stand_ins):
    tmp_path, environment = stand_ins
    main_job(environment)
    out, calls = main_job(environment)
    assert steps(calls) == []
    for app in APPS:
        workdir = tmp_path / "runs" / app
        assert f"reusing the finished run in {workdir} (make demo FRESH=1" in out
        assert f"reusing its metrics in {workdir / 'metrics.json'}" in out
    assert [call.split()[0] for call in calls if " predict " in call] == list(COMMANDS)


def test_an_interrupted_run_resumes_and_fresh_moves_the_old_runs_aside(stand_ins):
    tmp_path, environment = stand_ins
    main_job(environment)
    (tmp_path / "runs" / "translation" / "backup").mkdir()  # killed while training
    _, calls = main_job(environment)
    assert steps(calls) == ["train", "evaluate", "export"]
    assert [call.split()[0] for call in calls if " train " in call] == ["rnn-translate"]

    out, calls = main_job(environment, FRESH="1")
    assert steps(calls) == ["train", "evaluate", "export"] * 5
    assert out.count("FRESH=1: moved the earlier run to") == 5
    assert len(list((tmp_path / "runs").glob("sentiment.old-*"))) == 1
    metrics = json.loads((tmp_path / "runs" / "sentiment" / "metrics.json").read_text())
    assert metrics["headline"]["beats"]
