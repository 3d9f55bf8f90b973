"""rnn-caption: caption images with a CNN encoder and an attention decoder (Show, Attend and Tell).

Data (--data): emoji (the emoji of the Noto Color Emoji font, Debian package
fonts-noto-color-emoji, captioned with their Unicode CLDR names; the split keeps each name in
one split), tfds:coco_captions, or your own captions: a folder or file in the Flickr8k layout
(`image.jpg#0<TAB>caption`, several lines per image), a CSV `image,caption`, or COCO captions
JSON (`images` + `annotations`); --set data.images_dir=DIR when the images are elsewhere.

predict takes image files (PNG, JPEG, GIF, BMP, WebP) and prints one JSON line per image.

Example:
  rnn-caption train --workdir runs/caption --preset small
  rnn-caption evaluate --workdir runs/caption
  rnn-caption export --workdir runs/caption
  rnn-caption predict --model saved_models/captioning photo.png
  rnn-caption predict --model runs/caption --plot-attention attention/ photo.png
"""

from apps.captioning.app import APP
from apps.core import cli


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
