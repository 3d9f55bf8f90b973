"""Hyperparameter search for any app on KerasTuner: `rnn-<app> tune`.

A trial is a `train` run of the app's `search_space(hp, base_config)`: the same seeding,
datasets, `build_model`, epochs and early stopping, so `train --config DIR/best_config.json`
replays the best trial (Hyperband trials excepted: they continue from an earlier trial's weights).
The preprocessing state (vocabulary, scales) is fitted once on the base config; each trial
rebuilds its batches from it, because a trial may tune the batch size or the data shape
(forecasting's lookback). Search spaces should therefore not tune what the fitting reads
(e.g. the vocabulary size): a replay would refit it.

Work dir of a search:
    tune.json          the search settings; a rerun under other settings is refused
    trials/            the KerasTuner project (oracle state, one folder per trial): rerunning the
                       same command resumes, keeping finished trials and retrying a killed one
    logs/<trial>/      TensorBoard logs with the trial's hyperparameters (HParams dashboard)
    results.csv        every finished trial, best first; also printed as a table
    best_config.json   the best trial's full config, for `train --config`
    best/              with --export-best: the best config retrained (a `train` work dir) and
                       exported from there, so the export is exactly what the replay gives

Distributed search (KerasTuner's chief/worker mode): start the same command once with
KERASTUNER_TUNER_ID=chief (it runs the oracle and serves trials over gRPC at
KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT) and on each worker with KERASTUNER_TUNER_ID=tuner<N>
and the same oracle address. Workers exit when the oracle has no trials left; the chief then
writes the results. See docs/scale-out.md.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner
import psutil

from apps.core import config as config_lib
from apps.core import export, training
from apps.core.errors import UserError

if TYPE_CHECKING:
    from apps.core.app import App

TUNERS = ("random", "bayesian", "hyperband")
PROJECT_NAME = "trials"
SETTINGS_FILE = "tune.json"
RESULTS_FILE = "results.csv"
BEST_CONFIG_FILE = "best_config.json"
BEST_DIR = "best"
LOGS_DIR = "logs"


def is_distributed_search() -> bool:
    """True in a chief or worker of KerasTuner's distributed mode."""
    return "KERASTUNER_ORACLE_IP" in os.environ


def is_tuning_worker() -> bool:
    """True in a distributed search's worker (KerasTuner's rule: an id without "chief")."""
    return is_distributed_search() and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", "")


def memory_megabytes() -> float:
    return psutil.Process().memory_info().rss / 2**20


class AppHyperModel(keras_tuner.HyperModel):
    """Builds and fits one trial of `app` the way `training.train` runs its config.

    Args:
        app: the app whose search space, data and model the trials use.
        base_config: the config the search space starts from (preset, `--set`, `--epochs`).
        assets: the preprocessing state fitted on the base config's training split (None
            when the search is only opened to read its results).
        strategy: the `tf.distribute` strategy of the trials (scales the global batch).
    """

    def __init__(self, app: App, base_config: Any, assets: Any, strategy: Any):
        super().__init__(name=app.name)
        self.app = app
        self.base_config = base_config
        self.assets = assets
        self.strategy = strategy

    def trial_config(self, hp: keras_tuner.HyperParameters) -> Any:
        """The full config of the trial with values `hp` (what `best_config.json` holds)."""
        config = self.app.search_space.search_space(hp, self.base_config)
        if "tuner/epochs" in hp.values:
            config.training.epochs = hp.values["tuner/epochs"]
        return config

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        config = self.trial_config(hp)
        # As in training.train: seeded right before the model's weights are drawn.
        keras.utils.set_random_seed(config.training.seed)
        return training.build_model(self.app, config, self.assets)

    def fit(self, hp, model, callbacks=(), epochs=None, initial_epoch=0, verbose="auto"):
        config = self.trial_config(hp)
        started = time.monotonic()
        datasets = self.app.data.load_data(
            training.global_batch_config(config, self.strategy), self.assets
        )
        into_average, out_of_average = training.averaged_weights(config.training)
        history = training.fit(
            model,
            datasets,
            epochs or config.training.epochs,
            [
                *into_average,
                *self.app.evaluation.validation_callbacks(config, datasets),
                *callbacks,
                training.early_stopping(self.app, config.training),
                *out_of_average,
                keras.callbacks.TerminateOnNaN(),
            ],
            initial_epoch=initial_epoch,
            verbose=verbose,
        )
        print(
            f"trial finished in {time.monotonic() - started:.1f} s; "
            f"process {os.getpid()} memory {memory_megabytes():.0f} MB",
            flush=True,
        )
        return history


