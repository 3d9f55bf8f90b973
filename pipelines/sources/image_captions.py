"""Images with captions from the user's files, or from tensorflow-datasets.

Layouts of a captions file (images are looked up relative to `images_dir`, by default the
folder the captions file is in):
    Flickr8k     `Flickr8k.token.txt` style: `image.jpg#0<TAB>caption`, several lines per
                 image (the `#N` caption number is optional).
    CSV          a header `image,caption`, then one `image.jpg,caption` row per caption (the
                 Kaggle copy of Flickr8k).
    COCO         a `.json` file with `images` [{"id", "file_name"}] and `annotations`
                 [{"image_id", "caption"}] (`captions_train2017.json`).
A folder given instead of a file must hold exactly one captions file named `captions.txt`,
`captions.tsv`, `captions.csv`, `captions.json`, `*.token.txt` or `captions_*.json`.

An image that the captions name but that is missing, unreadable, or not a JPEG, PNG, GIF, BMP
or WebP file (judged by its first bytes) is skipped and listed in `skipped` by name; a
corrupt body past those bytes fails later in the decoder. Empty captions are skipped and
counted; an image left without captions is listed in `skipped`.

tfds:NAME (e.g. `tfds:coco_captions`, needs the internet) gives a `tf.data.Dataset` of
`(image_bytes, captions)` with the images still encoded, the same elements as
`ImageCaptions.to_dataset()`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import tensorflow as tf

from pipelines.errors import DataError, check_text_file, escape, quote
from pipelines.sources.resolve import load_tfds

CAPTIONS_FILE_PATTERNS = (
    "captions.txt",
    "captions.tsv",
    "captions.csv",
    "captions.json",
    "*.token.txt",
    "captions_*.json",
)
ACCEPTED_LAYOUTS = (
    "Flickr8k `image.jpg#0<TAB>caption` lines, a CSV with an `image,caption` header, or "
    "COCO captions JSON (`images` [{id, file_name}] + `annotations` [{image_id, caption}])"
)
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


@dataclasses.dataclass
class ImageCaptions:
    """Image files and the captions of each, as read from one source."""

    image_paths: list[Path]
    # captions[i] holds the captions of image_paths[i], at least one.
    captions: list[list[str]]
    # Human-readable origin, e.g. a path or "emoji".
    source: str
    # One "name: reason" line per image left out, reported by the CLI.
    skipped: list[str] = dataclasses.field(default_factory=list)
    # Empty captions dropped.
    empty_captions: int = 0

    def to_dataset(self) -> tf.data.Dataset:
        """A dataset of `(image_bytes, captions)`: the file's bytes and a string vector."""
        paths = [str(path) for path in self.image_paths]
        captions = tf.ragged.constant(self.captions, dtype=tf.string)
        return tf.data.Dataset.from_tensor_slices((paths, captions)).map(
            lambda path, image_captions: (tf.io.read_file(path), image_captions)
        )


def read_image_captions(path: str | Path, images_dir: str | Path | None = None) -> ImageCaptions:
    """Reads a captions file (Flickr8k lines, CSV or COCO JSON) or a folder holding one.

    Args:
        path: the captions file, or a folder holding exactly one captions file (module
            docstring) and, unless `images_dir` says otherwise, the images.
        images_dir: the folder that image names are relative to; by default the captions
            file's folder.

    Raises:
        DataError: no captions file, a malformed line or JSON document, or no image left.
    """
    path = Path(path)
    captions_file = _find_captions_file(path) if path.is_dir() else path
    if not captions_file.is_file():
        raise DataError(f"no such captions file: {captions_file}")
    images_dir = Path(images_dir) if images_dir is not None else captions_file.parent
    if not images_dir.is_dir():
        raise DataError(f"images_dir: no such folder: {images_dir}")
    if captions_file.suffix.lower() == ".json":
        rows, skipped = _read_coco(captions_file)
    else:
        rows, skipped = _read_caption_lines(captions_file), []
    return _collect(rows, images_dir, str(captions_file), skipped)


