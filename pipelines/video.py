"""Video files to RGB frames: decode with PyAV, sample frames, read a folder of class sub-folders.

A video (.avi, .mp4, .mkv, .webm, .gif) is decoded to (frames, height, width, 3) uint8 RGB,
resized while decoding when a size is given. A clip keeps `count` of its frames: the middle
frame of each of `count` equal segments (uniform, for evaluation and serving), or a random
frame of each segment drawn from a seed (TSN-style, for training). A video shorter than
`count` frames keeps all of them, and its length says so.

`read_video_folder` reads the UCF101 layout (one sub-folder per class), decodes in worker
threads, and caches each sampled clip as an .npz file keyed by the video's path,
modification time and size and the sampling settings, so a second read decodes nothing.
A video that cannot be decoded is skipped and reported by name (and tried again next time).

References:
    Wang et al., "Temporal Segment Networks: Towards Good Practices for Deep Action
    Recognition", ECCV 2016 (the segment sampling).
    Soomro, Zamir & Shah, "UCF101: A Dataset of 101 Human Actions Classes From Videos in
    The Wild", 2012 (the folder layout).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipelines.cache import cache_dir
from pipelines.errors import DataError
from pipelines.sources.clips import LabeledClips, list_class_folders, pad_clips

PACKAGE = "av==18.1.0"
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".webm", ".gif")


def uniform_frame_indices(total: int, count: int) -> np.ndarray:
    """The middle frame of each of `count` equal segments of `total` frames (all if fewer)."""
    if total < 1 or count < 1:
        raise ValueError(f"total and count must be at least 1, received {total} and {count}")
    if total <= count:
        return np.arange(total)
    return ((np.arange(count) + 0.5) * total / count).astype(np.int64)


def segment_frame_indices(total: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame of each of `count` equal segments of `total` frames (all if fewer)."""
    if total < 1 or count < 1:
        raise ValueError(f"total and count must be at least 1, received {total} and {count}")
    if total <= count:
        return np.arange(total)
    boundaries = np.arange(count + 1) * total // count
    return rng.integers(boundaries[:-1], boundaries[1:])


def decode_video(
    path: str | Path,
    height: int | None = None,
    width: int | None = None,
    select: Callable[[int], np.ndarray] | None = None,
) -> np.ndarray:
    """Decodes a video file: (frames, height, width, 3) uint8 RGB.

    Args:
        path: the video file.
        height: resize to this height while decoding (with `width`); None keeps the size.
        width: resize to this width while decoding (with `height`); None keeps the size.
        select: maps the video's frame count to the indices of the frames to keep; every
            frame is decoded (the codec needs them), only these are converted to RGB and
            resized. None keeps every frame.

    Raises:
        DataError: PyAV is missing, or the file cannot be opened, holds no video stream or
            no frame; the message names the file.
    """
    _check_size(height, width)
    try:
        import av
    except ImportError:
        raise DataError(
            f"reading videos needs the Python package av (PyAV); install it with: "
            f"pip install {PACKAGE} (or pip install 'rnn-suite[data]')"
        ) from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            frames = list(container.decode(container.streams.video[0]))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot decode the video ({error})") from None
    if not frames:
        raise DataError(f"{path}: the video holds no frames")
    if select is not None:
        frames = [frames[index] for index in select(len(frames))]
    return _to_rgb(frames, height, width)


def _to_rgb(frames: list, height: int | None, width: int | None) -> np.ndarray:
    """Decoded frames -> (frames, height, width, 3) uint8 RGB, resized when a size is given."""
    import av

    resize = {} if height is None else {"height": height, "width": width}
    # One reformatter for all the frames: it keeps its scaling context from frame to frame
    # (each frame's own `to_ndarray` makes a new one, 6x slower at 128 x 128).
    reformatter = av.video.reformatter.VideoReformatter()
    return np.stack(
        [reformatter.reformat(frame, format="rgb24", **resize).to_ndarray() for frame in frames]
    )


def read_video(
    path: str | Path,
    frames: int = 16,
    height: int | None = None,
    width: int | None = None,
    seed: int | Sequence[int] | None = None,
) -> np.ndarray:
    """Decodes a video and keeps `frames` of its frames: (length, height, width, 3) uint8.

    Every frame is decoded (the codec needs them); only the kept ones are converted to RGB
    and resized.

    Args:
        path: the video file.
        frames: how many frames to keep; a shorter video keeps all of its frames.
        height: the frame height to resize to (with `width`); None keeps the video's.
        width: the frame width to resize to (with `height`); None keeps the video's.
        seed: None samples the middle of each segment; a seed (an int or a sequence of ints,
            as `numpy.random.default_rng` takes) draws a random frame within each segment.

    Raises:
        DataError: the file cannot be decoded; the message names it.
    """
    if frames < 1:
        raise ValueError(f"frames must be at least 1, received {frames}")
    if seed is None:
        return decode_video(path, height, width, lambda total: uniform_frame_indices(total, frames))
    rng = np.random.default_rng(seed)
    return decode_video(
        path, height, width, lambda total: segment_frame_indices(total, frames, rng)
    )


