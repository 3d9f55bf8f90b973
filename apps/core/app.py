"""The contract between an app and the shared CLI, training, export and tuning code.

Every app is a package `apps/<name>/` with the same files; its `App` subclass (`app.py`) names
the app and its config, and the shared code calls the functions of its modules:

    data.py          load_data(config, assets, whole_as_test) -> Datasets; ASSETS_CLASS
    model.py         build_model(config, assets) -> compiled keras.Model
    evaluation.py    evaluate(model, config, datasets, outputs) -> metrics;
                     validation_callbacks(config, datasets) -> callbacks adding val_* logs
    serving.py       endpoints(model, config, assets) -> Endpoints; example_request(config);
                     BATCHING (TF Serving's batching parameters for its signatures);
                     read_inputs(inputs, input_file, input_specs) -> Request;
                     format_outputs(request, outputs) -> rows; write_predictions(rows, output);
                     read_stream(inputs, input_file, input_specs) -> list[Stream] (apps whose
                     export has a `stream` signature)
    search_space.py  search_space(hp, config) -> config

The modules are imported when first used, so `--help` and config errors answer without
loading TensorFlow. The `App` keeps no state: what one call needs from another travels in
its return value (e.g. `Request.details`).

Lifecycle of a work dir:
    train     config.json, assets/ (preprocessing state fitted on the training split),
              model.keras (best checkpoint) and model.json (its score and epoch; once training
              ends also `finished`, the epochs run and why it stopped), backup/ (crash
              recovery, deleted when the run finishes), logs/ (TensorBoard), history.csv
              (epochs from 1), training-curves.png. A finished run is kept: a second train
              refuses, or with --overwrite renames the work dir to WORKDIR.old-<time>
    evaluate  metrics.json and the app's plots; with --data FILE, metrics-FILE.json and the plots
              named with the same suffix, beside them
    export    saved_models/<app>/<version>/
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from apps.core.errors import UserError

if TYPE_CHECKING:
    import argparse

    import keras
    import numpy as np
    import tensorflow as tf

ConfigT = TypeVar("ConfigT")


class Assets:
    """Preprocessing state fitted on the training split (vocabulary, label names, scales).

    Saved into `<workdir>/assets/` by training and loaded back by evaluate, export and a
    resumed training run, so the same state is used everywhere.
    """

    def save(self, directory: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path) -> Assets:
        raise NotImplementedError


@dataclasses.dataclass
class Datasets:
    """Batched `tf.data.Dataset`s of `(inputs, targets)` and the state they were made with."""

    train: tf.data.Dataset | None
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    assets: Assets
    # Human-readable description of the split, printed and saved with the metrics.
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Endpoints:
    """An export's signatures and the resources (preprocessing layers) their graphs use.

    `functions` maps a signature name to a `tf.function` with an `input_signature` of named
    specs; it must include `serving_default`. Each takes raw inputs and returns a dict of named
    outputs, using only TensorFlow and TF Text ops. `resources` lists the built Keras layers
    or `tf.Module`s that are not part of the model but hold state the functions use (e.g. a
    TextVectorization and its lookup table), so the export tracks them.
    """

    functions: dict[str, Any]
    resources: list[Any] = dataclasses.field(default_factory=list)


# Shared by every model of a server: TF Serving reads only the batch thread pool from the
# global file when models bring their own parameters.
BATCH_THREADS = 4
MAX_ENQUEUED_BATCHES = 100
# The most rows one request may hold: the server splits a larger request into batches the
# model runs (`enable_large_batch_splitting`) instead of refusing it.
MAX_REQUEST_ROWS = 1024


@dataclasses.dataclass(frozen=True)
class Batching:
    """TF Serving's batching parameters for one app's signatures (`BATCHING` in its serving.py,
    chosen from `benchmarks/serving_speed.py`), written into every version it exports.

    Args:
        max_batch_size: the largest batch the model runs (TF Serving's
            `max_execution_batch_size`; a request of more rows, up to `MAX_REQUEST_ROWS`, is
            split).
        allowed_batch_sizes: the batch sizes it pads a batch up to, increasing, ending with
            `max_batch_size`.
        batch_timeout_micros: how long a request waits for others to join its batch.
    """

    max_batch_size: int
    allowed_batch_sizes: tuple[int, ...]
    batch_timeout_micros: int

    def __post_init__(self):
        sizes = self.allowed_batch_sizes
        if list(sizes) != sorted(set(sizes)) or not sizes or sizes[-1] != self.max_batch_size:
            raise ValueError(
                f"allowed_batch_sizes {sizes}: increasing, ending with max_batch_size "
                f"{self.max_batch_size}"
            )

    def text(self, pad_variable_length_inputs: bool) -> str:
        """The BatchingParameters text proto."""
        lines = [
            f"max_batch_size {{ value: {max(MAX_REQUEST_ROWS, self.max_batch_size)} }}",
            "enable_large_batch_splitting { value: true }",
            f"max_execution_batch_size {{ value: {self.max_batch_size} }}",
            f"batch_timeout_micros {{ value: {self.batch_timeout_micros} }}",
            f"max_enqueued_batches {{ value: {MAX_ENQUEUED_BATCHES} }}",
            f"num_batch_threads {{ value: {BATCH_THREADS} }}",
            *(f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes),
            f"pad_variable_length_inputs: {str(pad_variable_length_inputs).lower()}",
        ]
        return "\n".join(lines) + "\n"


@dataclasses.dataclass
class Request:
    """A `serving_default` request read from `predict`'s inputs, and what formatting needs.

    `inputs` maps the signature's input names to arrays; `details` holds what the answer's
    formatting needs beyond them (e.g. the time stamps of a series), so no state is kept
    between reading and formatting.
    """

    inputs: dict[str, np.ndarray]
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Stream:
    """One stream of a `stream` signature's requests, read from `predict`'s inputs: the first
    of `steps` is sent with `state`, each later one with the `state` the answer before it
    returned. Every step's `details` lets `format_outputs` say where in the stream it stands."""

    state: np.ndarray
    steps: list[Request]


