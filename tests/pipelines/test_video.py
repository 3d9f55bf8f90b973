import os

import av
import numpy as np
import pytest

from pipelines import video
from pipelines.errors import DataError
from pipelines.video import (
    decode_video,
    read_video,
    read_video_folder,
    segment_frame_indices,
    uniform_frame_indices,
)


def moving_square(frames: int = 8, size: int = 32) -> np.ndarray:
    """(frames, size, size, 3) uint8: a white square moving right over a flat colour."""
    clip = np.zeros((frames, size, size, 3), dtype=np.uint8)
    clip[...] = (0, 0, 255)
    for index in range(frames):
        clip[index, 8:16, 2 * index : 2 * index + 8] = 255
    return clip


def write_video(path, frames: np.ndarray, codec: str = "mpeg4", pix_fmt: str = "yuv420p"):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"),
    [
        ("clip.mp4", "mpeg4", "yuv420p"),
        ("clip.avi", "mpeg4", "yuv420p"),
        ("clip.gif", "gif", "rgb8"),
    ],
)
def test_decodes_a_written_video_frame_by_frame(tmp_path, name, codec, pix_fmt):
    frames = moving_square()
    path = write_video(tmp_path / name, frames, codec, pix_fmt)
    decoded = decode_video(path)
    assert decoded.shape == (8, 32, 32, 3) and decoded.dtype == np.uint8
    # Lossy codecs: close on average, and the square is where it was written.
    assert np.abs(decoded.astype(int) - frames).mean() < 8
    np.testing.assert_array_equal(decoded[:, 12, :, 0] > 128, frames[:, 12, :, 0] > 128)
    assert decode_video(path, height=16, width=24).shape == (8, 16, 24, 3)


def test_uniform_indices_take_the_middle_of_each_segment():
    np.testing.assert_array_equal(uniform_frame_indices(10, 4), [1, 3, 6, 8])
    np.testing.assert_array_equal(uniform_frame_indices(8, 8), np.arange(8))
    np.testing.assert_array_equal(uniform_frame_indices(3, 5), [0, 1, 2])


def test_random_segments_stay_within_their_segment_and_follow_the_seed():
    boundaries = [0, 2, 5, 7, 10]
    draws = set()
    for seed in range(30):
        indices = segment_frame_indices(10, 4, np.random.default_rng(seed))
        assert all(boundaries[k] <= indices[k] < boundaries[k + 1] for k in range(4))
        again = segment_frame_indices(10, 4, np.random.default_rng(seed))
        np.testing.assert_array_equal(indices, again)
        draws.add(tuple(indices))
    assert len(draws) > 10
    np.testing.assert_array_equal(segment_frame_indices(3, 5, np.random.default_rng(0)), [0, 1, 2])


