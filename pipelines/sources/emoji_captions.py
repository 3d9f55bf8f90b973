"""The "emoji" captioning dataset: every emoji the colour font draws, captioned by its name.

Images: each fully qualified emoji of the PyPI package `emoji` (single code points and
sequences: skin tones, ZWJ families, flags, keycaps) drawn with Pillow from Noto Color Emoji
(Debian `fonts-noto-color-emoji`) at the font's bitmap size, 109 px, onto a transparent
136x128 canvas, composited over white, padded to a 136x136 square (white) and resized to
`image_size` with a Lanczos filter. An emoji is kept when the font draws it as one non-empty
glyph that is not its unknown-flag glyph; sequences the font cannot join (their width exceeds
one glyph) and code points it lacks are left out and listed in `skipped`.

Captions: the emoji's English CLDR short name as `emoji.EMOJI_DATA[text]["en"]` spells it,
with the colons around it dropped, underscores turned into spaces and everything lower-cased;
other characters stay: ":woman_detective_medium-dark_skin_tone:" -> "woman detective
medium-dark skin tone", ":A_button_(blood_type):" -> "a button (blood type)". Country flags
carry the country's name alone (":Côte_d’Ivoire:" -> "côte d’ivoire").

The composition split: an example's group is its exact caption (`composition_groups`), so a
group-aware split never puts one name in two splits, while the parts that names are made of
are shared by many names. A caption's parts (`caption_parts`) are its skin-tone modifiers
("medium-dark skin tone", one part each), a leading gender word (man, woman, person, men,
women, people, when more words follow that do not start with "and") and the base name left
over: "woman detective medium-dark skin tone" -> ("detective", "woman", "medium-dark skin
tone"). With it in test and "woman detective light skin tone" and "man cook medium-dark skin
tone" in training, the test name is unseen but its parts are not: the test measures
composition. `count_parts_seen_in_training` counts the test captions built only from seen
parts; names without modifiers have only their base, never seen when they are in test.
Measured with `emoji` 2.16.0 and Noto Color Emoji 2.042 (Debian 12): 3,788 images (175 left
out); three seeded random 10% test draws of the groups: 54-59% of the test captions have all
their parts in the other 80%, and 99.5-100% of those with a gender or skin-tone modifier.

The images (`images/<code points>.png`), `captions.tsv` (file, caption, emoji) and
`skipped.txt` are rendered once into `cache_dir("emoji", <version>)`, the version naming the
`emoji` release, the image size and the font file's size.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipelines.cache import cache_dir
from pipelines.errors import DataError
from pipelines.sources.debian import debian_file
from pipelines.sources.image_captions import ImageCaptions

EMOJI_PACKAGE = "emoji==2.16.0"
FONT_PACKAGE = "fonts-noto-color-emoji"
FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# Noto Color Emoji holds one bitmap strike, 136x128 pixels at 109 px.
FONT_SIZE = 109
CANVAS_SIZE = (136, 128)
# Regional indicators Z Z name no country: the font draws its unknown-flag glyph.
UNKNOWN_FLAG = "\U0001f1ff\U0001f1ff"
REGIONAL_INDICATORS = frozenset(map(chr, range(0x1F1E6, 0x1F200)))
REFERENCE_EMOJI = "\U0001f600"
FULLY_QUALIFIED = 2
CAPTIONS_FILE = "captions.tsv"
SKIPPED_FILE = "skipped.txt"
GENDER_WORDS = ("man", "woman", "person", "men", "women", "people")

_SKIN_TONE = re.compile(r"\b(?:light|medium-light|medium|medium-dark|dark) skin tone\b")
_SPACES = re.compile(r"\s+")


def load_emoji_captions(image_size: int = 64, font_path: str | Path = FONT_PATH) -> ImageCaptions:
    """Returns the emoji images with their captions (source "emoji"), rendering them once.

    Args:
        image_size: the side of the square PNG images.
        font_path: the Noto Color Emoji font file.

    Raises:
        DataError: the `emoji` package, Pillow or the font is missing; the message names the
            command that installs it.
    """
    if image_size < 1:
        raise ValueError(f"image_size: expected a positive int, got {image_size!r}")
    font_path = Path(font_path)
    found = debian_file(FONT_PACKAGE, font_path, "emoji-font") if font_path == FONT_PATH else None
    if found is None and not font_path.is_file():
        raise DataError(
            f"dataset emoji: the font {font_path} is missing and `apt-get download "
            f"{FONT_PACKAGE}` failed. Run `sudo apt-get update && sudo apt-get install -y "
            f"{FONT_PACKAGE}`"
        )
    font_path = found or font_path
    emoji = _import_emoji()
    version = f"{emoji.__version__}-{image_size}px-font{font_path.stat().st_size}"
    folder = cache_dir("emoji", version)
    if not (folder / CAPTIONS_FILE).is_file():
        _render_into(folder, emoji.EMOJI_DATA, image_size, font_path)
    return _read_cache(folder)


def emoji_caption(name: str) -> str:
    """ ":woman_detective_medium-dark_skin_tone:" -> "woman detective medium-dark skin tone"."""
    return name.strip(":").replace("_", " ").lower()


def render_emoji(text: str, font, image_size: int):
    """Draws `text` with an emoji `font` (a Pillow FreeTypeFont at 109 px) as an RGB image.

    Returns:
        a square `image_size` RGB PIL image over white, or None when the font does not draw
        `text` as one known non-empty glyph.
    """
    from PIL import Image

    if font.getlength(text) > font.getlength(REFERENCE_EMOJI):
        return None
    glyph = _draw(text, font)
    if glyph.getbbox() is None:
        return None
    if text[0] in REGIONAL_INDICATORS and glyph.tobytes() == _draw(UNKNOWN_FLAG, font).tobytes():
        return None
    width, height = CANVAS_SIZE
    square = Image.new("RGBA", (width, width), (255, 255, 255, 255))
    square.alpha_composite(glyph, (0, (width - height) // 2))
    return square.convert("RGB").resize((image_size, image_size), Image.Resampling.LANCZOS)


def caption_parts(caption: str) -> tuple[str, ...]:
    """The base name, the leading gender word and the skin-tone modifiers (module docstring)."""
    skin_tones = _SKIN_TONE.findall(caption)
    words = _SPACES.sub(" ", _SKIN_TONE.sub(" ", caption)).split()
    gender = ()
    if len(words) > 1 and words[0] in GENDER_WORDS and words[1] != "and":
        gender, words = (words[0],), words[1:]
    return (" ".join(words), *gender, *skin_tones)


def composition_groups(captions: Iterable[str]) -> list[str]:
    """The split group of each example: its exact caption, so no name is in two splits."""
    return list(captions)


def count_parts_seen_in_training(
    train_captions: Iterable[str], test_captions: Sequence[str]
) -> int:
    """How many of `test_captions` have every one of their `caption_parts` in training."""
    seen = {part for caption in train_captions for part in caption_parts(caption)}
    return sum(all(part in seen for part in caption_parts(caption)) for caption in test_captions)


def _import_emoji():
    try:
        import emoji
    except ImportError:
        raise DataError(
            f"dataset emoji needs the `emoji` package: run `pip install '{EMOJI_PACKAGE}'` "
            "(or `pip install emoji`, or install rnn-suite with the `data` extra)"
        ) from None
    return emoji


def _draw(text: str, font):
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", CANVAS_SIZE, (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), text, font=font, embedded_color=True)
    return canvas


def _load_font(font_path: Path):
    try:
        from PIL import ImageFont
    except ImportError:
        raise DataError(
            "dataset emoji needs Pillow: run `pip install pillow` (or install rnn-suite with "
            "the `data` extra)"
        ) from None
    try:
        return ImageFont.truetype(str(font_path), FONT_SIZE)
    except OSError as error:
        raise DataError(
            f"dataset emoji: cannot load the font {font_path} at {FONT_SIZE} px ({error}); "
            f"it should be Noto Color Emoji from `apt-get install -y {FONT_PACKAGE}`"
        ) from error


def _file_name(text: str) -> str:
    return "-".join(f"{ord(character):x}" for character in text) + ".png"


def _render_into(folder: Path, emoji_data: dict, image_size: int, font_path: Path) -> None:
    font = _load_font(font_path)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(dir=folder, prefix="render-") as render_dir:
        images = Path(render_dir) / "images"
        images.mkdir()
        for text, data in emoji_data.items():
            if data["status"] != FULLY_QUALIFIED:
                continue
            caption = emoji_caption(data["en"])
            image = render_emoji(text, font, image_size)
            if image is None:
                skipped.append(f"{caption}: not in the font")
                continue
            image.save(images / _file_name(text))
            rows.append(f"{_file_name(text)}\t{caption}\t{text}\n")
        if not rows:
            raise DataError(
                f"dataset emoji: {font_path} drew none of the emoji; is it an emoji font?"
            )
        (Path(render_dir) / CAPTIONS_FILE).write_text("".join(rows), encoding="utf-8")
        (Path(render_dir) / SKIPPED_FILE).write_text(
            "".join(line + "\n" for line in skipped), encoding="utf-8"
        )
        shutil.rmtree(folder / "images", ignore_errors=True)
        os.replace(images, folder / "images")
        os.replace(Path(render_dir) / SKIPPED_FILE, folder / SKIPPED_FILE)
        os.replace(Path(render_dir) / CAPTIONS_FILE, folder / CAPTIONS_FILE)


def _read_cache(folder: Path) -> ImageCaptions:
    image_paths, captions = [], []
    for line in (folder / CAPTIONS_FILE).read_text(encoding="utf-8").splitlines():
        file_name, caption, _ = line.split("\t")
        image_paths.append(folder / "images" / file_name)
        captions.append([caption])
    skipped = (folder / SKIPPED_FILE).read_text(encoding="utf-8").splitlines()
    return ImageCaptions(image_paths, captions, source="emoji", skipped=skipped)