@dataclasses.dataclass(frozen=True)
class EvaluationOutputs:
    """Where `evaluate` writes: `path(name)` names a metrics or plot file of this evaluation.

    The held-out split's evaluation has no suffix (`metrics.json`, `forecasts.png`); one on
    `--data FILE` adds `-<FILE's stem>` (`metrics-2024.json`, `forecasts-2024.png`), so it never
    replaces the held-out results. `workdir` is the trained run, for what an evaluation reads
    or keeps across evaluations (a fitted baseline).
    """

    workdir: Path
    suffix: str = ""

    def path(self, name: str) -> Path:
        """`workdir / name` with the suffix before the extension."""
        name = Path(name)
        return self.workdir / f"{name.stem}{self.suffix}{name.suffix}"


class DataModule(Protocol):
    ASSETS_CLASS: type[Assets]

    def load_data(
        self, config: Any, assets: Assets | None = None, whole_as_test: bool = False
    ) -> Datasets:
        """Reads `config.data.source`, splits it and builds batched datasets.

        With `assets=None` the preprocessing state is fitted on the training split; otherwise
        the given state is used. With `whole_as_test=True` every example goes to `test`
        (evaluation on a user file) and `train`/`validation` are `None`.
        """


class ModelModule(Protocol):
    def build_model(self, config: Any, assets: Assets) -> keras.Model:
        """The compiled training model (built with `apps.core.training.optimizer`)."""


class EvaluationModule(Protocol):
    def evaluate(
        self, model: keras.Model, config: Any, datasets: Datasets, outputs: EvaluationOutputs
    ) -> dict[str, Any]:
        """Scores `datasets.test`, writes the app's plots to `outputs.path(...)`, returns
        metrics."""

    def validation_callbacks(
        self, config: Any, datasets: Datasets
    ) -> list[keras.callbacks.Callback]:
        """Callbacks adding the app's own validation metrics (e.g. BLEU) to each epoch's logs.

        Training and tuning run them before the history, checkpoint, early-stopping and tuner
        callbacks read the logs.
        """


