"""The training loop every app shares: seeding, distribution strategy, callbacks, crash recovery."""

from __future__ import annotations

import copy
import csv
import importlib
import json
import math
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from apps.core import config as config_lib
from apps.core import plots
from apps.core.errors import UserError
from apps.core.optimizers import FusedAdamW
from apps.core.workdir import (
    ASSETS_DIR,
    BACKUP_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    MODEL_RECORD_FILE,
    STAGED_MODEL_FILE,
    prepare_workdir,
    run_record,
    stop_reason,
)

if TYPE_CHECKING:
    from apps.core.app import App, Assets, Datasets


# The variables weight decay leaves alone, as nanoGPT and BERT do: biases and the scales and
# offsets of normalization layers. Searched in the variable's name, which under TensorFlow is
# its full path ("encoder/gru_cell/bias:0").
NO_WEIGHT_DECAY = r"(^|/)(bias|gamma|beta)(:\d+)?$"


def learning_rate(
    training: config_lib.TrainingConfig,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The configured learning rate, or its cosine schedule.

    The cosine schedule ends at the run's last step, which only the data can tell: `fit` sets
    its decay steps (`fit_schedule_to_run`) before the first step; until then it decays in one.
    """
    if training.learning_rate_schedule == "constant":
        return training.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=1,
        alpha=training.final_learning_rate_fraction,
        warmup_target=training.learning_rate,
        warmup_steps=training.warmup_steps,
    )


def optimizer(training: config_lib.TrainingConfig) -> keras.optimizers.Optimizer:
    """AdamW (fused update) with the configured learning rate (schedule), global-norm gradient
    clipping, weight decay on kernels and embeddings (not biases and normalization) and, with
    `ema_momentum`, a moving average of the weights."""
    adamw = FusedAdamW(
        learning_rate=learning_rate(training),
        weight_decay=training.weight_decay,
        global_clipnorm=training.clip_norm or None,
        use_ema=bool(training.ema_momentum),
        ema_momentum=training.ema_momentum or 0.99,
    )
    adamw.exclude_from_weight_decay(var_names=[NO_WEIGHT_DECAY])
    return adamw


def steps_per_epoch(dataset: tf.data.Dataset) -> int:
    """The batches of one pass over `dataset`, counted when tf.data cannot tell (bucketing)."""
    steps = int(dataset.cardinality())
    if steps == tf.data.UNKNOWN_CARDINALITY:
        steps = int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
    return steps


def fit_schedule_to_run(model: keras.Model, dataset: tf.data.Dataset, epochs: int) -> None:
    """Makes a cosine schedule of `model`'s optimizer end at the run's last step: `epochs`
    passes over `dataset`. A constant learning rate is left as it is (and nothing counted)."""
    adamw = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # LossScaleOptimizer
    schedule = adamw._learning_rate  # the schedule itself; `learning_rate` is its value
    if not isinstance(schedule, keras.optimizers.schedules.CosineDecay):
        return
    total_steps = steps_per_epoch(dataset) * epochs
    if total_steps <= schedule.warmup_steps:
        raise UserError(
            f"training.warmup_steps: {schedule.warmup_steps} warm-up steps leave no decay in a "
            f"run of {total_steps} steps"
        )
    schedule.decay_steps = total_steps - schedule.warmup_steps


def dtype_policy(mixed_precision: str) -> str:
    """The Keras dtype policy of `training.mixed_precision`."""
    if mixed_precision == "auto":
        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    return "float32" if mixed_precision == "off" else mixed_precision


def build_model(app: App, config: Any, assets: Any) -> keras.Model:
    """The app's `build_model` with its layers made under `training.mixed_precision`'s policy.

    The global policy is restored afterwards, so it reaches neither export nor another run.
    Keras wraps the optimizer in a `LossScaleOptimizer` when the model compiles under
    mixed_float16.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy(config.training.mixed_precision))
    try:
        return app.model.build_model(config, assets)
    finally:
        keras.config.set_dtype_policy(previous)


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `--strategy` / `training.strategy`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(
        f"training.strategy: unknown strategy {name!r}; valid: default, mirrored, multi-worker"
    )


