"""Beam search's length penalty chosen on the validation split of a trained translation work dir.

Scores greedy search and beam search (width 4) under several GNMT length penalties with corpus
BLEU on the validation and test splits of the work dir's own data split, and prints the mean
output length (words) beside each, so the penalty can be chosen on validation and reported
on test.

    python benchmarks/translation_length_penalty.py \
        --workdir /tmp/rnn-suite-benchmarks/translation-app
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from apps.core import training
from apps.core.generation import generate_with_scores
from apps.core.metrics import corpus_bleu
from apps.translation import data, serving
from apps.translation.app import APP
from apps.translation.evaluation import canonical_targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a trained translation work dir")
    parser.add_argument("--penalties", default="0,0.6,1,1.5,2", help="comma-separated")
    parser.add_argument("--beam-width", type=int, default=4)
    args = parser.parse_args()
    config, trained, assets = training.load_trained(APP, Path(args.workdir))
    splits = data.make_splits(config)[1]
    source_tokenizer, target_tokenizer = assets.tokenizers()
    searches = [(1, 0.0)] + [(args.beam_width, float(value))
                             for value in args.penalties.split(",")]  # fmt: skip
    for split_name in ["validation", "test"]:
        pairs = getattr(splits, split_name)
        sources = [source for source, _ in pairs]
        references = [[text] for text in canonical_targets(target_tokenizer, pairs)]
        for width, penalty in searches:
            config.decoding.length_penalty = penalty
            function = serving.translation_function(
                trained, source_tokenizer, target_tokenizer, config, width
            )
            translations, _, _ = generate_with_scores(function, sources, "translation")
            words = sum(len(text.split()) for text in translations) / len(translations)
            print(json.dumps({"split": split_name, "beam_width": width, "length_penalty": penalty,
                              "bleu": round(corpus_bleu(references, translations), 2),
                              "mean_words": round(words, 2)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
