"""Activity quality: the app's preset on `moving-digits` against the frame-averaging baseline.

For each seed s (default 0, 1, 2) one run in this process: clips drawn with `data.split_seed=s`
(each split from its own digit images; the three splits of seed s use clip seeds 3s, 3s+1,
3s+2), trained from scratch with `training.seed=s` through `apps.core.training.train`, its best
checkpoint (by validation accuracy) scored on the test clips by `APP.evaluation.evaluate`,
which also trains and scores the frame-averaging baseline (the same CNN, frame features
averaged over time, no recurrence) on the same clips. Per class: the test recall of both.

    python benchmarks/activity_quality.py --seeds 0,1,2 --results benchmarks/RESULTS-activity.md
    python benchmarks/activity_quality.py --seeds 0 --set training.epochs=1   # time one epoch
    python benchmarks/activity_quality.py --seeds 1 --output seed-1.json   # one seed a run,
    python benchmarks/activity_quality.py --combine seed-*.json --results ...   # then joined

Prints a markdown table, writes the figures as JSON (`--output`) and, with `--results FILE`,
replaces the quality section of that markdown file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import keras
from report import replace_section

from apps.activity.app import APP
from apps.core import config as config_lib
from apps.core import training
from apps.core.app import EvaluationOutputs

SECTION_BEGIN = "<!-- activity_quality:begin -->"
SECTION_END = "<!-- activity_quality:end -->"
# Pairs whose two actions are one clip played forwards and backwards: a frame average cannot
# tell them apart.
REVERSAL_PAIRS = (
    ("moving left", "moving right"),
    ("moving up", "moving down"),
    ("zooming in", "zooming out"),
    ("rotating clockwise", "rotating anticlockwise"),
)


def seed_config(preset: str, overrides: list[str], seed: int):
    config = APP.presets[preset]()
    config_lib.apply_overrides(config, overrides)
    config.data.split_seed = seed
    config.training.seed = seed
    return config


def validation_history(workdir: Path) -> list[float]:
    lines = (workdir / training.HISTORY_FILE).read_text().splitlines()
    header = lines[0].split(",")
    return [float(row.split(",")[header.index("val_accuracy")]) for row in lines[1:]]


def run_seed(config, workdir: Path) -> dict:
    """Trains the app on one seed's clips and scores it and the baseline on the test clips."""
    started = time.perf_counter()
    _, datasets = training.train(APP, config, workdir)
    train_seconds = time.perf_counter() - started
    best_model = keras.saving.load_model(workdir / training.MODEL_FILE)
    started = time.perf_counter()
    metrics = APP.evaluation.evaluate(best_model, config, datasets, EvaluationOutputs(workdir))
    evaluate_seconds = time.perf_counter() - started
    validation = validation_history(workdir)
    baseline = metrics["frame_averaging_baseline"]
    return {
        "seed": config.training.seed,
        "test_accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "recall": {name: value["recall"] for name, value in metrics["per_class"].items()},
        "validation_accuracy": max(validation),
        "validation_history": validation,
        "best_epoch": validation.index(max(validation)) + 1,
        "epochs_run": len(validation),
        "train_seconds": train_seconds,
        "baseline": {
            "test_accuracy": baseline["accuracy"],
            "macro_f1": baseline["macro_f1"],
            "recall": {name: value["recall"] for name, value in baseline["per_class"].items()},
        },
        "baseline_and_evaluate_seconds": evaluate_seconds,
        "split": datasets.summary["split"],
    }


def pair_accuracy(recall: dict[str, float], pair: tuple[str, str]) -> float:
    """Mean recall of a reversal pair (chance within the pair, given the pair, is 0.5)."""
    return (recall[pair[0]] + recall[pair[1]]) / 2


