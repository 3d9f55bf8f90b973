"""The sentiment app: text classification on the shared CLI, training, export and tuning."""

from __future__ import annotations

from apps.core.app import App
from apps.sentiment import config
from apps.sentiment.config import SentimentConfig


class SentimentApp(App[SentimentConfig]):
    name = "sentiment"
    command = "rnn-sentiment"
    package = "apps.sentiment"
    config_class = SentimentConfig
    presets = config.PRESETS
    monitor = "val_accuracy"
    monitor_mode = "max"


APP = SentimentApp()
