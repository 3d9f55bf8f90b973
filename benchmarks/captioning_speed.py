"""Captioning speed: training with and without the feature cache, and the export's greedy and
beam search served from a fresh process.

`training`: the same model (the preset with its backbone frozen) trains on emoji from cached
features (`model.cache_features=true`: the frozen CNN runs once per image before training)
and from images (`false`: the frozen CNN runs at every step); both run `--epochs` epochs one
after the other in this process and the fastest epoch counts (the first one holds the
tracing); images per second are training captions (one per emoji) per second of that epoch.

`serving`: the trained work dir (`captioning_quality.py --workdir`) is exported twice: as
trained (`trained`: it stops at [END]) and with its end token made impossible (`fixed`: every
caption runs all `model.max_caption_length` steps, so greedy and beam search decode the same
number of steps). One new interpreter that imports only tensorflow and tensorflow_text loads
both and times `serving_default` (greedy) and `beam_search` (beam 4) call by call in turn on
the same test images (PNG bytes), at batch 1 and batch 32, after one warm-up call per shape,
`--rounds` times, rotating the order every round: throughput (images/s over the fastest of
the rounds of every call) and latency percentiles p50/p99 over every call of every round.

    python benchmarks/captioning_speed.py training --preset small
    python benchmarks/captioning_speed.py serving --workdir /tmp/rnn-suite-benchmarks/captioning-app
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import keras
import numpy as np

from apps.captioning.app import APP
from apps.captioning.data import make_splits
from apps.core import config as config_lib
from apps.core import export, training
from pipelines.tokenizers import END_ID

IMPOSSIBLE_LOGIT = -1e4
BATCHES = (1, 32)

TIMER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    specification, paths = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    rounds, single_images = int(sys.argv[3]), int(sys.argv[4])
    images = [open(path, "rb").read() for path in paths]
    loaded = {path: tf.saved_model.load(path) for path in {s["path"] for s in specification}}
    functions = {s["name"]: loaded[s["path"]].signatures[s["signature"]] for s in specification}
    results = {}
    for batch in BATCHES:
        count = single_images if batch == 1 else len(images) // batch * batch
        batches = [tf.constant(images[i : i + batch]) for i in range(0, count, batch)]
        fastest = {name: [float("inf")] * len(batches) for name in functions}
        latencies = {name: [] for name in functions}
        for function in functions.values():
            function(image_bytes=batches[0])  # warm-up
        names = list(functions)
        for round_index in range(rounds):
            order = names[round_index % len(names):] + names[: round_index % len(names)]
            for position, image_bytes in enumerate(batches):
                for name in order:
                    started = time.perf_counter()
                    functions[name](image_bytes=image_bytes)["caption"].numpy()
                    elapsed = time.perf_counter() - started
                    fastest[name][position] = min(fastest[name][position], elapsed)
                    latencies[name].append(elapsed)
        for name in names:
            results[f"{name} batch {batch}"] = {
                "images_per_second": round(count / sum(fastest[name]), 1),
                "p50_ms": round(1000 * float(np.percentile(latencies[name], 50)), 1),
                "p99_ms": round(1000 * float(np.percentile(latencies[name], 99)), 1),
                "calls": len(latencies[name]),
            }
    print(json.dumps(results))
    """
).replace("BATCHES", repr(BATCHES))


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def training_speed(args) -> dict:
    results = {}
    for cached in (True, False):
        config = APP.presets[args.preset]()
        config_lib.apply_overrides(config, args.overrides)
        config.model.backbone_training = "frozen"
        config.model.cache_features = cached
        keras.utils.set_random_seed(config.training.seed)
        started = time.perf_counter()
        datasets = APP.data.load_data(config)
        load_seconds = time.perf_counter() - started
        model = training.build_model(APP, config, datasets.assets)
        times = EpochTimes()
        model.fit(datasets.train, epochs=args.epochs, callbacks=[times], verbose=2)
        captions = datasets.summary["captions"]["train"]
        results["cached features" if cached else "images"] = {
            "load_seconds": round(load_seconds, 1),
            "feature_cache_seconds": datasets.summary.get("feature_cache_seconds", 0.0),
            "epoch_seconds": [round(seconds, 2) for seconds in times.seconds],
            "train_images_per_second": round(captions / min(times.seconds), 1),
        }
    results["cached / images"] = round(
        results["cached features"]["train_images_per_second"]
        / results["images"]["train_images_per_second"],
        2,
    )
    results.update(preset=args.preset, overrides=args.overrides, epochs=args.epochs)
    return results


def forbid_end_token(model) -> None:
    values = np.array(model.logits.bias.numpy())
    values[END_ID] = IMPOSSIBLE_LOGIT
    model.logits.bias.assign(values)


def serving_speed(args) -> dict:
    config, model, assets = training.load_trained(APP, Path(args.workdir))
    config.decoding.serving_beam_width = 1
    config.decoding.beam_width = 4
    paths = make_splits(config)[1].test.paths[: args.images]
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        trained_path = export.export(APP, model, config, assets, root / "trained")
        forbid_end_token(model)
        fixed_path = export.export(APP, model, config, assets, root / "fixed")
        specification = [
            {"name": f"{mode} {search}", "path": str(path), "signature": signature}
            for mode, path in (("trained", trained_path), ("fixed", fixed_path))
            for search, signature in (("greedy", "serving_default"), ("beam 4", "beam_search"))
        ]
        completed = subprocess.run(
            [sys.executable, "-c", TIMER, json.dumps(specification), json.dumps(paths),
             str(args.rounds), str(args.single_images)],
            capture_output=True, text=True, check=True, env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        )  # fmt: skip
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    for mode in ("trained", "fixed"):
        for batch in BATCHES:
            beam = results[f"{mode} beam 4 batch {batch}"]["images_per_second"]
            greedy = results[f"{mode} greedy batch {batch}"]["images_per_second"]
            results[f"{mode} beam 4 / greedy batch {batch}"] = round(beam / greedy, 2)
    results.update(
        images=len(paths), rounds=args.rounds, single_images=args.single_images,
        max_caption_length=config.model.max_caption_length, parameters=model.count_params(),
    )  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["training", "serving"])
    parser.add_argument("--preset", default="small", help="training")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="training")
    parser.add_argument("--epochs", type=int, default=3, help="training")
    parser.add_argument("--workdir", default="/tmp/rnn-suite-benchmarks/captioning-app")
    parser.add_argument("--images", type=int, default=256, help="serving: test images")
    parser.add_argument("--single-images", type=int, default=64, help="serving: batch-1 calls")
    parser.add_argument("--rounds", type=int, default=3, help="serving")
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args()
    results = training_speed(args) if args.part == "training" else serving_speed(args)
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
