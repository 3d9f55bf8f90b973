"""The activity app: video (or sensor) clip classification on the shared CLI, training,
export and tuning."""

from __future__ import annotations

import argparse

from apps.activity import config
from apps.activity.config import ActivityConfig
from apps.core.app import App
from apps.core.cli import positive_int


class ActivityApp(App[ActivityConfig]):
    name = "activity"
    command = "rnn-activity"
    package = "apps.activity"
    config_class = ActivityConfig
    presets = config.PRESETS
    monitor = "val_accuracy"
    monitor_mode = "max"

    def add_commands(self, commands: argparse._SubParsersAction) -> None:
        clips = commands.add_parser(
            "clips",
            help="write moving-digits test clips as GIF and MP4 files (inputs for predict)",
        )
        clips.add_argument("--output-dir", required=True, help="folder for the clip files")
        clips.add_argument("--count", type=positive_int, default=2, help="clips of each file type")
        clips.add_argument(
            "--preset", default="small", choices=sorted(self.presets), help="clip settings"
        )
        clips.add_argument("--seed", type=int, default=99, help="clip seed")
        clips.set_defaults(run=lambda app, args: app.serving.run_clips(app, args))


APP = ActivityApp()
