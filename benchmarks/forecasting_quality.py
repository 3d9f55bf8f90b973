"""Forecast quality: the app's model (mean of seeds) against linear peers on the same windows.

Peers: last value, seasonal naive, and the ridge chosen by rolling-origin validation among
lag counts, alphas, a square-root transform and differences (then refitted on train +
validation), as `evaluate` scores them.

    python benchmarks/forecasting_quality.py --preset base --seeds 1,2,3
    python benchmarks/forecasting_quality.py --preset weather --seeds 1,2,3

Prints a markdown table and writes the figures as JSON (`--output`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from apps.core import config as config_lib
from apps.core import training
from apps.core.app import EvaluationOutputs
from apps.forecasting import evaluation
from apps.forecasting.app import APP
from pipelines import windows


def linear_peers(config, datasets) -> dict[str, dict]:
    """Metrics of the baselines and of the validation-chosen ridge on the test windows."""
    series, splits, assets = datasets.series, datasets.splits, datasets.assets
    lookback, horizon = config.data.lookback, config.data.horizon
    targets = len(assets.target_columns)
    values = series.values.astype(np.float64)
    scale = np.asarray(assets.seasonal_scale)
    starts = windows.window_starts(splits["test"], lookback, horizon)
    test_histories, test_truth = windows.window_arrays(values, starts, lookback, horizon, targets)
    choice = assets.ridge_choice
    chosen = (
        f"ridge chosen on validation ({choice.lags} lags, alpha {choice.alpha:g}, "
        f"{choice.transform}, difference {choice.difference})"
    )
    results = {
        "last_value": evaluation.last_value_forecast(test_histories, horizon, targets),
        "seasonal_naive": evaluation.seasonal_naive_forecast(
            test_histories, horizon, targets, config.evaluation.season
        ),
        chosen: evaluation.choice_forecast(
            test_histories,
            np.asarray(assets.ridge_kernel),
            np.asarray(assets.ridge_bias),
            choice,
            horizon,
        ),
    }
    return {
        label: evaluation.point_metrics(forecast, test_truth, scale)
        for label, forecast in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args()

    config = APP.complete_config(
        config_lib.apply_overrides(APP.make_config(args.preset), args.overrides)
    )
    datasets = APP.data.load_data(config)
    print(f"data: {json.dumps(datasets.summary)}")
    peers = linear_peers(config, datasets)

    runs = []
    for seed in [int(seed) for seed in args.seeds.split(",")]:
        config.training.seed = seed
        with tempfile.TemporaryDirectory() as workdir:
            started = time.perf_counter()
            _, trained_datasets = training.train(APP, config, Path(workdir))
            seconds = time.perf_counter() - started
            # The published checkpoint, as `evaluate` and `export` read it (not the last epoch).
            _, model, _ = training.load_trained(APP, Path(workdir))
            metrics = APP.evaluation.evaluate(
                model, config, trained_datasets, EvaluationOutputs(Path(workdir))
            )
            epochs = len((Path(workdir) / training.HISTORY_FILE).read_text().splitlines()) - 1
        runs.append(
            {"seed": seed, "seconds": round(seconds, 1), "epochs": epochs, **metrics["model"]}
        )
        print(
            f"seed {seed}: MAE {metrics['model']['mae']:.2f} in {seconds:.0f} s, {epochs} epochs",
            flush=True,
        )

    model_mae = float(np.mean([run["mae"] for run in runs]))
    model_rmse = float(np.mean([run["rmse"] for run in runs]))
    model_mase = float(np.mean([run["mase"] for run in runs]))
    spread = float(np.std([run["mae"] for run in runs]))
    print(
        f"\npreset {args.preset} {' '.join(args.overrides)}; test windows "
        f"{datasets.summary['test_windows']}\n"
    )
    print("| forecaster | MAE | RMSE | MASE |\n| --- | --- | --- | --- |")
    print(
        f"| app model, mean of {len(runs)} seeds (std {spread:.2f}) | {model_mae:.2f} | "
        f"{model_rmse:.2f} | {model_mase:.3f} |"
    )
    for label, metrics in peers.items():
        print(f"| {label} | {metrics['mae']:.2f} | {metrics['rmse']:.2f} | {metrics['mase']:.3f} |")
    if args.output:
        Path(args.output).write_text(
            json.dumps(
                {
                    "preset": args.preset,
                    "overrides": args.overrides,
                    "runs": runs,
                    "model_mae_mean": model_mae,
                    "peers": peers,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
