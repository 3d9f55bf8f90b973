"""The main job's closing summary: per app, the headline metric beside its strongest baseline,
where the run's plots, metrics and export are, and the command that trains the full preset.

    python scripts/demo_summary.py --runs runs sentiment=base forecasting=quick ...

Each APP=PRESET names a work dir `RUNS/APP` and the preset it was trained with; the headline
comes from its `metrics.json` (written by `evaluate`), the export from the main job's record.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

FULL_PRESET = "base"
EXPORT_RECORD = "demo-export.txt"


def headline_line(metrics: dict) -> str:
    """ "accuracy 0.801 against tfidf_logistic_regression 0.789 (higher is better): ahead"."""
    headline = metrics.get("headline")
    if not headline:
        return "no headline in metrics.json (evaluate it again to add one)"
    text = f"{headline['metric']} {headline['model']:.4g}"
    if headline["baseline"] is None:
        return f"{text} (no baseline: the run has no training split)"
    direction = "higher" if headline["higher_is_better"] else "lower"
    verdict = "ahead of it" if headline["beats"] else "NOT ahead of it"
    return (
        f"{text} against {headline['baseline']} {headline['baseline_value']:.4g} "
        f"({direction} is better): {verdict}"
    )


def app_summary(name: str, preset: str, runs: Path) -> list[str]:
    app = importlib.import_module(f"apps.{name}.app").APP
    workdir = runs / name
    kind = "the full preset" if preset == FULL_PRESET else "a quick preset"
    lines = [f"{name}: {app.command}, preset {preset} ({kind})"]
    metrics_file = workdir / "metrics.json"
    if metrics_file.is_file():
        lines.append(f"  {headline_line(json.loads(metrics_file.read_text()))}")
        lines.append(f"  metrics: {metrics_file}")
    else:
        lines.append(f"  not evaluated: no {metrics_file}")
    plots = sorted(str(path) for path in workdir.glob("*.png"))
    lines.append(f"  plots:   {', '.join(plots) or 'none'}")
    record = workdir / EXPORT_RECORD
    lines.append(f"  export:  {record.read_text().strip() if record.is_file() else 'none'}")
    if preset != FULL_PRESET and FULL_PRESET in app.presets:
        lines.append(
            f"  full:    {app.command} train --workdir {runs / name}-{FULL_PRESET} "
            f"--preset {FULL_PRESET}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the work dirs' folder")
    parser.add_argument("apps", nargs="+", metavar="APP=PRESET")
    args = parser.parse_args(argv)
    print("== summary ==")
    print("Quick presets, sized for minutes on 2 CPU cores; the full presets (base) are the")
    print("benchmarks' (README). `make demo` again reuses these runs; `make demo FRESH=1`")
    print("trains them anew.")
    for entry in args.apps:
        name, _, preset = entry.partition("=")
        print("\n".join(app_summary(name, preset, args.runs)))


if __name__ == "__main__":
    main()