def test_read_video_keeps_the_sampled_frames(tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_square())
    decoded = decode_video(path)
    np.testing.assert_array_equal(read_video(path, frames=4), decoded[[1, 3, 5, 7]])
    seeded = read_video(path, frames=4, seed=3)
    indices = segment_frame_indices(8, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(seeded, decoded[indices])
    assert len(read_video(path, frames=12)) == 8
    # Only the kept frames are converted and resized, to the same pixels.
    resized = decode_video(path, height=16, width=24)
    np.testing.assert_array_equal(read_video(path, 4, 16, 24), resized[[1, 3, 5, 7]])


def test_a_corrupt_file_is_reported_by_name(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"this is not a video" * 20)
    with pytest.raises(DataError, match="broken.mp4: cannot decode the video"):
        decode_video(path)


def make_folder(root):
    (root / "jump").mkdir(parents=True)
    (root / "run").mkdir()
    (root / "walk").mkdir()
    write_video(root / "jump" / "a.mp4", moving_square())
    write_video(root / "jump" / "b.gif", moving_square(), "gif", "rgb8")
    write_video(root / "run" / "c.avi", moving_square(6, 24))
    (root / "run" / "broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3 garbage" * 10)
    return root


def test_folder_reader_skips_corrupt_files_and_reports_empty_classes(tmp_path):
    folder = make_folder(tmp_path / "videos")
    clips = read_video_folder(
        folder, frames=4, height=16, width=16, workers=1, cache_folder=tmp_path / "cache"
    )
    assert clips.label_names == ["jump", "run", "walk"]
    assert clips.labels.tolist() == [0, 0, 1]
    assert clips.frames.shape == (3, 4, 16, 16, 3)
    assert clips.lengths.tolist() == [4, 4, 4]
    assert [os.path.basename(path) for path in clips.paths] == ["a.mp4", "b.gif", "c.avi"]
    assert clips.skipped == 1
    assert len(clips.problems) == 2
    assert any("broken.mkv: cannot decode" in problem for problem in clips.problems)
    assert any("walk: empty class folder" in problem for problem in clips.problems)
    np.testing.assert_array_equal(
        clips.frames[0], read_video(folder / "jump" / "a.mp4", frames=4, height=16, width=16)
    )


def test_second_read_comes_from_the_cache_until_a_file_changes(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "videos")
    calls = []
    original = video.decode_video

    def counting_decode(path, *args):
        calls.append(os.path.basename(path))
        return original(path, *args)

    monkeypatch.setattr(video, "decode_video", counting_decode)
    settings = dict(frames=4, height=16, width=16, workers=1, cache_folder=tmp_path / "cache")
    first = read_video_folder(folder, **settings)
    assert sorted(calls) == ["a.mp4", "b.gif", "broken.mkv", "c.avi"]
    calls.clear()
    second = read_video_folder(folder, **settings)
    assert calls == ["broken.mkv"]
    np.testing.assert_array_equal(first.frames, second.frames)
    assert second.skipped == 1
    calls.clear()
    read_video_folder(folder, **{**settings, "frames": 3})
    assert sorted(calls) == ["a.mp4", "b.gif", "broken.mkv", "c.avi"]
    calls.clear()
    write_video(folder / "jump" / "a.mp4", moving_square(10))
    read_video_folder(folder, **settings)
    assert sorted(calls) == ["a.mp4", "broken.mkv"]


def test_worker_threads_give_the_same_clips(tmp_path):
    folder = make_folder(tmp_path / "videos")
    settings = dict(frames=4, height=16, width=16, seed=7, cache=False)
    in_process = read_video_folder(folder, workers=1, **settings)
    in_workers = read_video_folder(folder, workers=2, **settings)
    np.testing.assert_array_equal(in_process.frames, in_workers.frames)
    assert in_workers.skipped == 1


def test_short_videos_are_padded_and_their_lengths_kept(tmp_path):
    root = tmp_path / "videos"
    for name, frames in (("long", 8), ("short", 3)):
        (root / name).mkdir(parents=True)
        write_video(root / name / "clip.mp4", moving_square(frames))
    clips = read_video_folder(root, frames=6, workers=1, cache=False)
    assert clips.frames.shape == (2, 6, 32, 32, 3)
    assert clips.lengths.tolist() == [6, 3]
    assert not clips.frames[1, 3:].any()


def test_videos_of_different_sizes_need_a_size(tmp_path):
    folder = make_folder(tmp_path / "videos")
    with pytest.raises(DataError, match=r"c.avi: frames of 24x24 pixels, but .*a.mp4 has 32x32"):
        read_video_folder(folder, frames=4, workers=1, cache=False)


def test_bad_layout_and_arguments(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="expected one sub-folder per class"):
        read_video_folder(tmp_path, workers=1)
    (tmp_path / "other").mkdir()
    with pytest.raises(DataError, match="no readable videos"):
        read_video_folder(tmp_path, workers=1, cache=False)
    with pytest.raises(ValueError, match="height and width must be given together"):
        read_video_folder(tmp_path, height=16)