def _find_captions_file(folder: Path) -> Path:
    found = sorted({match for pattern in CAPTIONS_FILE_PATTERNS for match in folder.glob(pattern)})
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(
            f"{folder}: no captions file. Expected one named "
            f"{', '.join(CAPTIONS_FILE_PATTERNS)} holding {ACCEPTED_LAYOUTS}"
        )
    raise DataError(
        f"{folder}: several captions files ({', '.join(match.name for match in found)}); "
        "pass the one to read"
    )


def _read_caption_lines(path: Path) -> list[tuple[str, str]]:
    check_text_file(path, "a captions text file")
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        lines = file.read().splitlines()
    if lines and lines[0].strip().lower() == "image,caption":
        rows = []
        for line_number, fields in enumerate(csv.reader(lines[1:]), start=2):
            if not fields:
                continue
            if len(fields) < 2:
                raise DataError(
                    f"{path} line {line_number}: expected image,caption, got {quote(fields[0])}"
                )
            rows.append((fields[0], ",".join(fields[1:])))
        return rows
    rows = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(
                f"{path} line {line_number}: expected image.jpg#0<TAB>caption, got {quote(line)}"
            )
        key, caption = line.split("\t", 1)
        name, hash_sign, number = key.rpartition("#")
        rows.append((name if hash_sign and number.isdigit() else key, caption))
    return rows


def _read_coco(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    check_text_file(path, "a COCO captions JSON file")
    try:
        document = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        file_names = {image["id"]: image["file_name"] for image in document["images"]}
        annotations = [(item["image_id"], item["caption"]) for item in document["annotations"]]
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not a JSON document ({error})") from error
    except (KeyError, TypeError) as error:
        raise DataError(
            f"{path}: expected COCO captions JSON, `images` [{{id, file_name}}] and "
            f"`annotations` [{{image_id, caption}}] (missing or malformed: {error})"
        ) from error
    rows, unknown_ids = [], []
    for image_id, caption in annotations:
        if image_id in file_names:
            rows.append((file_names[image_id], caption))
        elif image_id not in unknown_ids:
            unknown_ids.append(image_id)
    skipped = [f"image_id {image_id}: annotated but not in `images`" for image_id in unknown_ids]
    return rows, skipped


def _image_problem(path: Path) -> str:
    if not path.is_file():
        return "missing"
    try:
        with path.open("rb") as file:
            head = file.read(12)
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return ""
    return "not a JPEG, PNG, GIF, BMP or WebP file"


def _collect(
    rows: list[tuple[str, str]], images_dir: Path, source: str, skipped: list[str]
) -> ImageCaptions:
    captions_by_name: dict[str, list[str]] = {}
    empty_captions = 0
    for name, caption in rows:
        name, caption = name.strip(), caption.strip()
        captions_by_name.setdefault(name, [])
        if caption:
            captions_by_name[name].append(caption)
        else:
            empty_captions += 1
    image_paths, captions = [], []
    for name, image_captions in captions_by_name.items():
        image_path = images_dir / name
        problem = _image_problem(image_path) or ("" if image_captions else "no caption left")
        if problem:
            skipped.append(f"{escape(name)}: {problem}")
            continue
        image_paths.append(image_path)
        captions.append(image_captions)
    if not image_paths:
        detail = "; ".join(skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        raise DataError(f"{source}: no captioned image found" + (f" ({detail})" if detail else ""))
    return ImageCaptions(image_paths, captions, source, skipped, empty_captions)


def read_tfds_image_captions(name: str = "coco_captions", split: str = "train") -> tf.data.Dataset:
    """A tensorflow-datasets captioning split as `(image_bytes, captions)`, images encoded.

    The dataset needs an `image` feature and a `captions` sequence with a `text` field, as
    `coco_captions` has (splits train, val, test, restval: the Karpathy split).

    Raises:
        DataError: the dataset cannot be loaded or lacks those features.
    """
    import tensorflow_datasets as tfds

    dataset, _ = load_tfds(name, split, decoders={"image": tfds.decode.SkipDecoding()})
    features = dataset.element_spec
    captions = features.get("captions")
    if "image" not in features or not isinstance(captions, dict) or "text" not in captions:
        raise DataError(
            f"tfds:{name}: expected features `image` and `captions/text`, got {sorted(features)}"
        )
    return dataset.map(lambda example: (example["image"], example["captions"]["text"]))
