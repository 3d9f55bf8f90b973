"""Translation decoding speed of the export, measured in a fresh process (TF + TF Text only).

Exports a trained work dir (default: the one `translation_quality.py app` leaves) with
`apps.core.export.export`, then a new interpreter that imports only tensorflow and
tensorflow_text loads the SavedModel and times `serving_default` (greedy search) and
`beam_search` (beam 4) on test sentences of ding-de-en at batch 1 and batch 64, after one
warm-up call per shape.

    python benchmarks/translation_speed.py --workdir /tmp/rnn-suite-benchmarks/translation-app
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from apps.core import export, training
from apps.translation import APP
from apps.translation import data as data_lib

TIMER = textwrap.dedent(
    """
    import json, sys, time
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    model_dir, sentences, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    loaded = tf.saved_model.load(model_dir)
    results = {}
    for name in ("serving_default", "beam_search"):
        function = loaded.signatures[name]
        for batch in (1, 64):
            batches = [sentences[i : i + batch] for i in range(0, len(sentences), batch)]
            batches = [b for b in batches if len(b) == batch][: repeats * (8 if batch == 1 else 1)]
            function(source=tf.constant(batches[0]))  # warm-up
            started = time.perf_counter()
            for b in batches:
                function(source=tf.constant(b))
            seconds = time.perf_counter() - started
            results[f"{name} batch {batch}"] = round(len(batches) * batch / seconds, 1)
    print(json.dumps(results))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/rnn-suite-benchmarks/translation-app")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args()
    config, model, assets = training.load_trained(APP, Path(args.workdir))
    sentences = [source for source, _ in data_lib.make_splits(config)[1].test][: args.sentences]
    with tempfile.TemporaryDirectory() as export_root:
        path = export.export(APP, model, config, assets, Path(export_root))
        completed = subprocess.run(
            [sys.executable, "-c", TIMER, str(path), json.dumps(sentences), "4"],
            capture_output=True, text=True, check=True, env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        )  # fmt: skip
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    results["sentences"] = len(sentences)
    print(json.dumps(results, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
