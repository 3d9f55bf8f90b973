"""The shared export on a minimal app (tests/support/toy_app): atomic version folders,
models.config and batching.config, warm-up records that run against their signature."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import toy_app
from command_lines import command_line
from tensorflow_serving.apis import prediction_log_pb2
from toy_app.app import APP

from apps.core import export, training


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

    def broken_request(config):
        raise RuntimeError("no example")

    monkeypatch.setattr(APP.serving, "example_request", broken_request)
    with pytest.raises(RuntimeError, match="no example"):
        export.export(APP, model, config, assets, tmp_path)
    assert list((tmp_path / "toy").iterdir()) == []


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
    assert "max_batch_size" in (root / "batching.config").read_text()


def test_warmup_records_run_against_their_signature(trained, tmp_path, capsys):
    root = tmp_path / "saved_models"
    _, version = export_version(trained, root, capsys)
    records = list(tf.data.TFRecordDataset(f"{version}/assets.extra/tf_serving_warmup_requests"))
    assert len(records) == 4
    loaded = tf.saved_model.load(version)
    expected = APP.serving.example_request(None)
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "toy"
        signature = request.model_spec.signature_name
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        np.testing.assert_array_equal(inputs["x"], expected["x"])
        outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        np.testing.assert_allclose(outputs["sum"], expected["x"].sum(axis=1), atol=0.2)
