import numpy as np
import pytest

from pipelines.errors import DataError
from pipelines.sources.sensor_clips import read_sensor_clips


def write_csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(value) for value in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_folder_of_csv_and_npz_clips(tmp_path):
    walk = [[0.5, 1, 2], [1.5, 1, 2], [2.5, 1, 2], [3.5, 1, 2], [4.5, 1, 2]]
    run = [[9, 8, 7], [6, 5, 4], [3, 2, 1], [0, -1, -2]]
    write_csv(tmp_path / "walk" / "a.csv", ["ax", "ay", "az"], walk)
    write_csv(tmp_path / "run" / "c.csv", ["ax", "ay", "az"], run)
    np.savez(tmp_path / "walk" / "b.npz", values=np.arange(9, dtype=np.float64).reshape(3, 3))
    clips = read_sensor_clips(tmp_path)
    assert clips.label_names == ["run", "walk"]
    assert clips.labels.tolist() == [0, 1, 1]
    assert clips.lengths.tolist() == [4, 5, 3]
    assert clips.frames.shape == (3, 5, 3) and clips.frames.dtype == np.float32
    np.testing.assert_array_equal(clips.frames[0, :4], run)
    np.testing.assert_array_equal(clips.frames[1], walk)
    np.testing.assert_array_equal(clips.frames[2, :3], np.arange(9).reshape(3, 3))
    assert not clips.frames[0, 4:].any() and not clips.frames[2, 3:].any()
    assert clips.paths[1].endswith("a.csv")


def test_long_table_groups_rows_by_clip_in_file_order(tmp_path):
    path = write_csv(
        tmp_path / "sensors.csv",
        ["clip", "time", "gx", "gy", "label"],
        [
            ["s2", 0, 1, 10, "sit"],
            ["s1", 0, 2, 20, "stand"],
            ["s2", 1, 3, 30, "sit"],
            ["s1", 1, 4, 40, "stand"],
            ["s2", 2, 5, 50, "sit"],
        ],
    )
    clips = read_sensor_clips(path, channel_columns=["gx", "gy"])
    assert clips.paths == ["s2", "s1"]
    assert clips.label_names == ["sit", "stand"]
    assert clips.labels.tolist() == [0, 1]
    assert clips.lengths.tolist() == [3, 2]
    np.testing.assert_array_equal(clips.frames[0], [[1, 10], [3, 30], [5, 50]])
    np.testing.assert_array_equal(clips.frames[1], [[2, 20], [4, 40], [0, 0]])
    every_column = read_sensor_clips(path)
    assert every_column.frames.shape == (2, 3, 3)


def test_wrong_channel_count_names_the_file_and_the_counts(tmp_path):
    write_csv(tmp_path / "walk" / "a.csv", ["ax", "ay", "az"], [[1, 2, 3]])
    write_csv(tmp_path / "walk" / "b.csv", ["ax", "ay"], [[1, 2]])
    write_csv(tmp_path / "run" / "c.csv", ["ax", "ay", "az"], [[1, 2, 3]])
    with pytest.raises(DataError, match=r"b\.csv: 2 channels, expected 3 \(as in .*c\.csv\)"):
        read_sensor_clips(tmp_path)
    table = write_csv(tmp_path.parent / "table.csv", ["clip", "label", "x"], [["a", "up", 1]])
    with pytest.raises(DataError, match=r"table\.csv: 1 channels, expected 4 \(as the model"):
        read_sensor_clips(table, channels=4)


def test_bad_cells_and_labels_name_the_place(tmp_path):
    table = write_csv(
        tmp_path / "t.csv", ["clip", "label", "x"], [["a", "up", 1], ["a", "up", "fast"]]
    )
    with pytest.raises(DataError, match=r"t\.csv row 3 column 'x': 'fast' is not a number"):
        read_sensor_clips(table)
    mixed = write_csv(
        tmp_path / "m.csv", ["clip", "label", "x"], [["a", "up", 1], ["a", "down", 2]]
    )
    with pytest.raises(DataError, match="clip 'a' has rows with different labels: up, down"):
        read_sensor_clips(mixed)
    good = write_csv(tmp_path / "g.csv", ["clip", "label", "x"], [["a", "up", 1]])
    with pytest.raises(DataError, match="label 'up' is not one of the known classes: left, right"):
        read_sensor_clips(good, label_names=["left", "right"])
    with pytest.raises(DataError, match="no column 'session'; columns found: clip, label, x"):
        read_sensor_clips(good, clip_column="session")
    with pytest.raises(DataError, match="no column 'y'"):
        read_sensor_clips(good, channel_columns=["y"])