def read_video_folder(
    folder: str | Path,
    frames: int = 16,
    height: int | None = None,
    width: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    cache: bool = True,
    cache_folder: str | Path | None = None,
    label_names: Sequence[str] | None = None,
) -> LabeledClips:
    """Reads a folder with one sub-folder of videos per class, as UCF101 is laid out.

    Args:
        folder: the root folder; the class is the sub-folder name, videos may be nested
            deeper within it.
        frames: frames kept per video (see `read_video`); the clips are padded to this length.
        height: the frame height to resize to (with `width`); None keeps the videos' size,
            which must then be the same for all.
        width: the frame width to resize to (with `height`).
        seed: None samples uniformly; an int draws random segments, each video from
            `default_rng([seed, crc32(path)])`, so a new seed per epoch gives new frames.
        workers: decoding threads; None uses one per CPU, 1 decodes in the calling thread.
        cache: keep each sampled clip as an .npz file and read it back the next time.
        cache_folder: where the clips are kept; None: `cache_dir("video_clips")`.
        label_names: the known classes (from training), in their order; None: the sorted
            sub-folder names.

    Returns:
        LabeledClips with (videos, frames, height, width, 3) uint8 frames, the video paths,
        and in `skipped` / `problems` the videos that could not be decoded and the empty
        class folders, each named.

    Raises:
        DataError: the folder is not laid out by class, no video could be decoded, or the
            videos differ in size and no size was given.
    """
    _check_size(height, width)
    if frames < 1:
        raise ValueError(f"frames must be at least 1, received {frames}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, received {workers}")
    folder = Path(folder)
    files, label_names, problems = list_class_folders(folder, VIDEO_SUFFIXES, label_names)
    cache_folder = Path(cache_folder) if cache_folder is not None else cache_dir("video_clips")
    if cache:
        cache_folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for path, _ in files:
        file_seed = None if seed is None else (seed, zlib.crc32(str(path).encode()))
        cached = cache_folder / f"{_cache_key(path, frames, height, width, file_seed)}.npz"
        jobs.append((path, frames, height, width, file_seed, cached if cache else None))
    results = [None] * len(jobs)
    to_decode = []
    for index, job in enumerate(jobs):
        cached = job[-1]
        if cached is not None and cached.is_file():
            with np.load(cached) as arrays:
                results[index] = (arrays["frames"], None)
        else:
            to_decode.append(index)
    decoded = _decode_all([jobs[index] for index in to_decode], workers)
    for index, result in zip(to_decode, decoded, strict=True):
        results[index] = result

    clips, labels, paths = [], [], []
    for (path, label), (clip, error) in zip(files, results, strict=True):
        if error is not None:
            problems.append(f"{error}; skipped")
            continue
        if clips and clip.shape[1:] != clips[0].shape[1:]:
            raise DataError(
                f"{path}: frames of {clip.shape[2]}x{clip.shape[1]} pixels, but {paths[0]} has "
                f"{clips[0].shape[2]}x{clips[0].shape[1]}; give height and width to resize"
            )
        clips.append(clip)
        labels.append(label)
        paths.append(str(path))
    skipped = len(files) - len(clips)
    if not clips:
        detail = "; ".join(problems) if problems else "none found"
        raise DataError(f"{folder}: no readable videos ({detail})")
    padded, lengths = pad_clips(clips, np.uint8, length=frames)
    return LabeledClips(
        frames=padded,
        lengths=lengths,
        labels=np.array(labels, dtype=np.int32),
        label_names=label_names,
        source=str(folder),
        paths=paths,
        skipped=skipped,
        problems=problems,
    )


def _check_size(height: int | None, width: int | None) -> None:
    if (height is None) != (width is None):
        raise ValueError(
            f"height and width must be given together, received height={height}, width={width}"
        )
    if height is not None and (height < 1 or width < 1):
        raise ValueError(f"height and width must be at least 1, received {height}, {width}")


def _cache_key(
    path: Path, frames: int, height: int | None, width: int | None, seed: tuple | None
) -> str:
    status = path.stat()
    settings = [str(path.resolve()), status.st_mtime_ns, status.st_size, frames, height, width]
    return hashlib.sha256(json.dumps([*settings, seed]).encode()).hexdigest()[:32]


def _decode_all(jobs: list[tuple], workers: int) -> list[tuple[np.ndarray | None, str | None]]:
    if workers == 1 or len(jobs) < 2:
        return [_read_into_cache(*job) for job in jobs]
    # Threads: PyAV releases the GIL while FFmpeg decodes and converts, and a thread starts in
    # no time where a spawned process first imports its parent's main module.
    with concurrent.futures.ThreadPoolExecutor(min(workers, len(jobs))) as executor:
        return list(executor.map(lambda job: _read_into_cache(*job), jobs))


def _read_into_cache(
    path: Path,
    frames: int,
    height: int | None,
    width: int | None,
    seed: tuple | None,
    cached: Path | None,
) -> tuple[np.ndarray | None, str | None]:
    """(clip, None), or (None, the problem) when the video cannot be decoded; runs in threads."""
    try:
        clip = read_video(path, frames, height, width, seed)
    except DataError as error:
        return None, str(error)
    if cached is not None:
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".npz", delete=False) as file:
            np.savez(file, frames=clip)
        os.replace(file.name, cached)
    return clip, None


def encode_gif(frames: np.ndarray, frame_seconds: float = 0.1) -> bytes:
    """An animated GIF (looping) of (time, height, width, 3) uint8 RGB frames."""
    import io

    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(frame_seconds * 1000),
        loop=0,
    )
    return buffer.getvalue()


def write_mp4(path: Path, frames: np.ndarray, frames_per_second: int) -> None:
    """Writes (time, height, width, 3) uint8 RGB frames as an MPEG-4 video with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=frames_per_second)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
