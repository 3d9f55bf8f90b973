"""rnn-translate: translate sentences with a recurrent encoder-decoder and attention.

Data (--data): ding-de-en (German -> English example sentences of the Ding dictionary,
Debian package trans-de-en), tfds:ted_hrlr_translate/pt_to_en, or your own file: .tsv/.csv
with a header (columns `source` and `target`, see --set data.source_column=...) or the
Anki/Tatoeba .txt layout `english<TAB>other<TAB>...` (--set data.reverse=true flips it).

Example:
  rnn-translate train --workdir runs/translate --preset base
  rnn-translate evaluate --workdir runs/translate
  rnn-translate translate --workdir runs/translate --plot-attention attention.png \\
      "Wir müssen miteinander reden."
  rnn-translate export --workdir runs/translate
  rnn-translate predict --model saved_models/translation "Das ist gut."
"""

from apps.core import cli
from apps.translation.app import APP


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