def work_around_multi_worker_fit(
    model: keras.Model, strategy: tf.distribute.Strategy, sample_batch: Any
) -> None:
    """Lets `model.fit` run under MultiWorkerMirroredStrategy in Keras 3.15 (keras#20585).

    Keras 3.15 fails twice there: before the first step it all-reduces a distributed input batch
    to build the model symbolically (`_maybe_symbolic_build`), and after each step it reduces the
    scalar step metrics along axis 0 (`reduce_per_replica`). This builds from one local batch
    instead and gives the step outputs a length-1 axis that the cross-worker mean removes. The
    weights, gradients and all-reduce are Keras' and TensorFlow's own. Remove it when
    `tests/apps/core/test_distributed.py::test_keras_multi_worker_fit_still_needs_the_workaround`
    starts to fail.
    """

    def with_replica_axis(step):
        def step_with_replica_axis(data):
            return tf.nest.map_structure(lambda value: tf.reshape(value, [1]), step(data))

        return step_with_replica_axis

    def build_from_local_batch(iterator=None, data_batch=None):
        with strategy.scope():
            model._symbolic_build(data_batch=sample_batch)

    model.train_step = with_replica_axis(model.train_step)
    model.test_step = with_replica_axis(model.test_step)
    model._maybe_symbolic_build = build_from_local_batch


def global_batch_config(config: Any, strategy: tf.distribute.Strategy) -> Any:
    """A copy of `config` whose batch size is the per-replica size times the replica count."""
    scaled = copy.deepcopy(config)
    scaled.training.batch_size = config.training.batch_size * strategy.num_replicas_in_sync
    return scaled


def best_logged_value(history_file: Path, monitor: str, mode: str) -> float | None:
    """The best `monitor` value recorded in a CSVLogger file (resumed runs keep their best)."""
    if not history_file.is_file():
        return None
    with history_file.open() as handle:
        values = [float(row[monitor]) for row in csv.DictReader(handle) if row.get(monitor)]
    values = [value for value in values if math.isfinite(value)]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


class PublishCheckpoint(keras.callbacks.Callback):
    """Renames a complete staged checkpoint over the model file and records its score.

    Placed right after a `ModelCheckpoint` writing `staged`: a kill while Keras writes the
    staged file leaves the published model whole, and the record names the monitor value the
    published model scored, so a resumed run saves only a better one.
    """

    def __init__(self, staged: Path, published: Path, record: Path, monitor: str):
        super().__init__()
        self.staged, self.published, self.record, self.monitor = staged, published, record, monitor

    def on_train_begin(self, logs=None):
        self.staged.unlink(missing_ok=True)  # a partial write from a crashed run

    def on_epoch_end(self, epoch, logs=None):
        if not self.staged.is_file():
            return
        self.staged.replace(self.published)
        value = float((logs or {})[self.monitor])
        partial = self.record.with_suffix(".partial")
        partial.write_text(json.dumps({self.monitor: value, "epoch": epoch + 1}))
        partial.replace(self.record)


def published_value(workdir: Path, monitor: str) -> float | None:
    """The monitor value of the work dir's published model, or None when there is none."""
    record = workdir / MODEL_RECORD_FILE
    if not (workdir / MODEL_FILE).is_file() or not record.is_file():
        return None
    return json.loads(record.read_text()).get(monitor)


class HistoryLogger(keras.callbacks.CSVLogger):
    """Keras' CSVLogger with epochs counted from 1, as the console and `model.json` count them."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


def history_rows(history_file: Path) -> list[dict[str, str]]:
    """The rows of a `HistoryLogger` file; an epoch logged twice (a crash before its backup
    repeats it) keeps its last row."""
    if not history_file.is_file():
        return []
    with history_file.open() as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    return [rows[epoch] for epoch in sorted(rows)]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping that carries its state across a resumed run.

    When `BackupAndRestore` (placed before it) resumes at epoch N, the state of the epochs
    done (best value and epoch, epochs without improvement) is replayed from the history
    file and the best weights are read from the published checkpoint, so the resumed run stops
    where an uninterrupted one stops. Prints the epoch it resumes from. `epochs_done` counts the
    finished epochs, resumed ones included.
    """

    def __init__(self, history_file: Path, published: Path, **kwargs):
        super().__init__(**kwargs)
        self.history_file, self.published = history_file, published
        self.epochs_done = 0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.epochs_done = self.model._initial_epoch or 0  # set by BackupAndRestore
        if not self.epochs_done:
            return
        self._set_monitor_op()
        for row in history_rows(self.history_file):
            text = row.get(self.monitor)
            if int(row["epoch"]) > self.epochs_done or text in (None, "", "NA"):
                continue  # a repeated epoch, or one Keras skips for want of the monitor
            self.wait += 1
            if self._is_improvement(float(text), self.best):
                self.best, self.best_epoch, self.wait = float(text), int(row["epoch"]) - 1, 0
        best_published = run_record(self.published.parent).get("epoch") == self.best_epoch + 1
        if self.best is not None and self.restore_best_weights and best_published:
            model = keras.saving.load_model(self.published, compile=False)
            self.best_weights = model.get_weights()
        best = (
            f"best epoch {self.best_epoch + 1} ({self.monitor} {self.best:.6g}), "
            f"{self.wait} of patience {self.patience} epochs without improvement"
            if self.best is not None
            else "no best epoch yet"
        )
        print(
            f"resuming at epoch {self.epochs_done + 1} of {self.params['epochs']}: "
            f"{self.epochs_done} done, {best}"
        )

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.epochs_done = epoch + 1


