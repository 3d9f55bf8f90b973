"""Forecast quality: the app's model (mean of seeds) against linear peers on the same windows.

Peers, fitted with numpy on the training windows: last value, seasonal naive, ridge on the
whole lookback (`evaluation.ridge_alpha`), and ridge chosen on the validation windows among
lag counts, alphas and a square-root transform (then refitted on train + validation).

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

    def arrays(split, length=lookback):
        starts = windows.window_starts(split, length, horizon)
        histories, futures = windows.window_arrays(values, starts, length, horizon, targets)
        return histories, futures

    test_histories, test_truth = arrays(splits["test"])
    results = {
        "last_value": evaluation.last_value_forecast(test_histories, horizon, targets),
        "seasonal_naive": evaluation.seasonal_naive_forecast(
            test_histories, horizon, targets, config.evaluation.season
        ),
    }
    train_histories, train_futures = arrays(splits["train"])
    weights, bias = evaluation.fit_ridge(
        train_histories, train_futures, config.evaluation.ridge_alpha
    )
    results[f"ridge_{lookback}_lags_alpha_{config.evaluation.ridge_alpha:g}"] = (
        evaluation.ridge_forecast(test_histories, weights, bias, horizon)
    )

    lags, alpha, transform = evaluation.choose_ridge(
        (train_histories, train_futures), arrays(splits["validation"])
    )
    combined = windows.Split(0, splits["validation"].end)
    weights, bias = evaluation.fit_transformed_ridge(*arrays(combined), lags, alpha, transform)
    chosen = f"ridge_chosen_on_validation ({lags} lags, alpha {alpha:g}, {transform})"
    results[chosen] = evaluation.transformed_ridge_forecast(
        test_histories, weights, bias, lags, transform, horizon
    )
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

    config = config_lib.apply_overrides(APP.make_config(args.preset), args.overrides)
    datasets = APP.data.load_data(config)
    print(f"data: {json.dumps(datasets.summary)}")
    peers = linear_peers(config, datasets)

    runs = []
    for seed in [int(seed) for seed in args.seeds.split(",")]:
        config.training.seed = seed
        with tempfile.TemporaryDirectory() as workdir:
            started = time.perf_counter()
            model, trained_datasets = training.train(APP, config, Path(workdir))
            seconds = time.perf_counter() - started
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
