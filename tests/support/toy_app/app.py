"""The toy app's declaration."""

from apps.core.app import App
from toy_app import config


class ToyApp(App[config.ToyConfig]):
    name = "toy"
    command = "rnn-toy"
    package = "toy_app"
    config_class = config.ToyConfig
    presets = config.PRESETS
    default_preset = "tiny"


APP = ToyApp()
