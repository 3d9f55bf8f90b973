"""Translation on small corpora: the `base` preset, as a user runs it, against its baselines.

Builds small parallel corpora from what these machines reach (the Ding German-English
dictionary, Debian `trans-de-en`), writes each as a TSV file, and runs the app's own commands
on it, `train --preset base --data FILE` then `evaluate`, with no per-corpus setting but the
split seed (`data.split_seed`). Each run's `metrics.json` has greedy and beam BLEU beside the
retrieval and copy baselines on the same test pairs.

Corpora (seeded subsets, 3,000 pairs each):
    ding-de-en-3k          example sentences, German -> English
    ding-en-de-3k          example sentences, English -> German (another subset)
    ding-phrases-de-en-3k  dictionary phrases (entries of 3+ German words that are not
                           sentences: idioms, collocations), German -> English

    python benchmarks/translation_small_corpora.py --corpus ding-de-en-3k --seeds 1 \\
        --output results/translation-small.jsonl

Each run appends one JSON line to `--output`; `--summary` prints the mean per corpus.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from apps.translation import main
from pipelines.sources.sentence_pairs import (
    MINIMUM_SENTENCE_WORDS,
    SENTENCE_ENDINGS,
    ding_entries,
    find_ding_dictionary,
    load_ding_de_en,
)

CORPUS_SIZE = 3000
KEYS = (
    "bleu_greedy", "chrf_greedy", "length_capped_greedy", "bleu_retrieval", "bleu_copy",
    "chrf_retrieval", "length_ratio_greedy", "bleu_cased_greedy",
)  # fmt: skip


def ding_phrases() -> list[tuple[str, str]]:
    """Ding entries whose German side has 3+ words and is not a sentence, with English."""
    pairs = []
    for german_text, english_text in ding_entries(find_ding_dictionary()):
        words = len(german_text.split())
        if german_text.endswith(SENTENCE_ENDINGS) and words >= MINIMUM_SENTENCE_WORDS:
            continue
        if words >= 3 and english_text:
            pairs.append((german_text, english_text))
    return pairs


def corpus(name: str) -> list[tuple[str, str]]:
    """The seeded subset `name` (distinct sources)."""
    if name == "ding-phrases-de-en-3k":
        pairs, seed = ding_phrases(), 2
    else:
        ding = load_ding_de_en()
        pairs = list(zip(ding.sources, ding.targets, strict=True))
        if name == "ding-en-de-3k":
            pairs, seed = [(target, source) for source, target in pairs], 1
        elif name == "ding-de-en-3k":
            seed = 0
        else:
            raise SystemExit(f"unknown corpus {name!r}")
    unique = list(dict(pairs).items())  # first target of each source
    return random.Random(seed).sample(unique, CORPUS_SIZE)


def write_tsv(pairs: list[tuple[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["source\ttarget"] + [
        f"{source.replace(chr(9), ' ')}\t{target.replace(chr(9), ' ')}" for source, target in pairs
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(name: str, seed: int, root: Path, settings: list[str]) -> dict:
    data = root / f"{name}.tsv"
    if not data.is_file():
        write_tsv(corpus(name), data)
    workdir = root / f"{name}-seed{seed}"
    started = time.perf_counter()
    arguments = ["--data", str(data), "--workdir", str(workdir), "--set", f"data.split_seed={seed}"]
    for setting in settings:
        arguments += ["--set", setting]
    if main(["train", "--preset", "base", "--overwrite", *arguments]) != 0:
        raise SystemExit("train failed")
    trained = time.perf_counter()
    if main(["evaluate", "--workdir", str(workdir)]) != 0:
        raise SystemExit("evaluate failed")
    metrics = json.loads((workdir / "metrics.json").read_text())
    record = json.loads((workdir / "model.json").read_text())
    beam = f"beam{metrics['decoding']['beam_width']}"
    return {
        "corpus": name,
        "split_seed": seed,
        "settings": settings,
        "train_seconds": round(trained - started, 1),
        "epochs_run": record.get("epochs_run"),
        "split": metrics["split"],
        **{key: metrics[key] for key in KEYS},
        "beam": beam,
        "bleu_beam": metrics[f"bleu_{beam}"],
        "length_capped_beam": metrics[f"length_capped_{beam}"],
        "length_ratio_beam": metrics[f"length_ratio_{beam}"],
        "serving_default": metrics["serving_default"],
        "decoding": metrics["decoding"],
        "samples": metrics["samples"][:3],
    }


def summary(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups = sorted({(row["corpus"], " ".join(row.get("settings", []))) for row in rows})
    print(
        "| corpus | settings | seeds | greedy | beam | retrieval | copy | chrF greedy "
        "| capped greedy |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, settings in groups:
        runs = [
            row for row in rows
            if (row["corpus"], " ".join(row.get("settings", []))) == (name, settings)
        ]  # fmt: skip

        def mean(key, runs=runs):
            return sum(row[key] for row in runs) / len(runs)

        print(
            f"| {name} | {settings or '-'} | {','.join(str(row['split_seed']) for row in runs)} | "
            f"{mean('bleu_greedy'):.2f} | {mean('bleu_beam'):.2f} | {mean('bleu_retrieval'):.2f} "
            f"| {mean('bleu_copy'):.2f} | {mean('chrf_greedy'):.1f} | "
            f"{mean('length_capped_greedy'):.1%} |"
        )


def main_benchmark() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", default=[])
    parser.add_argument("--seeds", default="1", help="comma-separated split seeds")
    parser.add_argument("--root", default="/tmp/rnn-suite-benchmarks/translation-small")
    parser.add_argument("--output", required=True, help="JSON lines, appended")
    parser.add_argument("--summary", action="store_true", help="only print the table")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="a setting on top of `base` (for ablations; the benchmark's figures use none)",
    )  # fmt: skip
    args = parser.parse_args()
    output = Path(args.output)
    if not args.summary:
        for name in args.corpus:
            for seed in [int(value) for value in args.seeds.split(",")]:
                result = run(name, seed, Path(args.root), args.set)
                print(json.dumps(result, ensure_ascii=False), flush=True)
                output.parent.mkdir(parents=True, exist_ok=True)
                with output.open("a", encoding="utf-8") as file:
                    file.write(json.dumps(result, ensure_ascii=False) + "\n")
    summary(output)


if __name__ == "__main__":
    main_benchmark()
