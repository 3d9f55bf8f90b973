"""The contract between an app and the shared CLI, training, export and tuning code.

An app subclasses `App` in `apps/<name>/__init__.py`, filling in the hooks from its five files
(config, data, model, serving, search_space). Everything else (the CLI, training loop,
callbacks, export layout, tuning) lives in `apps.core` and works the same for every app.

Lifecycle of a work dir:
    train     config.json, assets/ (preprocessing state fitted on the training split),
              model.keras (best checkpoint) and model.json (its score), backup/ (crash
              recovery), logs/ (TensorBoard), history.csv, training-curves.png
    evaluate  metrics.json and the app's plots
    export    saved_models/<app>/<version>/
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf


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
    that are not part of the model but hold state the functions use (e.g. a TextVectorization
    and its lookup table), so the export tracks them.
    """

    functions: dict[str, Any]
    resources: list[Any] = dataclasses.field(default_factory=list)


class App:
    """Hooks an app fills in; see the module docstring for the work-dir lifecycle."""

    name: str = ""
    # The console script, e.g. "rnn-sentiment" (usage lines and help).
    command: str = ""
    config_class: type = object
    presets: dict[str, Callable[[], Any]] = {}
    default_preset: str = "base"
    # The logged metric that checkpoints, early stopping and tuning follow: a metric of the
    # compiled model or one that `validation_callbacks` adds.
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    assets_class: type[Assets] = Assets

    def make_config(self, preset: str) -> Any:
        if preset not in self.presets:
            from apps.core.errors import UserError

            raise UserError(
                f"unknown preset {preset!r}; valid presets: {', '.join(sorted(self.presets))}"
            )
        return self.presets[preset]()

    def load_data(
        self, config: Any, assets: Assets | None = None, whole_as_test: bool = False
    ) -> Datasets:
        """Reads `config.data.source`, splits it and builds batched datasets.

        With `assets=None` the preprocessing state is fitted on the training split; otherwise
        the given state is used. With `whole_as_test=True` every example goes to `test`
        (evaluation on a user file) and `train`/`validation` are `None`.
        """
        raise NotImplementedError

    def build_model(self, config: Any, assets: Assets) -> keras.Model:
        """Returns the compiled training model (built with `apps.core.training.optimizer`)."""
        raise NotImplementedError

    def validation_callbacks(
        self, config: Any, datasets: Datasets
    ) -> list[keras.callbacks.Callback]:
        """Callbacks that add the app's own validation metrics (e.g. BLEU) to each epoch's logs.

        Training and tuning run them before the history, checkpoint, early-stopping and tuner
        callbacks read the logs. None by default.
        """
        return []

    def evaluate(
        self, model: keras.Model, config: Any, datasets: Datasets, workdir: Path
    ) -> dict[str, Any]:
        """Scores `datasets.test`, writes the app's plots into `workdir`, returns metrics."""
        raise NotImplementedError

    def endpoints(self, model: keras.Model, config: Any, assets: Assets) -> Endpoints:
        """The serving signatures of the export (see `Endpoints`)."""
        raise NotImplementedError

    def example_request(self, config: Any) -> dict[str, np.ndarray]:
        """A small raw request for `serving_default` (warmup records, smoke tests)."""
        raise NotImplementedError

    def read_inputs(
        self, inputs: list[str], input_file: Path | None, input_specs: dict[str, tf.TensorSpec]
    ) -> dict[str, np.ndarray]:
        """Turns `predict` CLI inputs into a `serving_default` request."""
        raise NotImplementedError

    def format_outputs(
        self, request: dict[str, np.ndarray], outputs: dict[str, np.ndarray]
    ) -> list[dict[str, Any]]:
        """Turns a request and its `serving_default` outputs into one dict per example."""
        raise NotImplementedError

    def write_predictions(self, rows: list[dict[str, Any]], output: Path | None) -> None:
        """Writes `predict` results: JSON lines on stdout (or into `output`) by default."""
        from apps.core.cli import write_json_lines

        write_json_lines(rows, output)

    def add_commands(self, commands: Any) -> None:
        """Adds the app's own subcommands to the CLI's argparse subparsers (none by default).

        Each parser sets `run=callable(app, args)` with `set_defaults`.
        """

    def search_space(self, hp: Any, config: Any) -> Any:
        """Maps KerasTuner `hp` onto a copy of `config` (apps/<name>/search_space.py)."""
        raise NotImplementedError
