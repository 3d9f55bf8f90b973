"""Writes SavedModels the way TF Serving reads them, and loads them back for `predict`.

Layout under the export root (default `saved_models/`):

    <app>/<version>/saved_model.pb, variables/, assets/,
                    batching_params.pbtxt                     (the app's batching parameters)
                    assets.extra/tf_serving_warmup_requests   (every signature)
                    assets.extra/rnn_suite.json               (the app, its signatures and
                                                               batching parameters)
    <app>/labels.json         version labels ({"stable": 3, "canary": 4}), set by
                              `export --label` and the `label` subcommand
    models.config             ModelServerConfig listing every app found under the root, with
                              its version policy and labels
    batching.config           BatchingParameters for --enable_batching: the batch threads,
                              and for a server without --enable_per_model_batching_parameters
                              the most cautious of the apps' parameters

A version is written into a hidden staging folder and renamed into place, so a server that
polls the folder never sees half a model. The rename is what claims the version number:
when two exports of one app run at once and the other takes the number first, the rename
fails and this export takes the next one. A staging folder left by a killed export is
removed by the next export on the same machine.

Before a version is published, every signature answers its warm-up requests (TF Serving
refuses to load a model whose warm-up fails), every signature answers an empty batch with
empty outputs (`answer_empty_batches`), and the graph passes the op audit (`op_audit`: only
ops of core TensorFlow and TF Text, none that runs Python).
"""

from __future__ import annotations

import dataclasses
import errno
import inspect
import json
import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from apps.core import op_audit
from apps.core.app import Batching, Endpoints
from apps.core.errors import UserError

if TYPE_CHECKING:
    from apps.core.app import App

WARMUP_FILE = "tf_serving_warmup_requests"
LABELS_FILE = "labels.json"
LABEL_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
METADATA_FILE = "rnn_suite.json"
STAGING_PREFIX = ".tmp-"

BATCHING_PARAMS_FILE = "batching_params.pbtxt"


def has_variable_length_inputs(endpoints: Endpoints) -> bool:
    """Whether an input of any signature has a dimension of unknown size beyond the batch
    (requests of different lengths then need padding to share a batch)."""
    return any(
        None in spec.shape.as_list()[1:]
        for function in endpoints.functions.values()
        for spec in function.input_signature
    )


def most_cautious(parameters: list[dict[str, Any]]) -> Batching:
    """One set of batching parameters that suits every app: the smallest maximum and timeout,
    the allowed sizes up to that maximum."""
    largest = min(item["max_batch_size"] for item in parameters)
    sizes = sorted({size for item in parameters for size in item["allowed_batch_sizes"]})
    return Batching(
        max_batch_size=largest,
        allowed_batch_sizes=tuple(size for size in sizes if size < largest) + (largest,),
        batch_timeout_micros=min(item["batch_timeout_micros"] for item in parameters),
    )


