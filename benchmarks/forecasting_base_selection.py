"""How well does the linear base's validation choice transfer to the test part? Rules side by side.

On each panel series (`forecasting_panel.SERIES`, or the held-out ones of
`forecasting_panel.HELD_OUT` by name; the `base` preset's derived settings, no
training of the recurrent model) every candidate of the linear base (the ridge, the seasonal
naive forecast, AutoETS, AutoARIMA and AutoTheta distilled) is scored on the rolling-origin
validation pieces, each fitted on the steps before its piece as `choose_linear_base` does
(the statistical models specified on the training part), and on the test windows, fitted on
train and validation. Rules that turn the validation scores into a forecast are then scored
on the test part against the best peer of `evaluate` (the ex-post best of seasonal naive, the
ridge and the undistilled models):

    select         the candidate (or the mean of the distilled models) with the lowest
                   validation MAE, the ridge scored by its grid's best configuration
    select_nested  the same with the ridge scored by `nested_ridge_validation` (its grid
                   searched again before each validation piece, so its score is not the
                   minimum over the grid on the pieces it is judged on): the app's rule
    mean_models    the mean of the distilled models
    mean_all       the mean of the distilled models and the ridge
    median_all     the median of every candidate
    top2, top3     the mean of the 2 or 3 best candidates on validation
    top2_nested    the mean of the 2 best, the ridge ranked by its nested score
    inverse_mae    every candidate weighted by 1 / validation MAE

`--validation-share S` scores the candidates on the last share S of train and validation
instead of the validation part (more windows, older ones; the ridge is chosen there too).

    python benchmarks/forecasting_base_selection.py --series austres --series lynx
    python benchmarks/forecasting_base_selection.py --validation-share 0.5
    python benchmarks/forecasting_base_selection.py --series ausbeer --series elnino \
        --series realgdp --series unemp --series sunspots-yearly --output sel-heldout.json

Prints one table (app / best peer per series and rule, geometric mean, worst) and writes
`benchmarks/results/forecasting-base-selection[-share<S>].json` (or `--output NAME`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
from pathlib import Path

import forecasting_panel  # beside this script
import numpy as np

from apps.forecasting import data as forecasting_data
from apps.forecasting import evaluation
from apps.forecasting.app import APP
from pipelines import windows

RESULTS = Path(__file__).parent / "results"


def candidate_forecasts(name: str, validation_share: float) -> dict:
    """Per candidate: its forecasts of each validation piece and of the test windows; the
    pieces' and the test part's truths; the peers' test forecasts."""
    with tempfile.TemporaryDirectory() as scratch:
        config = APP.make_config("base")
        config.data.source = forecasting_panel.source(name, Path(scratch))
        config.data.horizon = forecasting_panel.HORIZONS[name]
        config = APP.complete_config(config)
        with contextlib.redirect_stdout(io.StringIO()):
            datasets = forecasting_data.load_data(config)
    values = datasets.series.values.astype(np.float64)
    next_terms, assets = datasets.next_terms, datasets.assets
    lookback, horizon = config.data.lookback, config.data.horizon
    season, targets = config.evaluation.season, len(assets.target_columns)
    validation = datasets.splits["validation"]
    if validation_share:
        first = max(2 * lookback + horizon, round(validation.end * (1 - validation_share)))
        validation = windows.Split(min(validation.start, first), validation.end)
    ridge, _ = evaluation.choose_ridge(
        values[: validation.end], validation, lookback, horizon, targets,
        tuple(config.evaluation.ridge_lags), season, next_terms,
    )  # fmt: skip
    pieces = evaluation.validation_pieces(
        values[: validation.end], validation, lookback, horizon, targets, next_terms
    )
    starts = datasets.test_starts
    test_histories, test_truth = windows.window_arrays(values, starts, lookback, horizon, targets)
    test_rows = evaluation.window_calendar(next_terms, starts, lookback)
    choices = {"ridge": ridge}
    for model in (evaluation.SEASONAL_NAIVE, *config.evaluation.peers):
        calendar = next_terms is not None and model != evaluation.SEASONAL_NAIVE
        choices[model] = evaluation.LinearChoice(
            lookback, 0.0, "identity", "none", season, (model,), calendar
        )
    validation_forecasts, test_forecasts = {}, {}
    for label, choice in choices.items():
        validation_forecasts[label] = []
        for piece, _, (histories, _, rows) in pieces:
            kernel, bias = evaluation.fit_linear(
                values, piece.start, lookback, horizon, targets, choice, next_terms,
                validation.start,
            )  # fmt: skip
            validation_forecasts[label].append(
                evaluation.choice_forecast(histories, kernel, bias, choice, horizon, rows)
            )
        kernel, bias = evaluation.fit_linear(
            values, validation.end, lookback, horizon, targets, choice, next_terms,
            validation.start,
        )  # fmt: skip
        test_forecasts[label] = evaluation.choice_forecast(
            test_histories, kernel, bias, choice, horizon, test_rows
        )
    _, nested_forecasts = evaluation.nested_ridge_validation(
        values[: validation.end], validation, lookback, horizon, targets,
        tuple(config.evaluation.ridge_lags), season, next_terms,
    )  # fmt: skip
    peers = evaluation.statistical_forecasts(
        values[:, :targets], starts + lookback, horizon, season, tuple(config.evaluation.peers)
    )
    peers["seasonal_naive"] = test_forecasts[evaluation.SEASONAL_NAIVE]
    peers["ridge"] = test_forecasts["ridge"]
    return {
        "validation": validation_forecasts,
        "nested_ridge": nested_forecasts,
        "validation_truths": [truth for _, _, (_, truth, _) in pieces],
        "test": test_forecasts,
        "test_truth": test_truth,
        "peers": peers,
    }