class AveragedWeightsIn(keras.callbacks.SwapEMAWeights):
    """Keras' `SwapEMAWeights` (the optimizer's averaged weights in the model for `evaluate`
    and `predict`) that also swaps them in at each epoch's end, so the callbacks after it
    (validation metrics, checkpoints, early stopping) see the averaged model; the paired
    `AveragedWeightsOut`, placed after them, swaps the trained weights back for the crash
    backup and the next epoch (Keras' own `swap_on_epoch` would leave the backup holding the
    average as the trained weights)."""

    def on_epoch_end(self, epoch, logs=None):
        if not self._ema_weights_in_model:
            self._swap_variables()
            self._ema_weights_in_model = True


class AveragedWeightsOut(keras.callbacks.Callback):
    def __init__(self, swap_in: AveragedWeightsIn):
        super().__init__()
        self.swap_in = swap_in

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_in._ema_weights_in_model:
            self.swap_in._swap_variables()
            self.swap_in._ema_weights_in_model = False


def averaged_weights(
    training: config_lib.TrainingConfig,
) -> tuple[list[keras.callbacks.Callback], list[keras.callbacks.Callback]]:
    """The callbacks to put before and after those that should see the averaged weights
    (`ema_momentum`); none without it."""
    if not 0.0 <= training.ema_momentum < 1.0:
        raise UserError(
            f"training.ema_momentum: expected 0 (off) or a momentum in (0, 1), got "
            f"{training.ema_momentum}"
        )
    if not training.ema_momentum:
        return [], []
    swap_in = AveragedWeightsIn()
    return [swap_in], [AveragedWeightsOut(swap_in)]


def early_stopping(app: App, training: config_lib.TrainingConfig) -> keras.callbacks.Callback:
    """Stops when `app.monitor` stops improving and keeps the best epoch's weights."""
    return keras.callbacks.EarlyStopping(
        monitor=app.monitor,
        mode=app.monitor_mode,
        patience=training.early_stopping_patience,
        restore_best_weights=True,
    )


def fit(
    model: keras.Model,
    datasets: Datasets,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
    initial_epoch: int = 0,
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """`model.fit` on an app's datasets, as `train` and every tuning trial run it."""
    fit_schedule_to_run(model, datasets.train, epochs)
    with warnings.catch_warnings():
        # Length-bucketed datasets have no known size: Keras learns the epoch length from the
        # first epoch and warns when it ends, which is expected here.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        return model.fit(
            datasets.train,
            validation_data=datasets.validation,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,  # the pipelines shuffle (seeded) themselves
            verbose=verbose,
        )


def callbacks(
    app: App, config: Any, workdir: Path, datasets: Datasets
) -> list[keras.callbacks.Callback]:
    """App metrics, CSV history, checkpoint, crash backup, early stopping, TensorBoard, NaN stop."""
    training = config.training
    staged = workdir / STAGED_MODEL_FILE
    # Order matters for crash recovery: an epoch's history row, then its checkpoint, then its
    # backup. A crash before the backup repeats the epoch on resume (its row appears twice)
    # rather than losing its row or, were it the best epoch, its model. Early stopping reads
    # the epoch BackupAndRestore resumes from, so it comes after it. Averaged weights are
    # validated and checkpointed; the backup keeps the trained ones (and the average with the
    # optimizer's variables).
    into_average, out_of_average = averaged_weights(training)
    return [
        *into_average,
        *app.evaluation.validation_callbacks(config, datasets),
        HistoryLogger(str(workdir / HISTORY_FILE), append=True),
        keras.callbacks.ModelCheckpoint(
            str(staged),
            monitor=app.monitor,
            mode=app.monitor_mode,
            save_best_only=True,
            initial_value_threshold=published_value(workdir, app.monitor),
        ),
        PublishCheckpoint(staged, workdir / MODEL_FILE, workdir / MODEL_RECORD_FILE, app.monitor),
        *out_of_average,
        keras.callbacks.BackupAndRestore(
            str(workdir / BACKUP_DIR),
            save_freq=training.backup_every_steps or "epoch",
            # `train` deletes the backup once the finished run is recorded.
            delete_checkpoint=False,
            # Keeps the previous backup too, so a kill while writing one loses nothing.
            double_checkpoint=True,
        ),
        ResumableEarlyStopping(
            workdir / HISTORY_FILE,
            workdir / MODEL_FILE,
            monitor=app.monitor,
            mode=app.monitor_mode,
            patience=training.early_stopping_patience,
            restore_best_weights=True,
        ),
        keras.callbacks.TensorBoard(str(workdir / "logs")),
        keras.callbacks.TerminateOnNaN(),
    ]


