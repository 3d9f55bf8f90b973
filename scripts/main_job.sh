#!/usr/bin/env bash
# The README's main job: each app trains on its bundled default data, is evaluated, exported
# to saved_models/, and answers a few requests from the export. Work dirs go to runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
RUNS=${RUNS:-runs}

echo "== sentiment: base preset on the movie-review snippets (mr) =="
$BIN/rnn-sentiment train --workdir "$RUNS/sentiment" --preset base
$BIN/rnn-sentiment evaluate --workdir "$RUNS/sentiment"
$BIN/rnn-sentiment export --workdir "$RUNS/sentiment"
$BIN/rnn-sentiment predict --model saved_models/sentiment \
  "A gripping, beautifully acted film that stays with you." \
  "Dull, predictable and far too long." \
  "The plot is thin, but the performances make it worth watching."
