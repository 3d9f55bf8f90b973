"""The decoding settings chosen on validation, the retrieval baseline and sacreBLEU scores."""

from __future__ import annotations

import dataclasses

import keras
import pytest

from apps.core.generation import generate_with_scores
from apps.core.metrics import translation_metrics
from apps.translation import evaluation, serving
from apps.translation.app import APP
from apps.translation.data import PairSplits, TranslationAssets, TranslationDatasets
from pipelines.tokenizers import learn_vocabulary

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
SOURCES = [" ".join(WORDS[index : index + 3]) for index in range(8)]


@pytest.fixture(scope="module")
def untrained():
    """An untrained tiny model (its greedy and beam outputs differ) and a config whose
    choice tries one beam setting."""
    keras.utils.set_random_seed(3)
    config = APP.make_config("tiny")
    config.decoding = dataclasses.replace(
        config.decoding, choose_on_validation=True, candidate_ngram_sizes=(0,),
        candidate_beam_widths=(3,), candidate_length_penalties=(1.0,),
    )  # fmt: skip
    vocabulary = learn_vocabulary(WORDS, 50, lowercase=True, subwords=False)
    assets = TranslationAssets(vocabulary, vocabulary, lowercase=True)
    return config, APP.model.build_model(config, assets), assets


def translations(model, config, assets, beam_width, length_penalty=1.0):
    config = dataclasses.replace(
        config, decoding=dataclasses.replace(config.decoding, length_penalty=length_penalty)
    )
    function = serving.translation_function(model, *assets.tokenizers(), config, beam_width)
    return generate_with_scores(function, SOURCES, "translation")[0]


def datasets_with_targets(assets, targets):
    pairs = PairSplits(
        train=[], validation=list(zip(SOURCES, targets, strict=True)), test=[], duplicates=0
    )
    return TranslationDatasets(train=None, validation=None, test=None, assets=assets, pairs=pairs)


def test_greedy_search_serves_when_no_beam_setting_beats_it_on_validation():
    greedy = {0: 9.9, 3: 10.4}
    beams = {(2, 0.5): 7.8, (2, 1.0): 10.4, (4, 0.5): 8.0, (4, 1.0): 9.0}
    choice = evaluation.pick_decoding(greedy, beams, 100)
    assert (choice.no_repeat_ngram_size, choice.beam_width, choice.length_penalty) == (3, 2, 1.0)
    assert choice.serving_beam_width == 1  # a tie is not a win
    assert choice.description == (
        "on 100 validation pairs, BLEU greedy 9.90 (no-repeat 0), 10.40 (no-repeat 3); beams "
        "with no-repeat 3 (width/length penalty): 2/0.5 7.80, 2/1 10.40, 4/0.5 8.00, 4/1 9.00; "
        "serving_default: greedy (no beam setting beat greedy search)"
    )
    beams[4, 0.5] = 10.5
    choice = evaluation.pick_decoding(greedy, beams, 100)
    assert (choice.beam_width, choice.length_penalty, choice.serving_beam_width) == (4, 0.5, 4)


@pytest.mark.large  # about 4 graph traces: 15-50 s
def test_the_choice_serves_greedy_search_when_beam_search_loses_on_validation(untrained):
    config, model, assets = untrained
    greedy = translations(model, config, assets, 1)
    beam = translations(model, config, assets, 3)
    assert greedy != beam  # otherwise the crafted sets below would not differ
    chosen = evaluation.choose_decoding(model, config, datasets_with_targets(assets, greedy))
    assert chosen.decoding.serving_beam_width == 1
    assert (chosen.decoding.beam_width, chosen.decoding.length_penalty) == (3, 1.0)
    assert chosen.decoding.chosen.endswith(
        "serving_default: greedy (no beam setting beat greedy search)"
    )
    chosen = evaluation.choose_decoding(model, config, datasets_with_targets(assets, beam))
    assert chosen.decoding.serving_beam_width == 3
    assert chosen.decoding.chosen.endswith("serving_default: beam3")


def test_the_choice_is_skipped_when_turned_off(untrained):
    config, model, assets = untrained
    config = dataclasses.replace(
        config, decoding=dataclasses.replace(config.decoding, choose_on_validation=False)
    )
    datasets = datasets_with_targets(assets, SOURCES)
    assert evaluation.choose_decoding(model, config, datasets) is config


def test_retrieval_baseline_answers_with_the_target_of_the_most_similar_source():
    train = [
        ("der hund schläft", "the dog sleeps"),
        ("die katze schläft", "the cat sleeps"),
        ("der hund bellt laut", "the dog barks loudly"),
    ]
    sources = ["die katze", "hund bellt", "der hund schläft nicht", "xyz"]
    assert evaluation.retrieval_translations(train, sources) == [
        "the cat sleeps",
        "the dog barks loudly",
        "the dog sleeps",
        "the dog sleeps",  # no shared word: the first pair
    ]


def test_translation_metrics_match_sacrebleu_by_hand():
    references = ["The cat sat on the mat.", "A dog barked."]
    hypotheses = ["the cat sat on the mat.", "a dog barked."]
    scores = translation_metrics(references, hypotheses)
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["bleu_cased"] < 100.0 and scores["length_ratio"] == 1.0
    short = translation_metrics(["one two three four"], ["one two"])
    assert short["length_ratio"] == 0.5
    # a 2-token hypothesis has no 3- and 4-grams, so its BLEU-4 is 0
    assert short["bleu"] == 0.0


def test_validation_bleu_tells_early_outputs_apart_where_unsmoothed_bleu_is_zero():
    from apps.core.metrics import corpus_bleu

    references = [["we are mostly out on sundays ."], ["she learned the speech by heart ."]]
    worse = ["we are the the", "the the speech"]
    better = ["we are out on the", "she the speech by the"]
    assert corpus_bleu(references, worse) == corpus_bleu(references, better) == 0.0
    assert evaluation.sacrebleu_bleu(references, worse) > 0.0
    assert evaluation.sacrebleu_bleu(references, worse) < evaluation.sacrebleu_bleu(
        references, better
    )
