"""The translation app: an encoder-decoder with attention on the shared CLI, training, export
and tuning."""

from __future__ import annotations

import argparse

from apps.core.app import App
from apps.core.cli import positive_int
from apps.translation import config
from apps.translation.config import TranslationConfig


class TranslationApp(App[TranslationConfig]):
    name = "translation"
    command = "rnn-translate"
    package = "apps.translation"
    config_class = TranslationConfig
    presets = config.PRESETS
    monitor = "val_bleu"
    monitor_mode = "max"
    chosen_after_training_fields = (
        "decoding.beam_width",
        "decoding.length_penalty",
        "decoding.no_repeat_ngram_size",
        "decoding.serving_beam_width",
        "decoding.chosen",
    )

    def choose_after_training(self, model, config, datasets):
        return self.evaluation.choose_decoding(model, config, datasets)

    def add_commands(self, commands: argparse._SubParsersAction) -> None:
        translate = commands.add_parser(
            "translate", help="translate sentences with a trained work dir; plot the attention"
        )
        translate.add_argument("--workdir", required=True, help="a trained work dir")
        translate.add_argument("sentences", nargs="*", metavar="SENTENCE")
        translate.add_argument(
            "--beam-width", type=positive_int, default=1, help="1: greedy search (default)"
        )
        translate.add_argument(
            "--plot-attention", metavar="PNG", help="write the attention heatmaps here"
        )
        translate.set_defaults(run=lambda app, args: app.evaluation.run_translate(app, args))


APP = TranslationApp()
