"""Writes SavedModels the way TF Serving reads them, and loads them back for `predict`.

Layout under the export root (default `saved_models/`):

    <app>/<version>/saved_model.pb, variables/, assets/,
                    assets.extra/tf_serving_warmup_requests
    models.config             ModelServerConfig listing every app found under the root
    batching.config           BatchingParameters for --enable_batching

A version is written into a hidden temporary folder and renamed into place, so a server that
polls the folder never sees half a model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from apps.core.app import App

WARMUP_FILE = "tf_serving_warmup_requests"

BATCHING_CONFIG = """\
max_batch_size { value: 64 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 4 }
pad_variable_length_inputs: true
"""


def next_version(app_dir: Path) -> int:
    versions = [int(path.name) for path in app_dir.glob("*") if path.name.isdigit()]
    return max(versions, default=0) + 1


def warmup_records(model_name: str, request: dict[str, np.ndarray], count: int) -> list[bytes]:
    """Serialized PredictionLog records that TF Serving replays before it takes traffic."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    predict_request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
    )
    for name, value in request.items():
        predict_request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=predict_request)
    )
    return [log.SerializeToString()] * count


def write_server_config(export_root: Path) -> None:
    """models.config naming every app under the root, mounted at /models/<app> (see README)."""
    entries = []
    for app_dir in sorted(path for path in export_root.iterdir() if path.is_dir()):
        if any(version.name.isdigit() for version in app_dir.iterdir()):
            entries.append(
                "  config {\n"
                f'    name: "{app_dir.name}"\n'
                f'    base_path: "/models/{app_dir.name}"\n'
                '    model_platform: "tensorflow"\n'
                "  }\n"
            )
    (export_root / "models.config").write_text("model_config_list {\n" + "".join(entries) + "}\n")
    (export_root / "batching.config").write_text(BATCHING_CONFIG)


def export(
    app: App,
    model: keras.Model,
    config: Any,
    assets: Any,
    export_root: Path,
    version: int | None = None,
) -> Path:
    """Writes `app`'s serving signatures as `export_root/<app>/<version>/`; returns that path."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoints = app.serving.endpoints(model, config, assets)
    for resource in endpoints.resources:
        archive.track(resource)
    for name, function in endpoints.functions.items():
        archive.add_endpoint(name, function)
    app_dir = export_root / app.name
    app_dir.mkdir(parents=True, exist_ok=True)
    version = version or next_version(app_dir)
    final = app_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} exists already; choose another --version")
    staging = app_dir / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        archive.write_out(str(staging), verbose=False)
        extra = staging / "assets.extra"
        extra.mkdir()
        with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
            for record in warmup_records(
                app.name, app.serving.example_request(config), config.export.warmup_requests
            ):
                writer.write(record)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_server_config(export_root)
    return final


def resolve_saved_model(path: Path) -> Path | None:
    """`path` itself if it is a SavedModel, the newest version if it is an app's export folder."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted(int(child.name) for child in path.glob("*") if child.name.isdigit())
    for version in reversed(versions):
        if (path / str(version) / "saved_model.pb").is_file():
            return path / str(version)
    return None
