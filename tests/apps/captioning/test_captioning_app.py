"""The captioning app end to end on the tiny preset, on coloured shapes captioned "a red circle
on a grey background" / "red circle": train, evaluate, export, a fresh-process REST request."""

from __future__ import annotations

import base64
import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from command_lines import command_line
from PIL import Image

from apps.captioning import main
from apps.captioning.app import APP
from apps.captioning.data import encoded_features, image_preprocessing
from apps.captioning.evaluation import caption_metrics
from apps.captioning.model import build_model, image_encoder
from apps.core import training
from apps.core.export import export
from layers.backbone import UnfreezeBackbone
from layers.cudnn import cudnn_problems
from pipelines.sources.shapes import render_shape, write_shapes


def png_bytes(array: np.ndarray) -> bytes:
    output = io.BytesIO()
    Image.fromarray(array).save(output, format="PNG")
    return output.getvalue()


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for two epochs on 240 shapes, evaluated and exported."""
    root = tmp_path_factory.mktemp("captioning")
    shapes = write_shapes(root / "shapes", 240, size=32)
    workdir = root / "run"
    arguments = command_line(
        "train --preset tiny", "training.epochs=2", workdir=workdir, data=shapes
    )
    assert main(arguments) == 0
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    export_root = root / "saved_models"
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    return {"root": root, "workdir": workdir, "export": export_root / "captioning" / "1"}


def test_evaluation_scores_model_and_baseline_side_by_side(trained):
    metrics = json.loads((trained["workdir"] / "metrics.json").read_text())
    assert metrics["split"] == {"train": 192, "validation": 24, "test": 24}
    assert metrics["captions"] == {"train": 384, "validation": 48, "test": 48}
    assert set(metrics["scores"]) == {"greedy", "beam2", "nearest_neighbour"}
    for scores in metrics["scores"].values():
        assert {"bleu1", "bleu4", "cider", "rouge_l", "exact_match"} <= set(scores)
        assert 0.0 <= scores["exact_match"] <= 1.0 and scores["bleu1"] >= scores["bleu4"]
    # The baseline copies training captions: every one of its answers is a real caption.
    sample = metrics["samples"][0]
    colour, shape = sample["references"][1].split()
    assert sample["references"][0] == f"a {colour} {shape} on a grey background"
    assert sample["nearest_neighbour"].endswith("on a grey background")


def test_fresh_process_answers_b64_images_including_odd_ones(trained, fresh_process_client):
    red_circle = render_shape("red", "circle", 32, seed=3)
    rgba = np.dstack([red_circle, np.full((32, 32), 255, np.uint8)])
    images = [
        png_bytes(red_circle),
        png_bytes(red_circle.mean(axis=-1).astype(np.uint8)),  # grayscale
        png_bytes(rgba),
        png_bytes(red_circle[:1, :1]),  # 1x1
        png_bytes(np.zeros((3000, 4000, 3), np.uint8)),  # 4000x3000
    ]
    answer = fresh_process_client(trained["export"], {"instances": [b64(i) for i in images]})
    assert answer["project_modules_loaded"] == []
    caption, score = answer["outputs"]["caption"], answer["outputs"]["score"]
    assert caption["dtype"] == "string" and caption["shape"] == [5]
    assert score["dtype"] == "float32" and score["shape"] == [5]
    assert all(value < 0.0 for value in score["value"])
    assert caption["value"][0] == caption["value"][2]  # opaque RGBA is the RGB image
    assert (trained["export"] / "assets.extra" / "tf_serving_warmup_requests").is_file()


def test_export_refuses_non_images_and_answers_empty_batches(trained):
    loaded = tf.saved_model.load(str(trained["export"]))
    assert set(loaded.signatures) == {"serving_default", "beam_search"}
    image = png_bytes(render_shape("blue", "square", 32, seed=4))
    for name in ("serving_default", "beam_search"):
        signature = loaded.signatures[name]
        empty = signature(image_bytes=tf.constant([], tf.string))
        assert empty["caption"].shape == (0,) and empty["score"].shape == (0,)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"index\] \[1\] \[is not a JPEG"):
            signature(image_bytes=tf.constant([image, b"hello, not an image"]))
        with pytest.raises(tf.errors.InvalidArgumentError, match="Input is empty|not a JPEG"):
            signature(image_bytes=tf.constant([b""]))
        single = signature(image_bytes=tf.constant([image]))
        batch = signature(image_bytes=tf.constant([image, image, image]))
        assert batch["caption"].numpy().tolist() == single["caption"].numpy().tolist() * 3


def test_predict_prints_json_lines_and_plots_attention(trained, capsys, tmp_path):
    paths = []
    for index, (colour, shape) in enumerate([("red", "circle"), ("green", "cross")]):
        paths.append(tmp_path / f"{colour}-{shape}.png")
        paths[-1].write_bytes(png_bytes(render_shape(colour, shape, 48, seed=index)))
    model = trained["export"].parent
    assert main(["predict", "--model", str(model), *map(str, paths)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["image"] for row in rows] == list(map(str, paths))
    assert all(isinstance(row["caption"], str) and row["score"] < 0.0 for row in rows)
    plots = tmp_path / "attention"
    arguments = ["predict", "--model", str(trained["workdir"]), "--plot-attention", str(plots)]
    assert main([*arguments, *map(str, paths)]) == 0
    written = sorted(path.name for path in plots.iterdir())
    assert written == ["000-red-circle.png", "001-green-cross.png"]
    assert (plots / written[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cached_features_equal_the_models_own(tmp_path):
    shapes = write_shapes(tmp_path / "shapes", 40, size=32)
    config = APP.make_config("tiny")
    config.data.source = str(shapes)
    config.model.backbone_training = "frozen"
    datasets = APP.data.load_data(config)
    assert datasets.summary["features_cached"]
    inputs, _, _ = next(iter(datasets.train))
    assert set(inputs) == {"features", "caption_in"}
    model = build_model(config, datasets.assets)
    assert model.takes_features and model.image_encoder.trainable_weights == []
    paths = datasets.images.test.paths
    cached = encoded_features(image_encoder(config), config, paths)
    images = image_preprocessing(config)(tf.constant(datasets.images.test.image_bytes()))
    np.testing.assert_allclose(cached, model.image_encoder(images), atol=1e-6)
    # Uncached, the same seed gives the same encoder: its features are the cached ones.
    config.model.cache_features = False
    uncached = build_model(config, datasets.assets)
    assert not uncached.takes_features
    np.testing.assert_allclose(cached, uncached.image_encoder(images), atol=1e-6)
    # A training step on cached features leaves the frozen encoder as it was, and the export
    # of the model trained on features takes image bytes.
    before = [weight.numpy() for weight in model.image_encoder.weights]
    model.fit(datasets.train.take(1), shuffle=False, verbose=0)
    for weight, value in zip(model.image_encoder.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)
    path = export(APP, model, config, datasets.assets, tmp_path / "saved_models")
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    answer = signature(image_bytes=tf.constant(datasets.images.test.image_bytes()[:2]))
    assert answer["caption"].shape == (2,) and answer["score"].shape == (2,)


def test_backbone_frozen_for_one_epoch_is_fine_tuned_from_the_second(tmp_path):
    config = APP.make_config("tiny")
    config.data.source = str(write_shapes(tmp_path / "shapes", 40, size=32))
    config.model.backbone_training = "frozen_then_fine_tune"
    config.model.frozen_epochs = 1
    datasets = APP.data.load_data(config)
    assert not datasets.summary["features_cached"]
    model = build_model(config, datasets.assets)
    unfreeze = [
        callback
        for callback in APP.evaluation.validation_callbacks(config, datasets)
        if isinstance(callback, UnfreezeBackbone)
    ]
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([weight.numpy() for weight in model.image_encoder.weights])

    initial = [weight.numpy() for weight in model.image_encoder.weights]
    model.fit(datasets.train, epochs=2, callbacks=[*unfreeze, Snapshot()], shuffle=False, verbose=0)
    assert model.image_encoder.trainable
    for first, start in zip(snapshots[0], initial, strict=True):
        np.testing.assert_array_equal(first, start)
    assert any(
        not np.allclose(second, first)
        for second, first in zip(snapshots[1], snapshots[0], strict=True)
    )


def test_caption_metrics_known_answers():
    references = [["a red circle", "red circle"], ["a blue square", "blue square"]]
    perfect = caption_metrics(references, ["red circle", "a blue square"])
    assert perfect["exact_match"] == 1.0 and perfect["bleu1"] == 100.0
    assert perfect["rouge_l"] == pytest.approx(1.0)
    # One word wrong in each: unigram precision 1/2 and 2/3, 3 of 5 hypothesis words.
    wrong = caption_metrics(references, ["red square", "a blue circle"])
    assert wrong["exact_match"] == 0.0
    assert wrong["bleu1"] == pytest.approx(60.0)
    assert 0.0 < wrong["cider"] < perfect["cider"]


def test_captions_file_problems_are_reported_by_name(tmp_path, capsys):
    shapes = write_shapes(tmp_path / "shapes", 30, size=32)
    captions = shapes / "captions.txt"
    (shapes / "broken.png").write_bytes(b"not an image at all")
    captions.write_text(
        captions.read_text()
        + "missing.png#0\ta caption\nbroken.png#0\tanother\nshape00000.png#2\t\n"
    )
    config = APP.make_config("tiny")
    config.data.source = str(shapes)
    summary = APP.data.load_data(config).summary
    assert summary["images"] == 30 and summary["skipped_images"] == 2
    assert summary["skipped"] == [
        "missing.png: missing",
        "broken.png: not a JPEG, PNG, GIF, BMP or WebP file",
    ]
    assert summary["skipped_empty_captions"] == 1


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        ("empty folder", [], "no captions file. Expected one named captions.txt"),
        (None, ["--data", "imaginary"], "unknown --data 'imaginary'"),
        (None, ["--set", "model.backbone=AlexNet"], "model.backbone: expected one of"),
        (None, ["--set", "model.colour=blue"], "unknown config key 'model.colour'"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, setup, args, expected):
    if setup == "empty folder":
        (tmp_path / "images").mkdir()
        args = ["--data", str(tmp_path / "images")]
    elif "--data" not in args:
        args = [*args, "--data", str(write_shapes(tmp_path / "shapes", 20, size=32))]
    code = main([*command_line("train --preset tiny", workdir=tmp_path / "run"), *args])
    error = capsys.readouterr().err.strip()
    assert code == 2 and expected in error and len(error.splitlines()) == 1, error


@pytest.mark.large
def test_tiny_model_learns_colour_and_shape_to_exact_match(tmp_path):
    shapes = write_shapes(tmp_path / "shapes", 1500, size=32, seed=1)
    workdir = tmp_path / "run"
    arguments = command_line(
        "train --preset tiny", "training.epochs=12", workdir=workdir, data=shapes
    )
    assert main(arguments) == 0
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    scores = json.loads((workdir / "metrics.json").read_text())["scores"]
    assert scores["greedy"]["exact_match"] >= 0.9, scores
    assert scores["greedy"]["bleu4"] >= 80.0, scores


def test_example_request_holds_real_images():
    request = APP.serving.example_request(APP.make_config("tiny"))
    images = [tf.io.decode_image(data, expand_animations=False) for data in request["image_bytes"]]
    assert [tuple(image.shape) for image in images] == [(32, 32, 3), (96, 96, 3), (32, 32, 1)]


def test_every_recurrent_layer_can_use_cudnn_on_a_gpu(trained):
    _, model, _ = training.load_trained(APP, trained["workdir"])
    assert cudnn_problems(model) == {}


def test_malformed_requests_are_refused_cleanly_in_one_process(
    trained, bad_requests_in_fresh_process
):
    result = bad_requests_in_fresh_process(trained["export"])
    outcomes = result["outcomes"]
    assert outcomes["empty batch"] == "answered" and outcomes["256 rows"] == "answered", result
    assert outcomes["image_bytes: not what it should hold"] == "InvalidArgument", result
    assert set(result["good_rows"].values()) == {3}, result


def test_saved_model_cli_lists_the_documented_signatures(trained, saved_model_cli_signatures):
    assert saved_model_cli_signatures(trained["export"]) == {
        name: {
            "inputs": {"image_bytes": "DT_STRING (-1)"},
            "outputs": {"caption": "DT_STRING (-1)", "score": "DT_FLOAT (-1)"},
        }
        for name in ("serving_default", "beam_search")
    }
