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

echo "== forecasting: quick preset on monthly sunspots =="
$BIN/rnn-forecast train --workdir "$RUNS/forecasting" --preset quick
$BIN/rnn-forecast evaluate --workdir "$RUNS/forecasting"
$BIN/rnn-forecast export --workdir "$RUNS/forecasting"
$BIN/rnn-forecast tail --data sunspots --steps 48 --output "$RUNS/sunspots-recent.csv"
$BIN/rnn-forecast predict --model saved_models/forecasting --input "$RUNS/sunspots-recent.csv"

echo "== translation: small preset on the Ding German-English sentences =="
$BIN/rnn-translate train --workdir "$RUNS/translation" --preset small
$BIN/rnn-translate evaluate --workdir "$RUNS/translation"
$BIN/rnn-translate export --workdir "$RUNS/translation"
$BIN/rnn-translate predict --model saved_models/translation \
  "Das ist ein gutes Buch." "Ich habe keine Zeit." "Wo ist der Bahnhof?"

echo "== captioning: small preset on the emoji images (font fonts-noto-color-emoji) =="
$BIN/rnn-caption train --workdir "$RUNS/captioning" --preset small
$BIN/rnn-caption evaluate --workdir "$RUNS/captioning"
$BIN/rnn-caption export --workdir "$RUNS/captioning"
# A few test images of the run, captioned by the export, next to their true names.
$BIN/python - "$RUNS/captioning" <<'PYTHON'
import json, subprocess, sys
metrics = json.load(open(f"{sys.argv[1]}/metrics.json"))
samples = metrics["samples"][:5]
answer = subprocess.run(
    [".venv/bin/rnn-caption", "predict", "--model", "saved_models/captioning",
     *[sample["image"] for sample in samples]],
    check=True, capture_output=True, text=True,
).stdout.splitlines()
for sample, line in zip(samples, answer):
    row = json.loads(line)
    print(f"{row['caption']!r:45} (score {row['score']:.2f})  true name: {sample['references'][0]!r}")
PYTHON

echo "== activity: small preset on moving-digits (MNIST digits whose motion is the label) =="
$BIN/rnn-activity train --workdir "$RUNS/activity" --preset small
$BIN/rnn-activity evaluate --workdir "$RUNS/activity"
$BIN/rnn-activity export --workdir "$RUNS/activity"
$BIN/rnn-activity clips --output-dir "$RUNS/activity-clips" --count 2 --preset small
$BIN/rnn-activity predict --model saved_models/activity "$RUNS"/activity-clips/*
