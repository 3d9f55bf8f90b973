"""Bayesian search on sentiment from the `base` space against the `base` preset itself.

Runs, as subprocesses of the CLI, in a scratch folder:
  1. `rnn-sentiment train --preset base --set training.epochs=E` (the reference point), and
  2. `rnn-sentiment tune --preset base --tuner bayesian --max-trials N --epochs E`,
stopped when the wall-clock budget runs out (the finished trials are read from the KerasTuner
project; a rerun of the same tune command would resume the search).
Both score the best epoch's validation accuracy on the same split (split_seed 0). Reports the
best objective, trials finished, wall time and the process memory after each trial.

    python benchmarks/tuning_sentiment.py --epochs 2 --max-trials 20 --budget-minutes 25
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from apps.core import training

REPOSITORY = Path(__file__).resolve().parents[1]


def run(command: list[str], log: Path, deadline: float) -> tuple[float, bool]:
    """Runs `command` until it ends or `deadline` (monotonic); returns seconds, finished."""
    started = time.monotonic()
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPOSITORY)
        try:
            process.wait(timeout=max(deadline - started, 1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return time.monotonic() - started, False
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed; see {log}")
    return time.monotonic() - started, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-trials", type=int, default=20)
    parser.add_argument("--budget-minutes", type=float, default=25)
    parser.add_argument("--root", default="runs/tuning-benchmark")
    parser.add_argument("--output", default="benchmarks/results/tuning_sentiment.json")
    args = parser.parse_args()
    root = REPOSITORY / args.root
    root.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget_minutes * 60
    cli = [sys.executable, "-m", "apps.sentiment"]
    epochs = ["--set", f"training.epochs={args.epochs}"]

    base_seconds, _ = run(
        [*cli, "train", "--workdir", str(root / "base"), "--preset", "base", *epochs],
        root / "base.log",
        deadline,
    )
    base_best = training.best_logged_value(root / "base" / "history.csv", "val_accuracy", "max")

    tune_seconds, finished = run(
        [
            *cli,
            "tune",
            "--workdir",
            str(root / "search"),
            "--preset",
            "base",
            "--tuner",
            "bayesian",
            "--max-trials",
            str(args.max_trials),
            "--epochs",
            str(args.epochs),
        ],
        root / "tune.log",
        deadline,
    )
    trials = [
        json.loads(path.read_text())
        for path in sorted((root / "search" / "trials").glob("trial_*/trial.json"))
    ]
    completed = sorted(
        (trial for trial in trials if trial["status"] == "COMPLETED"),
        key=lambda trial: trial["score"],
        reverse=True,
    )
    log = (root / "tune.log").read_text()
    figures = {
        "epochs_per_trial": args.epochs,
        "base_preset_best_val_accuracy": base_best,
        "base_preset_seconds": round(base_seconds),
        "search_finished": finished,
        "trials_completed": len(completed),
        "search_seconds": round(tune_seconds),
        "best_val_accuracy": completed[0]["score"] if completed else None,
        "best_values": completed[0]["hyperparameters"]["values"] if completed else None,
        "trial_seconds": [
            float(value) for value in re.findall(r"trial finished in ([\d.]+) s", log)
        ],
        "memory_megabytes_after_each_trial": [
            int(value) for value in re.findall(r"process \d+ memory (\d+) MB", log)
        ],
        "ranking": [
            {
                "trial": trial["trial_id"],
                "val_accuracy": trial["score"],
                **trial["hyperparameters"]["values"],
            }
            for trial in completed
        ],
    }
    output = REPOSITORY / args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps({key: value for key, value in figures.items() if key != "ranking"}, indent=2))


if __name__ == "__main__":
    main()
