"""Translation decoding speed of the export against the reference, side by side in a fresh process.

Every SavedModel below is loaded by one new interpreter that imports only tensorflow and
tensorflow_text; it times them call by call in turn (the order rotating every round) on the
same ding-de-en test sentences, at batch 1 and batch 64, after one warm-up call per shape,
and counts the fastest of the `--rounds` times of every call (the machine is shared).

- `fixed`: the app's export (`serving_default`: greedy, `beam_search`: beam 4) against the
  reference's greedy decoder (`benchmarks/translation_reference.py`: one `tf.function` holding
  a batched `tf.while_loop`, exported the same way) built at the app's size: the same
  vocabulary size, embedding width and decoder width. The reference is untrained, so the end
  token is made impossible in both models (its logit bias set to -1e4) and both decode
  exactly `--steps` tokens per sentence: the same number of decoder steps on the same inputs.
- `trained`: the trained app's export as served (it stops at [END] or at 1.5 x source + 5
  tokens): greedy against beam 4.

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

import keras
import numpy as np
import tensorflow as tf
import translation_reference as reference

from apps.core import export, training
from apps.translation import data as data_lib
from apps.translation.app import APP
from pipelines.tokenizers import END_ID

IMPOSSIBLE_LOGIT = -1e4

TIMER = textwrap.dedent(
    """
    import itertools, json, sys, time
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    specification, sentences = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    rounds, single_sentences = int(sys.argv[3]), int(sys.argv[4])
    loaded = {path: tf.saved_model.load(path) for path in {s["path"] for s in specification}}
    functions = {
        s["name"]: (loaded[s["path"]].signatures[s["signature"]], s["input"])
        for s in specification
    }
    results = {}
    for batch in (1, 64):
        count = single_sentences if batch == 1 else len(sentences) // 64 * 64
        batches = [tf.constant(sentences[i : i + batch]) for i in range(0, count, batch)]
        # The fastest of the rounds for every call: the least disturbed by other processes.
        seconds = {name: [float("inf")] * len(batches) for name in functions}
        for function, input_name in functions.values():
            function(**{input_name: batches[0]})  # warm-up
        names = list(functions)
        for round_index in range(rounds):
            order = names[round_index % len(names):] + names[: round_index % len(names)]
            for position, source in enumerate(batches):
                for name in order:
                    function, input_name = functions[name]
                    started = time.perf_counter()
                    function(**{input_name: source})
                    elapsed = time.perf_counter() - started
                    seconds[name][position] = min(seconds[name][position], elapsed)
        for name in names:
            results[f"{name} batch {batch}"] = round(count / sum(seconds[name]), 1)
    print(json.dumps(results))
    """
)


def reference_at_app_size(model: keras.Model, pairs, steps: int) -> reference.Translator:
    """The reference with the app's target vocabulary size, embedding and decoder widths."""
    target_embedding = model.target_embedding
    translator = reference.Translator.from_pairs(
        pairs, units=model.decoder.units,
        vocabulary_size=target_embedding.input_dim,
        embedding_dim=target_embedding.output_dim, max_output_tokens=steps,
    )  # fmt: skip
    ids = tf.ones((1, 3), tf.int64)
    translator((ids, ids))  # builds the weights
    return translator


def forbid_end_token(bias: keras.Variable, end_id: int) -> None:
    values = np.array(bias.numpy())
    values[end_id] = IMPOSSIBLE_LOGIT
    bias.assign(values)


def export_reference(translator: reference.Translator, directory: Path) -> Path:
    archive = keras.export.ExportArchive()
    for vectorizer in (translator.context_vectorizer, translator.target_vectorizer):
        vectorizer.build()
        archive.track(vectorizer)
    archive.track(translator)
    archive.add_endpoint("serving_default", translator.translate_graph)
    archive.write_out(str(directory), verbose=False)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/rnn-suite-benchmarks/translation-app")
    parser.add_argument("--sentences", type=int, default=256, help="test sentences at batch 64")
    parser.add_argument("--single-sentences", type=int, default=32, help="calls at batch 1")
    parser.add_argument("--steps", type=int, default=20, help="decoder steps in `fixed`")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", help="write the figures here as JSON")
    args = parser.parse_args()
    config, model, assets = training.load_trained(APP, Path(args.workdir))
    splits = data_lib.make_splits(config)[1]
    sentences = [source for source, _ in splits.test][: args.sentences]
    translator = reference_at_app_size(model, splits.train, args.steps)
    forbid_end_token(translator.output_layer.bias, translator.end_id)
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        trained_path = export.export(APP, model, config, assets, root / "trained")
        forbid_end_token(model.logits.bias, END_ID)
        config.decoding.max_length_ratio = 0.0
        config.decoding.max_length_offset = args.steps
        fixed_path = export.export(APP, model, config, assets, root / "fixed")
        reference_path = export_reference(translator, root / "reference")
        specification = [
            {"name": name, "path": str(path), "signature": signature, "input": input_name}
            for name, path, signature, input_name in [
                ("fixed app greedy", fixed_path, "serving_default", "source"),
                ("fixed app beam 4", fixed_path, "beam_search", "source"),
                ("fixed reference greedy", reference_path, "serving_default", "sources"),
                ("trained app greedy", trained_path, "serving_default", "source"),
                ("trained app beam 4", trained_path, "beam_search", "source"),
            ]
        ]
        completed = subprocess.run(
            [sys.executable, "-c", TIMER, json.dumps(specification), json.dumps(sentences),
             str(args.rounds), str(args.single_sentences)],
            capture_output=True, text=True, check=True, env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        )  # fmt: skip
    results = json.loads(completed.stdout.strip().splitlines()[-1])

    def ratio(numerator, denominator, batch):
        return round(
            results[f"{numerator} batch {batch}"] / results[f"{denominator} batch {batch}"], 2
        )

    for batch in (1, 64):
        results[f"fixed app greedy / reference batch {batch}"] = ratio(
            "fixed app greedy", "fixed reference greedy", batch
        )
        for mode in ("fixed", "trained"):
            results[f"{mode} beam 4 / greedy batch {batch}"] = ratio(
                f"{mode} app beam 4", f"{mode} app greedy", batch
            )
    results.update(
        sentences=len(sentences), steps=args.steps, rounds=args.rounds,
        parameters={"app": model.count_params(), "reference": translator.count_params()},
    )  # fmt: skip
    print(json.dumps(results, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