def record_finished(
    workdir: Path, stopping: ResumableEarlyStopping, history: keras.callbacks.History
) -> dict[str, Any]:
    """Adds `finished`, the epochs run and the stop reason to `model.json`, then deletes the
    crash backup (in that order: a kill in between leaves a finished run and a stale backup)."""
    losses = history.history.get("loss", [])
    if losses and not math.isfinite(losses[-1]):
        stop = "nan"
    elif stopping.stopped_epoch > 0:
        stop = "early_stopping"
    else:
        stop = "epochs"
    record = {
        **run_record(workdir),
        "finished": True,
        "epochs_run": stopping.epochs_done,
        "stop": stop,
    }
    partial = workdir / f"{MODEL_RECORD_FILE}.partial"
    partial.write_text(json.dumps(record))
    partial.replace(workdir / MODEL_RECORD_FILE)
    shutil.rmtree(workdir / BACKUP_DIR, ignore_errors=True)
    return record


def load_assets(app: App, workdir: Path) -> Assets | None:
    """The preprocessing state saved by an earlier (or interrupted) run, or None."""
    directory = workdir / ASSETS_DIR
    if directory.is_dir() and any(directory.iterdir()):
        return app.data.ASSETS_CLASS.load(directory)
    return None


def train(
    app: App, config: Any, workdir: Path, overwrite: bool = False
) -> tuple[keras.Model, Datasets]:
    """Trains `app` under `config` in `workdir`; resumes an interrupted run in the same place.

    A work dir holding a finished run or a run under another config is refused unless
    `overwrite`, which moves it aside (`prepare_workdir`).
    """
    prepare_workdir(config, workdir, overwrite, app.chosen_after_training_fields)
    keras.utils.set_random_seed(config.training.seed)
    strategy = distribution_strategy(config.training.strategy)
    datasets = app.data.load_data(global_batch_config(config, strategy), load_assets(app, workdir))
    datasets.assets.save(workdir / ASSETS_DIR)
    print(f"data: {json.dumps(datasets.summary)}")
    with strategy.scope():
        model = build_model(app, config, datasets.assets)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        work_around_multi_worker_fit(model, strategy, next(iter(datasets.train)))
    model.summary(print_fn=lambda line, **_: print(line))
    run_callbacks = callbacks(app, config, workdir, datasets)
    history = fit(
        model,
        datasets,
        config.training.epochs,
        run_callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    if not (workdir / MODEL_FILE).is_file():
        shutil.rmtree(workdir / BACKUP_DIR, ignore_errors=True)
        raise UserError(
            f"training stopped before any checkpoint was written (last logs: "
            f"{ {key: values[-1] for key, values in history.history.items()} })"
        )
    (stopping,) = [
        callback for callback in run_callbacks if isinstance(callback, ResumableEarlyStopping)
    ]
    # Before the run is recorded as finished: a kill in between leaves a run that resumes and
    # does this again (both steps give the same result on their own output).
    if app.calibrates_after_training or app.chosen_after_training_fields:
        best_model = keras.saving.load_model(workdir / MODEL_FILE)
        if app.calibrates_after_training and app.calibrate_after_training(
            best_model, config, datasets
        ):
            best_model.save(workdir / STAGED_MODEL_FILE)
            (workdir / STAGED_MODEL_FILE).replace(workdir / MODEL_FILE)
        chosen = app.choose_after_training(best_model, config, datasets)
        if chosen != config:
            config_lib.save(chosen, workdir / CONFIG_FILE)
    record = record_finished(workdir, stopping, history)
    print(f"{stop_reason(record)} ({app.monitor} {record[app.monitor]:.6g})")
    plots.training_curves(workdir / HISTORY_FILE, workdir / "training-curves.png")
    return model, datasets


def load_trained(app: App, workdir: Path) -> tuple[Any, keras.Model, Any]:
    """The config, best checkpoint and preprocessing state of a trained work dir."""
    config_file = workdir / CONFIG_FILE
    if not config_file.is_file():
        raise UserError(f"{workdir} is not a work dir (no {CONFIG_FILE}); run train first")
    if not (workdir / MODEL_FILE).is_file():
        raise UserError(f"{workdir} has no trained model ({MODEL_FILE}); run train first")
    config = config_lib.load(app.config_class, config_file)
    # The app's model module imports, and so registers, the custom layers model.keras names.
    importlib.import_module(f"{app.package}.model")
    model = keras.saving.load_model(workdir / MODEL_FILE)
    return config, model, load_assets(app, workdir)
