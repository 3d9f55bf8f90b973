#!/usr/bin/env bash
# The README's main job: each app trains on its bundled default data, is evaluated, exported
# to saved_models/, and answers a few requests from the export; a summary ends it. Work dirs go
# to runs/. A second run reuses every finished step (a trained run, its metrics, its export)
# and says so; FRESH=1 moves the earlier work dirs aside (runs/<app>.old-<time>) and redoes all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUNS=${RUNS:-runs}
FRESH=${FRESH:-0}
# The file in a work dir that names the export the main job made from it.
EXPORT_RECORD=demo-export.txt

# A finished run: a published model with its record, and no crash backup left to resume from.
finished() { [[ -f $1/model.keras && -f $1/model.json && ! -d $1/backup ]]; }

# Trains, evaluates and exports one app into its work dir, each step unless already done.
prepare() {
  local command=$1 workdir=$2 preset=$3
  if [[ $FRESH == 1 && -e $workdir ]]; then
    local aside
    aside="$workdir.old-$(date +%Y%m%d-%H%M%S)"
    mv "$workdir" "$aside"
    echo "FRESH=1: moved the earlier run to $aside"
  fi
  if finished "$workdir"; then
    echo "reusing the finished run in $workdir (make demo FRESH=1 trains it again)"
  else
    "$BIN/$command" train --workdir "$workdir" --preset "$preset"
  fi
  # "Not older than the model": file times tick in jiffies, so two quick steps can share one.
  if [[ -f $workdir/metrics.json && ! $workdir/model.keras -nt $workdir/metrics.json ]]; then
    echo "reusing its metrics in $workdir/metrics.json"
  else
    "$BIN/$command" evaluate --workdir "$workdir"
  fi
  local record=$workdir/$EXPORT_RECORD
  if [[ -f $record && -d $(cat "$record") && ! $workdir/model.keras -nt $record ]]; then
    echo "reusing its export $(cat "$record")"
  else
    "$BIN/$command" export --workdir "$workdir" | tee "$record.partial"
    tail -n 1 "$record.partial" > "$record"
    rm "$record.partial"
  fi
}

# The export the main job made from a work dir.
exported() { cat "$1/$EXPORT_RECORD"; }

echo "== sentiment: base preset on the movie-review snippets (mr) =="
prepare rnn-sentiment "$RUNS/sentiment" base
"$BIN/rnn-sentiment" predict --model "$(exported "$RUNS/sentiment")" \
  "A gripping, beautifully acted film that stays with you." \
  "Dull, predictable and far too long." \
  "The plot is thin, but the performances make it worth watching."

echo "== forecasting: quick preset on monthly sunspots =="
prepare rnn-forecast "$RUNS/forecasting" quick
"$BIN/rnn-forecast" tail --data sunspots --steps 132 --output "$RUNS/sunspots-recent.csv"
"$BIN/rnn-forecast" predict --model "$(exported "$RUNS/forecasting")" \
  --input "$RUNS/sunspots-recent.csv"

echo "== translation: small preset on the Ding German-English sentences =="
prepare rnn-translate "$RUNS/translation" small
"$BIN/rnn-translate" predict --model "$(exported "$RUNS/translation")" \
  "Das ist ein gutes Buch." "Ich habe keine Zeit." "Wo ist der Bahnhof?"

echo "== captioning: small preset on the emoji images (font fonts-noto-color-emoji) =="
prepare rnn-caption "$RUNS/captioning" small
# A few test images of the run, captioned by the export, next to their true names.
"$BIN/python" - "$RUNS/captioning" "$BIN/rnn-caption" "$(exported "$RUNS/captioning")" <<'PYTHON'
import json, subprocess, sys
workdir, command, export = sys.argv[1:]
metrics = json.load(open(f"{workdir}/metrics.json"))
samples = metrics["samples"][:5]
answer = subprocess.run(
    [command, "predict", "--model", export, *[sample["image"] for sample in samples]],
    check=True, capture_output=True, text=True,
).stdout.splitlines()
for sample, line in zip(samples, answer):
    row = json.loads(line)
    print(f"{row['caption']!r:45} (score {row['score']:.2f})  true name: {sample['references'][0]!r}")
PYTHON

echo "== activity: small preset on moving-digits (MNIST digits whose motion is the label) =="
prepare rnn-activity "$RUNS/activity" small
"$BIN/rnn-activity" clips --output-dir "$RUNS/activity-clips" --count 2 --preset small
"$BIN/rnn-activity" predict --model "$(exported "$RUNS/activity")" "$RUNS"/activity-clips/*

"$BIN/python" scripts/demo_summary.py --runs "$RUNS" \
  sentiment=base forecasting=quick translation=small captioning=small activity=small
