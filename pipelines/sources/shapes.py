"""Coloured shapes captioned with their colour and shape ("red circle"): a synthetic task.

`render_shape` draws one filled shape (circle, square, triangle or cross) of a named colour at
a random place and size on a light grey background, with numpy alone; `write_shapes` writes
such images as PNG files with a Flickr8k-style `captions.txt` (two captions per image: "a red
circle on a grey background" and "red circle"), a folder that `read_image_captions` reads.
Used by the tests, the captioning export's example request and the main job's queries.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 40, 170),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "cross")
BACKGROUND = (235, 235, 235)


def render_shape(colour: str, shape: str, size: int = 32, seed: int = 0) -> np.ndarray:
    """A uint8 RGB image `(size, size, 3)` of one filled shape, placed and sized by `seed`."""
    if colour not in COLOURS:
        raise ValueError(f"colour: expected one of {', '.join(COLOURS)}, got {colour!r}")
    if shape not in SHAPES:
        raise ValueError(f"shape: expected one of {', '.join(SHAPES)}, got {shape!r}")
    rng = random.Random(seed)
    radius = rng.uniform(0.22, 0.38) * size
    center_y = rng.uniform(radius, size - radius)
    center_x = rng.uniform(radius, size - radius)
    y, x = np.mgrid[0:size, 0:size] + 0.5
    dy, dx = (y - center_y) / radius, (x - center_x) / radius
    if shape == "circle":
        inside = dy**2 + dx**2 <= 1.0
    elif shape == "square":
        inside = (np.abs(dy) <= 0.8) & (np.abs(dx) <= 0.8)
    elif shape == "triangle":
        inside = (dy <= 0.8) & (np.abs(dx) <= (dy + 1.0) / 1.8 * 0.9)
    else:
        inside = ((np.abs(dy) <= 0.3) | (np.abs(dx) <= 0.3)) & (np.abs(dy) <= 1) & (np.abs(dx) <= 1)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = BACKGROUND
    image[inside] = COLOURS[colour]
    return image


def write_shapes(folder: str | Path, count: int, size: int = 32, seed: int = 0) -> Path:
    """Writes `count` PNG images of random coloured shapes and their `captions.txt`."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        name = f"shape{index:05d}.png"
        Image.fromarray(render_shape(colour, shape, size, seed=rng.randrange(2**31))).save(
            folder / name
        )
        lines += [
            f"{name}#0\ta {colour} {shape} on a grey background",
            f"{name}#1\t{colour} {shape}",
        ]
    (folder / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