def markdown(results: dict) -> str:
    runs = results["per_seed"]
    names = list(runs[0]["recall"])
    seeds = " / ".join(str(run["seed"]) for run in runs)
    lines = [
        f"`moving-digits`, preset `{results['preset']}` (overrides: "
        f"{results['overrides'] or 'none'}), seeds {seeds} (data and training seed each; "
        f"clips train/validation/test {runs[0]['split']['train']}/"
        f"{runs[0]['split']['validation']}/{runs[0]['split']['test']}, 8 classes, chance "
        "0.125). The baseline is the same CNN with its frame features averaged over time, "
        "no recurrence, trained on the same clips (`evaluation.baseline_epochs`).",
        "",
        "| seed | app test acc | macro F1 | val acc (best epoch / run) | train s "
        "| baseline test acc | baseline + evaluate s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['seed']} | {run['test_accuracy']:.4f} | {run['macro_f1']:.4f} "
            f"| {run['validation_accuracy']:.4f} ({run['best_epoch']} / {run['epochs_run']}) "
            f"| {run['train_seconds']:.0f} | {run['baseline']['test_accuracy']:.4f} "
            f"| {run['baseline_and_evaluate_seconds']:.0f} |"
        )
    lines += [
        "",
        "Test recall per class, mean over the seeds (app / frame-averaging baseline):",
        "",
        "| class | app | baseline |",
        "|---|---|---|",
    ]
    for name in names:
        app = statistics.fmean(run["recall"][name] for run in runs)
        baseline = statistics.fmean(run["baseline"]["recall"][name] for run in runs)
        lines.append(f"| {name} | {app:.3f} | {baseline:.3f} |")
    summary = results["summary"]
    lines += [
        "",
        f"- app: mean test accuracy **{summary['app']['mean']:.4f}** (std "
        f"{summary['app']['std']:.4f} over seeds); baseline **{summary['baseline']['mean']:.4f}**",
        "- baseline's mean test recall over the two classes of each reversal pair (a clip and its "
        "reversal have the same frame average): "
        + ", ".join(
            f"{pair[0]} / {pair[1]} {value:.3f}" for pair, value in summary["baseline_pairs"]
        ),
        f"- mean training time per seed {summary['train_seconds']['mean']:.0f} s; wall time of "
        f"the whole run {results['wall_seconds'] / 60:.0f} min (2 shared CPU cores, other jobs "
        "running concurrently)",
    ]
    return "\n".join(lines)


def summarize(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def summary_of(runs: list[dict], preset: str, overrides: list[str], wall_seconds: float) -> dict:
    mean_recall = {
        name: statistics.fmean(run["baseline"]["recall"][name] for run in runs)
        for name in runs[0]["recall"]
    }
    return {
        "dataset": "moving-digits",
        "preset": preset,
        "overrides": overrides,
        "config": config_lib.to_dict(seed_config(preset, overrides, runs[0]["seed"])),
        "per_seed": runs,
        "summary": {
            "app": summarize([run["test_accuracy"] for run in runs]),
            "baseline": summarize([run["baseline"]["test_accuracy"] for run in runs]),
            "baseline_pairs": [(pair, pair_accuracy(mean_recall, pair)) for pair in REVERSAL_PAIRS],
            "train_seconds": summarize([run["train_seconds"] for run in runs]),
        },
        "wall_seconds": wall_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", type=Path, default=Path("benchmarks/activity_quality.json"))
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument(
        "--combine", type=Path, nargs="+", default=None,
        help="instead of running: the JSON outputs of earlier runs (one seed each, say), "
        "joined into one table",
    )  # fmt: skip
    arguments = parser.parse_args()
    if arguments.combine:
        parts = [json.loads(path.read_text()) for path in arguments.combine]
        results = summary_of(
            [run for part in parts for run in part["per_seed"]],
            parts[0]["preset"],
            parts[0]["overrides"],
            sum(part["wall_seconds"] for part in parts),
        )
    else:
        seeds = [int(seed) for seed in arguments.seeds.split(",")]
        started = time.perf_counter()
        runs = []
        with tempfile.TemporaryDirectory(prefix="activity-quality-") as scratch:
            for seed in seeds:
                config = seed_config(arguments.preset, arguments.overrides, seed)
                run = run_seed(config, Path(scratch) / f"seed-{seed}")
                runs.append(run)
                print(
                    f"seed {seed}: app {run['test_accuracy']:.4f} ({run['train_seconds']:.0f} "
                    f"s), baseline {run['baseline']['test_accuracy']:.4f}",
                    flush=True,
                )
                keras.backend.clear_session()
        results = summary_of(
            runs, arguments.preset, arguments.overrides, time.perf_counter() - started
        )
    arguments.output.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print(table)
    if arguments.results:
        replace_section(arguments.results, table, SECTION_BEGIN, SECTION_END)


if __name__ == "__main__":
    main()
