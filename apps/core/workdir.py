"""A work dir's files and its lifecycle: fresh, resumed, or refused (no TensorFlow needed, so
`train` refuses a finished run before the libraries load)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from apps.core import config as config_lib
from apps.core.errors import UserError

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
# ModelCheckpoint writes here; PublishCheckpoint renames it over MODEL_FILE once complete.
STAGED_MODEL_FILE = "model.staged.keras"
# The monitor value and epoch of MODEL_FILE, written when it is published; when training ends,
# also `finished: true`, the epochs run and why it stopped (`stop`: "early_stopping", "nan" or
# "epochs"). A work dir whose record says finished holds a finished run; `train` keeps it.
MODEL_RECORD_FILE = "model.json"
ASSETS_DIR = "assets"
BACKUP_DIR = "backup"
HISTORY_FILE = "history.csv"


def run_record(workdir: Path) -> dict[str, Any]:
    """The work dir's `model.json` (empty when there is none)."""
    record = workdir / MODEL_RECORD_FILE
    return json.loads(record.read_text()) if record.is_file() else {}


def stop_reason(record: dict[str, Any]) -> str:
    """Why a finished run stopped, from its record: "stopped early at epoch 3, best epoch 1"."""
    epochs, best = record["epochs_run"], f"best epoch {record['epoch']}"
    if record["stop"] == "early_stopping":
        return f"stopped early at epoch {epochs}, {best}"
    if record["stop"] == "nan":
        return f"stopped at epoch {epochs} when the loss became NaN, {best}"
    return f"ran all {epochs} epochs, {best}"


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], ignored: tuple[str, ...] = (), prefix: str = ""
) -> list:
    """The dotted fields whose values differ between two config dicts, with both values;
    not the `ignored` ones."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += config_differences(old, new, ignored, f"{prefix}{key}.")
        elif old != new and f"{prefix}{key}" not in ignored:
            differences.append(f"{prefix}{key} {json.dumps(old)} -> {json.dumps(new)}")
    return differences


def set_aside(workdir: Path) -> Path:
    """Renames `workdir` to `<workdir>.old-<local time>` (a free name) and returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = workdir.with_name(f"{workdir.name}.old-{stamp}")
    count = 1
    while target.exists():
        count += 1
        target = workdir.with_name(f"{workdir.name}.old-{stamp}-{count}")
    workdir.rename(target)
    return target


def prepare_workdir(
    config: Any, workdir: Path, overwrite: bool = False, chosen_fields: tuple[str, ...] = ()
) -> None:
    """Makes `workdir` ready for `config`: fresh, resumed, or refused.

    A work dir holds a run once it has a published model or a crash backup. A finished run
    (its record says so) is never trained again, and a run under another config is never
    resumed: both refuse with a `UserError` naming `--overwrite`; with `overwrite` the old work
    dir is renamed to `<workdir>.old-<time>` instead. An interrupted run under the same config
    resumes (with or without `overwrite`: it ends as a fresh run would). Anything else (a run
    that failed before its first epoch) is cleared. `chosen_fields` (dotted config paths)
    are the ones training chooses once it ends (`App.chosen_after_training_fields`): a
    finished run's values of them are its results, not a config of its own.
    """
    workdir = workdir.resolve()
    config_file = workdir / CONFIG_FILE
    record = run_record(workdir)
    finished = record.get("finished", False) and (workdir / MODEL_FILE).is_file()
    interrupted = not finished and (
        (workdir / MODEL_FILE).is_file() or (workdir / BACKUP_DIR).is_dir()
    )
    differences = []
    if finished or interrupted:
        saved = json.loads(config_file.read_text()) if config_file.is_file() else {}
        current = json.loads(json.dumps(config_lib.to_dict(config)))
        differences = config_differences(saved, current, chosen_fields)
    if (finished or differences) and overwrite:
        print(f"moved the earlier run in {workdir} to {set_aside(workdir)}")
    elif finished or differences:
        changes = "; ".join(differences[:3]) + (
            f"; and {len(differences) - 3} more" if len(differences) > 3 else ""
        )
        aside = f"--overwrite to move it to {workdir.name}.old-<time> and train anew"
        if finished and differences:
            raise UserError(
                f"{workdir} holds a finished run with another config ({changes}); use another "
                f"--workdir, or {aside}"
            )
        if finished:
            raise UserError(
                f"{workdir} holds a finished run ({stop_reason(record)}); evaluate or export "
                f"it, or {aside}"
            )
        raise UserError(
            f"{workdir} holds an interrupted run with another config ({changes}); rerun "
            f"its command to resume it, or {aside}"
        )
    elif interrupted and not (workdir / BACKUP_DIR).is_dir():
        print(f"restarting the interrupted run in {workdir}: it stopped before its first backup")
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / BACKUP_DIR).is_dir():
        # Nothing to resume: forget the history, checkpoint and preprocessing of a failed start.
        for name in (HISTORY_FILE, MODEL_FILE, STAGED_MODEL_FILE, MODEL_RECORD_FILE):
            (workdir / name).unlink(missing_ok=True)
        shutil.rmtree(workdir / ASSETS_DIR, ignore_errors=True)
    config_lib.save(config, config_file)