def rule_forecasts(found: dict) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each rule's test forecast, and each candidate's validation MAE."""
    truths = found["validation_truths"]

    def validation_mae(per_piece):
        return float(
            np.mean([np.abs(f - t).mean() for f, t in zip(per_piece, truths, strict=True)])
        )

    def combination(labels, combine):
        pieces = [
            combine([found["validation"][label][piece] for label in labels])
            for piece in range(len(truths))
        ]
        return pieces, combine([found["test"][label] for label in labels])

    def mean(stack):
        return np.mean(stack, axis=0)

    def median(stack):
        return np.median(stack, axis=0)

    candidates = list(found["test"])
    models = [label for label in candidates if label.startswith("Auto")]
    scores = {label: validation_mae(found["validation"][label]) for label in candidates}
    pool = {label: (found["validation"][label], found["test"][label]) for label in candidates}
    pool["mean of the models"] = combination(models, mean)
    pool_scores = scores | {"mean of the models": validation_mae(pool["mean of the models"][0])}
    chosen = min(pool_scores, key=pool_scores.get)
    nested_scores = pool_scores | {"ridge": validation_mae(found["nested_ridge"])}
    nested_chosen = min(nested_scores, key=nested_scores.get)
    ranked = sorted(candidates, key=scores.get)
    ranked_nested = sorted(candidates, key=(scores | {"ridge": nested_scores["ridge"]}).get)
    rules = {
        "select": pool[chosen][1],
        "select_nested": pool[nested_chosen][1],
        "mean_models": pool["mean of the models"][1],
        "mean_all": combination([*models, "ridge"], mean)[1],
        "median_all": combination(candidates, median)[1],
        "top2": combination(ranked[:2], mean)[1],
        "top3": combination(ranked[:3], mean)[1],
        "top2_nested": combination(ranked_nested[:2], mean)[1],
        "inverse_mae": combination(
            candidates,
            lambda stack: np.average(stack, axis=0, weights=[1 / scores[c] for c in candidates]),
        )[1],
    }
    return rules, scores | {
        "chosen": chosen,
        "nested ridge": nested_scores["ridge"],
        "chosen with the nested ridge": nested_chosen,
    }


def test_maes(forecasts: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, float]:
    return {label: float(np.abs(forecast - truth).mean()) for label, forecast in forecasts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", action="append", choices=sorted(forecasting_panel.HORIZONS))
    parser.add_argument("--output", help="the JSON's name under benchmarks/results")
    parser.add_argument("--validation-share", type=float, default=0.0)
    args = parser.parse_args()
    if not 0.0 <= args.validation_share < 1.0:
        parser.error(f"--validation-share: expected a share in [0, 1), got {args.validation_share}")
    names = args.series or [name for name in forecasting_panel.SERIES if name != "taylor"]
    table = {}
    for name in names:
        found = candidate_forecasts(name, args.validation_share)
        truth = found["test_truth"]
        peers = test_maes(found["peers"], truth)
        best = min(peers, key=peers.get)
        rules, scores = rule_forecasts(found)
        validation_windows = [len(piece_truth) for piece_truth in found["validation_truths"]]
        table[name] = {
            "validation_windows": validation_windows,
            "validation_mae": scores,
            "test_mae": test_maes(found["test"], truth),
            "peers": peers,
            "best_peer": best,
            "ratio_to_best_peer": {
                rule: mae / peers[best] for rule, mae in test_maes(rules, truth).items()
            },
        }
        print(f"{name}: validation windows {validation_windows}, chosen "
              f"{scores['chosen']} ({scores['chosen with the nested ridge']} with the nested "
              f"ridge), best peer {best}", flush=True)  # fmt: skip
    rules = list(next(iter(table.values()))["ratio_to_best_peer"])
    print("\n| rule | " + " | ".join(table) + " | geometric mean | worst |")
    print("|" + " --- |" * (len(table) + 3))
    for rule in rules:
        ratios = [row["ratio_to_best_peer"][rule] for row in table.values()]
        print(
            f"| {rule} | " + " | ".join(f"{ratio:.3f}" for ratio in ratios)
            + f" | {math.exp(np.mean(np.log(ratios))):.3f} | {max(ratios):.3f} |"
        )  # fmt: skip
    suffix = f"-share{args.validation_share:g}" if args.validation_share else ""
    RESULTS.mkdir(exist_ok=True)
    output = RESULTS / (args.output or f"forecasting-base-selection{suffix}.json")
    output.write_text(json.dumps(table, indent=2) + "\n")
    print(f"\nwritten: {output}")


if __name__ == "__main__":
    main()