def make_tuner(
    name: str,
    hypermodel: AppHyperModel,
    app: App,
    workdir: Path,
    max_trials: int,
    strategy: Any,
) -> keras_tuner.Tuner:
    """The KerasTuner tuner `name`, seeded, with its project in `workdir/trials`."""
    config = hypermodel.base_config
    common = {
        "hypermodel": hypermodel,
        "objective": keras_tuner.Objective(app.monitor, app.monitor_mode),
        "seed": config.training.seed,
        "directory": str(workdir),
        "project_name": PROJECT_NAME,
        "overwrite": False,
        "distribution_strategy": None if config.training.strategy == "default" else strategy,
    }
    if name == "random":
        return keras_tuner.RandomSearch(max_trials=max_trials, **common)
    if name == "bayesian":
        # KerasTuner's default (3 random points per hyperparameter) would leave a short search
        # entirely random; a quarter of the budget seeds the Gaussian process instead.
        return keras_tuner.BayesianOptimization(
            max_trials=max_trials, num_initial_points=max(2, max_trials // 4), **common
        )
    if name == "hyperband":
        # The trial count follows from max_epochs and the reduction factor, not --max-trials.
        return keras_tuner.Hyperband(max_epochs=config.training.epochs, factor=3, **common)
    raise UserError(f"--tuner: unknown tuner {name!r}; valid: {', '.join(TUNERS)}")


def check_settings(workdir: Path, settings: dict[str, Any]) -> None:
    """Records the search settings; refuses to resume a search made under other settings."""
    settings_file = workdir / SETTINGS_FILE
    text = json.dumps(settings, indent=2) + "\n"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != json.loads(text):
        raise UserError(
            f"{workdir} holds a search with other settings ({settings_file}); rerun the same "
            f"command to resume it, or use a new --workdir"
        )
    # Written aside and renamed: a chief and its workers may share the work dir.
    staging = workdir / f".{SETTINGS_FILE}.{os.getpid()}"
    staging.write_text(text)
    staging.replace(settings_file)


def results_rows(trials: list[Any], app: App) -> list[dict[str, Any]]:
    """One row per finished trial, best first: id, objective, then the trial's values."""
    return [
        {"trial": trial.trial_id, app.monitor: trial.score, **trial.hyperparameters.values}
        for trial in trials
        if trial.score is not None
    ]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of `rows` (columns: the union of their keys, in first-seen order)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[format_value(row.get(column, "")) for column in columns] for row in rows]
    lines = [columns, *cells]
    widths = [max(len(line[index]) for line in lines) for index in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def write_results(rows: list[dict[str, Any]], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def search(
    app: App, config: Any, workdir: Path, tuner_name: str, max_trials: int, run_trials: bool = True
) -> tuple[keras_tuner.Tuner, AppHyperModel]:
    """Opens (resumes) the search in `workdir`; runs its trials up to `max_trials` here unless
    `run_trials` is False (then only its results are read, and no data is loaded)."""
    strategy = training.distribution_strategy(config.training.strategy)
    assets = None
    if run_trials:
        keras.utils.set_random_seed(config.training.seed)
        datasets = app.data.load_data(training.global_batch_config(config, strategy))
        print(f"data: {json.dumps(datasets.summary)}", flush=True)
        assets = datasets.assets
    hypermodel = AppHyperModel(app, config, assets, strategy)
    tuner = make_tuner(tuner_name, hypermodel, app, workdir, max_trials, strategy)
    if run_trials:
        tuner.search(
            callbacks=[keras.callbacks.TensorBoard(str(workdir / LOGS_DIR))],
            verbose=1 if sys.stdout.isatty() else 2,
        )
    return tuner, hypermodel


def ended_trials(workdir: Path) -> int:
    """Trials of the search in `workdir` that will not run again (a killed one will)."""
    statuses = [json.loads(path.read_text())["status"]
                for path in (workdir / PROJECT_NAME).glob("trial_*/trial.json")]  # fmt: skip
    return sum(status != "RUNNING" for status in statuses)


def search_in_fresh_processes(
    app: App,
    config: Any,
    workdir: Path,
    tuner_name: str,
    max_trials: int,
    trials_per_process: int,
) -> None:
    """Runs the search's remaining trials, `trials_per_process` per fresh child process."""
    context = multiprocessing.get_context("spawn")
    while (done := ended_trials(workdir)) < max_trials:
        target = min(done + trials_per_process, max_trials)
        child = context.Process(target=search, args=(app, config, workdir, tuner_name, target))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise UserError(f"a search process for trials up to {target} exited with "
                            f"{child.exitcode}; rerun the same command to resume")  # fmt: skip
        if ended_trials(workdir) == done:
            return  # the oracle stopped early (e.g. the search space is exhausted)


def tune(
    app: App,
    config: Any,
    workdir: Path,
    tuner_name: str = "bayesian",
    max_trials: int = 10,
    export_best: bool = False,
    export_root: Path | None = None,
    trials_per_process: int = 1,
) -> Path | None:
    """Searches the app's search space around `config` in `workdir`; returns the best config file.

    Trials run `trials_per_process` at a time in fresh processes (0: all in this one), since
    TensorFlow keeps some memory of every model fitted in a process even after
    `clear_session`; not for Hyperband or a distributed search, which run here. Returns None
    in a distributed search's worker (the chief writes the results).
    """
    if tuner_name not in TUNERS:
        raise UserError(f"--tuner: unknown tuner {tuner_name!r}; valid: {', '.join(TUNERS)}")
    if max_trials < 1:
        raise UserError(f"--max-trials must be at least 1, got {max_trials}")
    if trials_per_process < 0:
        raise UserError(f"--trials-per-process must be 0 or more, got {trials_per_process}")
    workdir.mkdir(parents=True, exist_ok=True)
    check_settings(
        workdir, {"app": app.name, "tuner": tuner_name, "config": config_lib.to_dict(config)}
    )
    in_fresh_processes = (
        trials_per_process > 0 and tuner_name != "hyperband" and not is_distributed_search()
    )
    if in_fresh_processes:
        search_in_fresh_processes(app, config, workdir, tuner_name, max_trials, trials_per_process)
    tuner, hypermodel = search(
        app, config, workdir, tuner_name, max_trials, run_trials=not in_fresh_processes
    )
    if is_tuning_worker():
        print(f"worker {os.environ['KERASTUNER_TUNER_ID']}: the search is over")
        return None

    finished = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    rows = results_rows(finished, app)
    if not rows:
        raise UserError(f"no trial finished; see the trial messages in {workdir / PROJECT_NAME}")
    write_results(rows, workdir / RESULTS_FILE)
    print(f"\nbest trials ({len(rows)} finished, objective {app.monitor} {app.monitor_mode}):")
    print(format_table(rows[:10]))
    best_config = hypermodel.trial_config(finished[0].hyperparameters)
    best_config_file = workdir / BEST_CONFIG_FILE
    config_lib.save(best_config, best_config_file)
    print(f"best config: {best_config_file} (replay: train --config {best_config_file})")

    if export_best:
        best_dir = workdir / BEST_DIR
        training.train(app, best_config, best_dir, overwrite=True)
        best_config, model, assets = training.load_trained(app, best_dir)
        root = export_root or Path(best_config.export.export_dir)
        print(f"exported: {export.export(app, model, best_config, assets, root)}")
    return best_config_file
