"""The captioning app: an image encoder and an attention decoder on the shared CLI, training,
export and tuning."""

from __future__ import annotations

import argparse

from apps.captioning import config
from apps.captioning.config import CaptioningConfig
from apps.core import cli
from apps.core.app import App


def run_predict(app: CaptioningApp, args: argparse.Namespace) -> None:
    """The shared `predict`, then the attention plots when `--plot-attention` asks for them."""
    cli.run_predict(app, args)
    if args.plot_attention:
        app.evaluation.plot_attention_maps(app, args)


class CaptioningApp(App[CaptioningConfig]):
    name = "captioning"
    command = "rnn-caption"
    package = "apps.captioning"
    config_class = CaptioningConfig
    presets = config.PRESETS
    monitor = "val_bleu"
    monitor_mode = "max"

    def add_commands(self, commands: argparse._SubParsersAction) -> None:
        predict = commands.choices["predict"]
        predict.add_argument(
            "--plot-attention",
            metavar="DIR",
            help="write one PNG per image into DIR: the attention over the image for each "
            "generated word (--model must be a work dir)",
        )
        predict.set_defaults(run=run_predict)


APP = CaptioningApp()
