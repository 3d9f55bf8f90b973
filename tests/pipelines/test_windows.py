import numpy as np
import pytest
import tensorflow as tf

from pipelines import windows


def test_time_splits_in_order():
    splits = windows.time_splits(100, validation_fraction=0.1, test_fraction=0.2)
    assert splits == {
        "train": windows.Split(0, 70),
        "validation": windows.Split(70, 80),
        "test": windows.Split(80, 100),
    }
    with pytest.raises(ValueError, match="test_fraction"):
        windows.time_splits(100, 0.1, 1.5)


def test_window_starts_keep_targets_inside_the_split():
    # Targets of a test window lie in [8, 12); its history may start before 8.
    starts = windows.window_starts(windows.Split(8, 12), lookback=3, horizon=2)
    np.testing.assert_array_equal(starts, [5, 6, 7])
    starts = windows.window_starts(windows.Split(0, 10), lookback=3, horizon=2, stride=2)
    np.testing.assert_array_equal(starts, [0, 2, 4])


def test_sunspots_benchmark_window_count():
    splits = windows.time_splits(2820, 0.1, 0.2)
    assert len(windows.window_starts(splits["test"], 132, 12)) == 553


def test_windows_match_hand_computed_values():
    # Column 0 is the target (0, 1, 2, ...), column 1 a covariate (100, 101, ...).
    values = np.stack([np.arange(10.0), 100 + np.arange(10.0)], axis=1)
    dataset = windows.make_windows(
        values,
        np.array([0, 3]),
        lookback=3,
        horizon=2,
        target_indices=[0],
        known_future_indices=[1],
        teacher_targets=True,
        batch_size=8,
    )
    inputs, targets = next(iter(dataset))
    np.testing.assert_array_equal(inputs["history"][1], [[3, 103], [4, 104], [5, 105]])
    np.testing.assert_array_equal(targets.numpy()[:, :, 0], [[3, 4], [6, 7]])
    np.testing.assert_array_equal(inputs["future_covariates"][0, :, 0], [103, 104])
    np.testing.assert_array_equal(inputs["teacher_targets"], targets)


def test_shuffled_windows_cover_every_start_once():
    values = np.arange(20.0)[:, None]
    dataset = windows.make_windows(
        values,
        np.arange(10),
        lookback=5,
        horizon=1,
        target_indices=[0],
        batch_size=4,
        shuffle=True,
        seed=1,
    )
    firsts = sorted(int(history[0, 0]) for batch, _ in dataset for history in batch["history"])
    assert firsts == list(range(10))


def test_normalization_round_trip_and_train_only_statistics(tmp_path):
    train = np.array([[1.0, 10.0], [3.0, 10.0]])
    normalization = windows.Normalization.fit(train)
    np.testing.assert_allclose(normalization.mean, [2.0, 10.0])
    np.testing.assert_allclose(normalization.std, [1.0, 1.0])  # a constant column keeps std 1
    values = np.array([[5.0, 12.0], [-1.0, 7.0]], dtype=np.float32)
    normalized = normalization.normalize(values)
    np.testing.assert_allclose(normalized, [[3.0, 2.0], [-3.0, -3.0]])
    np.testing.assert_allclose(normalization.denormalize(normalized), values)
    np.testing.assert_allclose(
        normalization.denormalize(normalized[:, :1], columns=[0]), values[:, :1]
    )
    in_graph = normalization.normalize(tf.constant(values))
    np.testing.assert_allclose(in_graph.numpy(), normalized)
    normalization.save(tmp_path / "stats.json")
    loaded = windows.Normalization.load(tmp_path / "stats.json")
    np.testing.assert_allclose(loaded.mean, normalization.mean)
