"""The shared export on a minimal app (tests/support/toy_app): atomic version folders claimed
safely by concurrent exports, models.config and batching.config, warm-up records for every
signature that run against it, empty batches, and the export's app metadata."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import toy_app
from command_lines import command_line
from tensorflow_serving.apis import prediction_log_pb2
from toy_app.app import APP

from apps.core import export, op_audit, training
from apps.core.app import Batching, Endpoints


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("toy") / "run"
    assert toy_app.main(command_line("train", "training.epochs=20", workdir=workdir)) == 0
    return workdir


def export_version(workdir, root, capsys, **options):
    status = toy_app.main(command_line("export", workdir=workdir, export_dir=root, **options))
    out = capsys.readouterr().out
    return status, out.strip().splitlines()[-1] if out.strip() else ""


def test_versions_are_numbered_and_published_whole(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    assert export_version(trained, root, capsys) == (0, str(root / "toy" / "1"))
    assert export_version(trained, root, capsys) == (0, str(root / "toy" / "2"))
    children = sorted(path.name for path in (root / "toy").iterdir())
    assert children == ["1", "2"]  # no staging folder left behind
    for version in children:
        folder = root / "toy" / version
        assert (folder / "saved_model.pb").is_file() and (folder / "variables").is_dir()
    assert export.resolve_saved_model(root / "toy") == root / "toy" / "2"


def test_an_existing_version_is_refused(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    assert export_version(trained, root, capsys, version=7)[0] == 0
    status = toy_app.main(command_line("export", workdir=trained, export_dir=root, version=7))
    assert status == 2 and "exists already" in capsys.readouterr().err


def test_a_failed_export_leaves_no_version(trained, tmp_path, monkeypatch):
    config, model, assets = training.load_trained(APP, trained)

    def broken_record(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "warmup_record", broken_record)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export(APP, model, config, assets, tmp_path)
    assert list((tmp_path / "toy").iterdir()) == []


def test_two_exports_at_once_both_publish_whole_distinct_versions(trained, tmp_path):
    root = tmp_path / "saved_models"
    code = "import sys, toy_app; sys.exit(toy_app.main(sys.argv[1:]))"
    support = str(Path(toy_app.__file__).parents[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([support, os.getcwd()])}
    arguments = command_line("export", workdir=trained, export_dir=root)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, *arguments],
            env=environment,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(2)
    ]
    results = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    printed = sorted(out.strip().splitlines()[-1] for out, _ in results)
    assert printed == [str(root / "toy" / "1"), str(root / "toy" / "2")]
    assert sorted(path.name for path in (root / "toy").iterdir()) == ["1", "2"]
    for version in ("1", "2"):
        assert (root / "toy" / version / "saved_model.pb").is_file()


def test_a_killed_exports_staging_folder_is_removed_by_the_next(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(finished.stdout)
    leftover = root / "toy" / f".tmp-{socket.gethostname()}-{dead_pid}-0123abcd"
    (leftover / "variables").mkdir(parents=True)
    running = root / "toy" / f".tmp-{socket.gethostname()}-{os.getpid()}-4567cdef"
    running.mkdir()
    assert export_version(trained, root, capsys)[0] == 0
    assert not leftover.exists() and running.exists()  # a live export's folder stays


def test_every_signature_answers_an_empty_batch(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    _, version = export_version(trained, root, capsys)
    signature = tf.saved_model.load(version).signatures["serving_default"]
    outputs = signature(x=tf.zeros([0, 3], tf.float32))
    assert outputs["sum"].shape == (0,) and outputs["sum"].dtype == tf.float32


def test_the_export_names_its_app_and_inputs(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    _, version = export_version(trained, root, capsys)
    metadata = json.loads(Path(version, "assets.extra", "rnn_suite.json").read_text())
    assert metadata == {
        "app": "toy",
        "command": "rnn-toy",
        "batching": {
            "max_batch_size": 32,
            "allowed_batch_sizes": [4, 32],
            "batch_timeout_micros": 500,
        },
        "pad_variable_length_inputs": False,
        "signatures": {"serving_default": {"x": {"dtype": "float32", "shape": [None, 3]}}},
    }


def test_each_version_brings_its_batching_and_the_server_file_suits_every_app(
    trained, tmp_path, capsys
):
    root = tmp_path / "saved_models"
    _, version = export_version(trained, root, capsys)
    assert Path(version, "batching_params.pbtxt").read_text() == (
        "max_batch_size { value: 1024 }\n"
        "enable_large_batch_splitting { value: true }\n"
        "max_execution_batch_size { value: 32 }\n"
        "batch_timeout_micros { value: 500 }\n"
        "max_enqueued_batches { value: 100 }\n"
        "num_batch_threads { value: 4 }\n"
        "allowed_batch_sizes: 4\n"
        "allowed_batch_sizes: 32\n"
        "pad_variable_length_inputs: false\n"
    )
    # Another app whose texts vary in length and whose batches are smaller.
    other = root / "other" / "1" / "assets.extra"
    other.mkdir(parents=True)
    (other / "rnn_suite.json").write_text(
        json.dumps({
            "batching": {
                "max_batch_size": 16,
                "allowed_batch_sizes": [1, 16],
                "batch_timeout_micros": 300,
            },
            "pad_variable_length_inputs": True,
        })
    )  # fmt: skip
    export.write_server_config(root)
    text = (root / "batching.config").read_text()
    assert "max_execution_batch_size { value: 16 }" in text
    assert "batch_timeout_micros { value: 300 }" in text
    assert re.findall(r"allowed_batch_sizes: (\d+)", text) == ["1", "4", "16"]
    assert "pad_variable_length_inputs: true" in text


@pytest.mark.parametrize("sizes", [(8, 64, 32), (8, 32), ()])
def test_batching_sizes_must_increase_to_the_maximum(sizes):
    with pytest.raises(ValueError, match="allowed_batch_sizes"):
        Batching(max_batch_size=64, allowed_batch_sizes=sizes, batch_timeout_micros=100)


def test_server_configs_list_every_app(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    export_version(trained, root, capsys)
    (root / "other" / "3").mkdir(parents=True)
    (root / "empty").mkdir()
    export.write_server_config(root)
    text = (root / "models.config").read_text()
    assert text.count("config {") == 2
    assert 'name: "other"' in text and 'base_path: "/models/toy"' in text
    assert 'name: "empty"' not in text
    assert "max_execution_batch_size { value: 32 }" in (root / "batching.config").read_text()


def test_warmup_records_vary_and_run_against_their_signature(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    _, version = export_version(trained, root, capsys)
    records = list(tf.data.TFRecordDataset(f"{version}/assets.extra/tf_serving_warmup_requests"))
    assert len(records) == 4
    loaded = tf.saved_model.load(version)
    example = APP.serving.example_request(None)["x"]
    # The whole example batch, then each example alone, in turn.
    expected = [example, example[:1], example[1:2], example]
    for record, expected_inputs in zip(records, expected, strict=True):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "toy"
        signature = request.model_spec.signature_name
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        np.testing.assert_array_equal(inputs["x"], expected_inputs)
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        np.testing.assert_allclose(outputs["sum"], expected_inputs.sum(axis=1), atol=0.2)


def test_predict_names_the_app_of_another_apps_export(trained, tmp_path, capsys):
    from apps.sentiment import main as sentiment_main

    root = tmp_path / "saved_models"
    _, version = export_version(trained, root, capsys)
    assert sentiment_main(["predict", "--model", version, "a fine film"]) == 2
    assert capsys.readouterr().err == (
        f"error: --model {version}: an export of the toy app (inputs: x); answer it with "
        "`rnn-toy predict`, or give rnn-sentiment a sentiment export\n"
    )


def test_a_run_that_loads_tensorflow_prints_no_native_log_lines(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    _, version = export_version(trained, root, capsys)
    code = "import sys, toy_app; sys.exit(toy_app.main(sys.argv[1:]))"
    support = str(Path(toy_app.__file__).parents[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([support, os.getcwd()])}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    completed = subprocess.run(
        [sys.executable, "-c", code, *command_line("predict 1 2 3", model=version)],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0 and completed.stderr == ""
    assert json.loads(completed.stdout)["sum"] == pytest.approx(6.0, abs=0.2)


def test_an_export_whose_graph_runs_python_is_not_published(trained, tmp_path, monkeypatch):
    config, model, assets = training.load_trained(APP, trained)

    def python_endpoints(model, config, assets):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def serve(x):
            total = tf.numpy_function(lambda values: values.sum(axis=1), [x], tf.float32)
            return {"sum": tf.ensure_shape(total, [None])}

        return Endpoints(functions={"serving_default": serve})

    monkeypatch.setattr(APP.serving, "endpoints", python_endpoints)
    with pytest.raises(RuntimeError, match=r"runs Python: PyFunc"):
        export.export(APP, model, config, assets, tmp_path)
    assert list((tmp_path / "toy").iterdir()) == []


def test_the_op_audit_knows_core_and_tf_text_ops(trained, tmp_path, capsys):
    registered = op_audit.registered_ops()
    assert {"MatMul", "StatefulPartitionedCall", "PyFunc"} <= registered["core"]
    assert {"RegexSplitWithOffsets", "NormalizeUTF8"} <= registered["text"]
    _, version = export_version(trained, tmp_path / "saved_models", capsys)
    assert "MatMul" in op_audit.graph_ops(Path(version))
    assert op_audit.unservable_ops(Path(version)) == {}


def test_labels_pin_versions_and_keep_prunes_the_rest(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    assert export_version(trained, root, capsys, label="stable")[0] == 0  # version 1
    export_version(trained, root, capsys)
    export_version(trained, root, capsys)
    status = toy_app.main(command_line("export", workdir=trained, export_dir=root, keep=2))
    assert status == 0 and "deleted version 2 (--keep 2)" in capsys.readouterr().err
    assert export.versions(root / "toy") == [1, 3, 4]  # the labelled version stays
    text = (root / "models.config").read_text()
    assert "model_version_policy { specific { versions: 1 versions: 4 } }" in text
    assert 'version_labels { key: "stable" value: 1 }' in text

    assert toy_app.main(["label", "4", "canary", "--export-dir", str(root)]) == 0
    text = (root / "models.config").read_text()
    assert 'version_labels { key: "canary" value: 4 }' in text
    assert 'version_labels { key: "stable" value: 1 }' in text
    assert toy_app.main(["label", "2", "canary", "--export-dir", str(root)]) == 2
    assert "no version 2 to label (versions: 1, 3, 4)" in capsys.readouterr().err
    assert toy_app.main(["label", "3", "Canary!", "--export-dir", str(root)]) == 2


def test_saved_model_cli_lists_the_signature_and_its_ops(trained, tmp_path, capsys):
    _, version = export_version(trained, tmp_path / "saved_models", capsys)
    command = Path(sys.executable).with_name("saved_model_cli")
    shown = subprocess.run(
        [str(command), "show", "--dir", version, "--all"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "signature_def['serving_default']" in shown.stdout
    assert "inputs['x'] tensor_info:" in shown.stdout and "outputs['sum']" in shown.stdout
    listed = subprocess.run(
        [str(command), "show", "--dir", version, "--tag_set", "serve", "--list_ops"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    counted = ast.literal_eval(
        listed.stdout.split("contains the following ops: ")[1].split("\n")[0]
    )
    assert "AssignVariableOp" in counted and counted <= op_audit.graph_ops(Path(version))