class ServingModule(Protocol):
    BATCHING: Batching

    def endpoints(self, model: keras.Model, config: Any, assets: Assets) -> Endpoints:
        """The serving signatures of the export (see `Endpoints`)."""

    def example_request(self, config: Any) -> dict[str, np.ndarray]:
        """A small raw request for `serving_default` (warm-up records, smoke tests)."""

    def read_inputs(
        self, inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
    ) -> Request:
        """Turns `predict`'s CLI inputs into a `serving_default` request."""

    def format_outputs(
        self, request: Request, outputs: dict[str, np.ndarray]
    ) -> list[dict[str, Any]]:
        """Turns a request and its `serving_default` outputs into one row per example."""

    def write_predictions(self, rows: list[dict[str, Any]], output: Path | None) -> None:
        """Writes `predict`'s rows to `output`, or to stdout when it is None."""


class SearchSpaceModule(Protocol):
    def search_space(self, hp: Any, config: Any) -> Any:
        """Maps KerasTuner `hp` onto a copy of `config`."""


class App(Generic[ConfigT]):
    """An app: its name, command, config and presets; its package's modules fill the hooks.

    Subclasses set the class attributes below; see the module docstring for the modules.
    """

    name: ClassVar[str]
    # The console script, e.g. "rnn-sentiment" (usage lines and help).
    command: ClassVar[str]
    # The app's package, e.g. "apps.sentiment": its docstring is the CLI's help text.
    package: ClassVar[str]
    config_class: ClassVar[type]
    presets: ClassVar[Mapping[str, Callable[[], Any]]]
    default_preset: ClassVar[str] = "base"
    # The logged metric that checkpoints, early stopping and tuning follow: a metric of the
    # compiled model or one that `evaluation.validation_callbacks` adds.
    monitor: ClassVar[str] = "val_loss"
    monitor_mode: ClassVar[str] = "min"
    # The dotted config fields `choose_after_training` sets; training calls it only when there
    # are some, and a rerun of a finished run does not count them as another config.
    chosen_after_training_fields: ClassVar[tuple[str, ...]] = ()
    # Whether training calls `calibrate_after_training` on the best checkpoint.
    calibrates_after_training: ClassVar[bool] = False

    def _module(self, name: str) -> Any:
        return importlib.import_module(f"{self.package}.{name}")

    @property
    def description(self) -> str:
        return importlib.import_module(self.package).__doc__ or ""

    @property
    def data(self) -> DataModule:
        return self._module("data")

    @property
    def model(self) -> ModelModule:
        return self._module("model")

    @property
    def evaluation(self) -> EvaluationModule:
        return self._module("evaluation")

    @property
    def serving(self) -> ServingModule:
        return self._module("serving")

    @property
    def search_space(self) -> SearchSpaceModule:
        return self._module("search_space")

    def make_config(self, preset: str) -> ConfigT:
        if preset not in self.presets:
            raise UserError(
                f"unknown preset {preset!r}; valid presets: {', '.join(sorted(self.presets))}"
            )
        return self.presets[preset]()

    def complete_config(self, config: ConfigT) -> ConfigT:
        """Fills the settings the app derives from the data (a series' seasons, say) once the
        preset, file and overrides are applied, before `train` or `tune` writes the config;
        the config as it is by default."""
        return config

    def choose_after_training(
        self, model: keras.Model, config: ConfigT, datasets: Datasets
    ) -> ConfigT:
        """The config with settings chosen on the validation split once training has ended
        (`model` is the best checkpoint), e.g. translation's decoding; training writes it into
        the work dir's config, which `evaluate` and `export` read. Called only for an app that
        lists the fields it sets in `chosen_after_training_fields`."""
        return config

    def calibrate_after_training(
        self, model: keras.Model, config: ConfigT, datasets: Datasets
    ) -> bool:
        """Adjusts `model` (the best checkpoint) in place with values fitted on the validation
        split once training has ended, e.g. forecasting's interval offsets; True when it
        changed the model, which training then saves as the checkpoint. Called only for an
        app that sets `calibrates_after_training`, before the run is recorded as finished, so
        it must change nothing on a model it has calibrated (a resumed run calls it again)."""
        return False

    def add_commands(self, commands: argparse._SubParsersAction) -> None:
        """Adds the app's own subcommands to the CLI (none by default).

        Each parser sets `run=callable(app, args)` with `set_defaults`.
        """