def answer_empty_batches(function: Any) -> Any:
    """`function` (a `tf.function` with a named `input_signature`) that answers a batch of
    zero examples with zero-length outputs of the same dtypes, without running the model.

    A recurrent layer cannot run over the zero time steps an empty batch of texts tokenizes
    to, and TF Serving's batcher or a client may send an empty batch; one `tf.cond` on the
    batch size here spares every app its own.
    """
    specs = list(function.input_signature)
    output_specs = function.get_concrete_function().structured_outputs

    def empty_outputs():
        return {
            name: tf.zeros([0, *[size or 0 for size in spec.shape[1:]]], spec.dtype)
            for name, spec in output_specs.items()
        }

    def guarded(*inputs):
        return tf.cond(tf.shape(inputs[0])[0] > 0, lambda: function(*inputs), empty_outputs)

    # Keyword calls by input name (as `predict` and the SavedModel signatures make them).
    guarded.__signature__ = inspect.Signature(
        [inspect.Parameter(spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for spec in specs]
    )
    return tf.function(guarded, input_signature=specs)


def serving_endpoints(app: App, model: keras.Model, config: Any, assets: Any) -> Endpoints:
    """The app's endpoints, each answering an empty batch (see `answer_empty_batches`)."""
    endpoints = app.serving.endpoints(model, config, assets)
    functions = {name: answer_empty_batches(f) for name, f in endpoints.functions.items()}
    return dataclasses.replace(endpoints, functions=functions)


def input_names(function: Any) -> list[str]:
    return [spec.name for spec in function.input_signature]


def warmup_requests(
    function: Any, example: dict[str, np.ndarray], count: int
) -> list[dict[str, np.ndarray]]:
    """`count` varied requests for one signature from the app's example: the whole example
    batch, then its examples one at a time, in turn."""
    names = input_names(function)
    missing = [name for name in names if name not in example]
    if missing:
        raise ValueError(f"example_request has no {', '.join(missing)} for a signature")
    batch = {name: np.asarray(example[name]) for name in names}
    rows = len(batch[names[0]])
    variants = [batch] + [{name: value[row : row + 1] for name, value in batch.items()}
                          for row in range(rows)]  # fmt: skip
    return [variants[index % len(variants)] for index in range(count)]


def warmup_record(model_name: str, signature_name: str, request: dict[str, np.ndarray]) -> bytes:
    """A serialized PredictionLog record that TF Serving replays before it takes traffic."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    predict_request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
    )
    for name, value in request.items():
        predict_request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=predict_request)
    )
    return log.SerializeToString()


def check_answers(name: str, function: Any, request: dict[str, np.ndarray]) -> None:
    """Runs one request and an empty batch through a signature; a failure is a bug."""
    empty = {key: value[:0] for key, value in request.items()}
    for label, inputs in (("its warm-up request", request), ("an empty batch", empty)):
        rows = len(next(iter(inputs.values())))
        outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        wrong = [key for key, value in outputs.items() if value.shape[0] != rows]
        if wrong:
            raise RuntimeError(
                f"signature {name!r} answered {label} with {', '.join(wrong)} of another length"
            )


def signature_metadata(app: App, endpoints: Endpoints) -> dict[str, Any]:
    """What `predict`, a client and `models.config` need to know of an export: its app, its
    inputs and its batching parameters."""
    return {
        "app": app.name,
        "command": app.command,
        "batching": dataclasses.asdict(app.serving.BATCHING),
        "pad_variable_length_inputs": has_variable_length_inputs(endpoints),
        "signatures": {
            name: {
                spec.name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
                for spec in function.input_signature
            }
            for name, function in endpoints.functions.items()
        },
    }


def read_metadata(saved_model: Path) -> dict[str, Any] | None:
    path = saved_model / "assets.extra" / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_atomically(path: Path, text: str) -> None:
    """Writes `text` aside and renames it over `path`, so readers never see half a file."""
    staged = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    staged.write_text(text)
    os.replace(staged, path)


def versions(app_dir: Path) -> list[int]:
    """The published versions of an app's export folder, oldest first."""
    return sorted(int(path.name) for path in app_dir.glob("*") if path.name.isdigit())


def read_labels(app_dir: Path) -> dict[str, int]:
    path = app_dir / LABELS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def model_config_entry(app_dir: Path) -> str:
    """One app's `config { ... }`: TF Serving's default policy (the newest version) unless
    versions are labelled; then the labelled versions and the newest, with their labels."""
    labels = read_labels(app_dir)
    lines = [
        f'    name: "{app_dir.name}"',
        f'    base_path: "/models/{app_dir.name}"',
        '    model_platform: "tensorflow"',
    ]
    if labels:
        served = sorted({*labels.values(), versions(app_dir)[-1]})
        specific = " ".join(f"versions: {version}" for version in served)
        lines.append(f"    model_version_policy {{ specific {{ {specific} }} }}")
        for label, version in sorted(labels.items()):
            lines.append(f'    version_labels {{ key: "{label}" value: {version} }}')
    return "  config {\n" + "\n".join(lines) + "\n  }\n"


def write_server_config(export_root: Path) -> None:
    """models.config naming every app under the root, mounted at /models/<app> (see README),
    and batching.config: the most cautious batching parameters of the apps' newest versions."""
    app_dirs = [
        app_dir
        for app_dir in sorted(path for path in export_root.iterdir() if path.is_dir())
        if versions(app_dir)
    ]
    text = "model_config_list {\n" + "".join(map(model_config_entry, app_dirs)) + "}\n"
    write_atomically(export_root / "models.config", text)
    newest = [read_metadata(app_dir / str(versions(app_dir)[-1])) or {} for app_dir in app_dirs]
    chosen = [metadata for metadata in newest if "batching" in metadata]
    if chosen:
        batching = most_cautious([metadata["batching"] for metadata in chosen])
        pad = any(metadata["pad_variable_length_inputs"] for metadata in chosen)
        write_atomically(export_root / "batching.config", batching.text(pad))


def set_label(export_root: Path, app_name: str, label: str, version: int) -> None:
    """Points `label` (e.g. "stable", "canary") at `version` and rewrites models.config."""
    app_dir = export_root / app_name
    if not LABEL_PATTERN.fullmatch(label):
        raise UserError(f"label {label!r}: use lowercase letters, digits, '-' and '_'")
    if version not in versions(app_dir):
        published = ", ".join(map(str, versions(app_dir))) or "none"
        raise UserError(f"{app_dir}: no version {version} to label (versions: {published})")
    write_atomically(app_dir / LABELS_FILE, json.dumps({**read_labels(app_dir), label: version}))
    write_server_config(export_root)


def prune_versions(export_root: Path, app_name: str, keep: int) -> list[int]:
    """Deletes all but the `keep` newest versions, never a labelled one; returns the deleted."""
    app_dir = export_root / app_name
    labelled = set(read_labels(app_dir).values())
    doomed = [version for version in versions(app_dir)[:-keep] if version not in labelled]
    for version in doomed:
        shutil.rmtree(app_dir / str(version))
    write_server_config(export_root)
    return doomed


def next_version(app_dir: Path) -> int:
    return max(versions(app_dir), default=0) + 1


def process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_abandoned_staging(app_dir: Path) -> None:
    """Deletes the staging folders of exports on this machine whose process is gone."""
    host = socket.gethostname()
    for folder in app_dir.glob(f"{STAGING_PREFIX}*"):
        parts = folder.name[len(STAGING_PREFIX) :].rsplit("-", 2)
        mine = len(parts) == 3 and parts[0] == host and parts[1].isdigit()
        if mine and not process_is_alive(int(parts[1])):
            shutil.rmtree(folder, ignore_errors=True)
            print(f"removed {folder} (left by an export that was killed)")


def publish(staging: Path, app_dir: Path, version: int | None) -> Path:
    """Renames `staging` to its version folder: `version`, or the next free number."""
    while True:
        final = app_dir / str(version or next_version(app_dir))
        try:
            staging.rename(final)  # fails when `final` exists and holds a model
            return final
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if version:
                raise FileExistsError(f"{final} exists already; choose another --version") from None


def export(
    app: App,
    model: keras.Model,
    config: Any,
    assets: Any,
    export_root: Path,
    version: int | None = None,
) -> Path:
    """Writes `app`'s serving signatures as `export_root/<app>/<version>/`; returns that path."""
    app_dir = export_root / app.name
    if version and (app_dir / str(version)).exists():
        raise FileExistsError(f"{app_dir / str(version)} exists already; choose another --version")
    endpoints = serving_endpoints(app, model, config, assets)
    example = app.serving.example_request(config)
    warmups = {
        name: warmup_requests(function, example, config.export.warmup_requests)
        for name, function in endpoints.functions.items()
    }
    for name, function in endpoints.functions.items():
        check_answers(name, function, warmups[name][0])
    archive = keras.export.ExportArchive()
    archive.track(model)
    for resource in endpoints.resources:
        archive.track(resource)
    for name, function in endpoints.functions.items():
        archive.add_endpoint(name, function)
    app_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(app_dir)
    staging = (
        app_dir / f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )
    try:
        archive.write_out(str(staging), verbose=False)
        extra = staging / "assets.extra"
        extra.mkdir()
        with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
            for name, requests in warmups.items():
                for request in requests:
                    writer.write(warmup_record(app.name, name, request))
        metadata = signature_metadata(app, endpoints)
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        (staging / BATCHING_PARAMS_FILE).write_text(
            app.serving.BATCHING.text(metadata["pad_variable_length_inputs"])
        )
        problems = op_audit.unservable_ops(staging)
        if problems:
            found = "; ".join(f"{reason}: {', '.join(ops)}" for reason, ops in problems.items())
            raise RuntimeError(f"not published: the graph holds ops TF Serving lacks ({found})")
        final = publish(staging, app_dir, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_server_config(export_root)
    return final


def resolve_saved_model(path: Path) -> Path | None:
    """`path` itself if it is a SavedModel, the newest version if it is an app's export folder."""
    if (path / "saved_model.pb").is_file():
        return path
    for version in reversed(versions(path)):
        if (path / str(version) / "saved_model.pb").is_file():
            return path / str(version)
    return None
