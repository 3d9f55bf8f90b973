"""Typed, nested dataclass configs with presets, `key=value` overrides and JSON round trips.

Every app config is a dataclass whose fields are dataclasses (`data`, `model`, `training`,
`export`, ...) holding plain values: bool, int, float, str, a `typing.Literal` of choices,
tuples of those, or `None`able versions of them. Overrides address fields by dotted path
(`model.units=64`) and are parsed by the field's declared type, so a typo or a wrong type
fails with a message that names the valid keys, the expected type or the valid choices.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from apps.core.errors import UserError


@dataclasses.dataclass
class DataConfig:
    """Where the examples come from and how they are split; each app's `DataConfig` extends it
    with its own fields (columns, lengths) and defaults."""

    # A dataset name, "tfds:NAME", or a path to the user's own file or folder.
    source: str = ""
    # Seeded shuffle, then test and validation carved off (apps whose examples are in time
    # order split in that order instead and take no seed).
    split_seed: int = 0
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    # Use only about N examples (0 = all): the first ones of each split after the shuffle, or
    # the last N time steps of a series.
    limit: int = 0


@dataclasses.dataclass
class TrainingConfig:
    """Optimization settings shared by every app."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    # Gradient clipping by global norm; 0 disables it.
    clip_norm: float = 1.0
    early_stopping_patience: int = 3
    seed: int = 1337
    # "default" (one device), "mirrored" (the GPUs of one machine), "multi-worker" (TF_CONFIG).
    strategy: typing.Literal["default", "mirrored", "multi-worker"] = "default"
    # Batches between two crash backups (BackupAndRestore); 0 backs up at each epoch end.
    backup_every_steps: int = 0
    # Batches run per call into the compiled training graph (fewer Python round trips).
    steps_per_execution: int = 1
    # The Keras dtype policy of the model's layers while it is built: "mixed_float16" (GPUs,
    # with loss scaling), "mixed_bfloat16" (CPUs and TPUs that have it), "auto" (mixed_float16
    # when a GPU is visible, else off). The output layers stay float32.
    mixed_precision: typing.Literal["off", "mixed_float16", "mixed_bfloat16", "auto"] = "off"
    # "constant", or "cosine": a linear warm-up from 0 over `warmup_steps`, then a cosine decay
    # to `learning_rate * final_learning_rate_fraction` at the run's last step (epochs times
    # the training batches per epoch).
    learning_rate_schedule: typing.Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    final_learning_rate_fraction: float = 0.1
    # Polyak averaging: the optimizer keeps an exponential moving average of the weights with
    # this momentum per step (Keras' `use_ema`), and validation, checkpoints, early stopping
    # and so the export use the average (`training.averaged_weights`); 0: off.
    ema_momentum: float = 0.0


@dataclasses.dataclass
class ExportConfig:
    """Where and how a trained model is written for TF Serving."""

    export_dir: str = "saved_models"
    # How many synthetic requests go into assets.extra/tf_serving_warmup_requests.
    warmup_requests: int = 4


def field_paths(config: Any, prefix: str = "") -> dict[str, type]:
    """Maps every dotted leaf path of `config` to its declared type."""
    paths = {}
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        path = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            paths.update(field_paths(value, path + "."))
        else:
            paths[path] = hints[field.name]
    return paths


def _choice_error(key: str, choices: tuple, value: Any) -> str:
    return f"{key}: expected one of {', '.join(map(str, choices))}; got {value!r}"


def parse_value(text: str, annotation: Any, key: str) -> Any:
    """Parses the override string `text` into a value of type `annotation`."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        for choice in arguments:
            if text == str(choice):
                return choice
        raise UserError(_choice_error(key, arguments, text))
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in arguments:
            return None
        (inner,) = [argument for argument in arguments if argument is not type(None)]
        return parse_value(text, inner, key)
    if origin is tuple:
        items = [item.strip() for item in text.split(",") if item.strip()]
        item_type = arguments[0] if arguments else str
        return tuple(parse_value(item, item_type, key) for item in items)
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise UserError(f"{key}: expected a boolean (true/false), got {text!r}")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise UserError(f"{key}: expected {annotation.__name__}, got {text!r}") from None
    if annotation is str:
        return text
    raise TypeError(f"{key}: unsupported config type {annotation!r}")


def _check_value(value: Any, annotation: Any, key: str) -> Any:
    """Validates a JSON value against `annotation`; returns it converted (lists -> tuples)."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        if not any(type(value) is type(choice) and value == choice for choice in arguments):
            raise UserError(_choice_error(key, arguments, value))
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        (inner,) = [argument for argument in arguments if argument is not type(None)]
        return _check_value(value, inner, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{key}: expected a list, got {value!r}")
        item_type = arguments[0] if arguments else str
        return tuple(_check_value(item, item_type, key) for item in value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise UserError(f"{key}: expected int, got {value!r}")
    if not isinstance(value, annotation):
        raise UserError(f"{key}: expected {annotation.__name__}, got {value!r}")
    return value


def _set_path(config: Any, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target = config
    for parent in parents:
        target = getattr(target, parent)
    setattr(target, leaf, value)


def apply_overrides(config: Any, overrides: list[str]) -> Any:
    """Applies `key=value` strings to `config` in place and returns it."""
    paths = field_paths(config)
    for override in overrides:
        key, separator, text = override.partition("=")
        key = key.strip()
        if not separator:
            raise UserError(f"--set expects key=value, got {override!r}")
        if key not in paths:
            raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(paths))}")
        _set_path(config, key, parse_value(text.strip(), paths[key], key))
    return config


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(config_class: type, values: dict, source: str = "config") -> Any:
    """Builds `config_class` from nested `values`, rejecting unknown keys and wrong types."""
    config = config_class()
    paths = field_paths(config)

    def walk(node: dict, prefix: str) -> None:
        for name, value in node.items():
            path = f"{prefix}{name}"
            if isinstance(value, dict):
                walk(value, path + ".")
            elif path not in paths:
                raise UserError(
                    f"{source}: unknown config key {path!r}; valid keys: {', '.join(sorted(paths))}"
                )
            else:
                _set_path(config, path, _check_value(value, paths[path], path))

    walk(values, "")
    return config


def save(config: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2) + "\n")


def load(config_class: type, path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    return from_dict(config_class, values, source=str(path))
