"""The forecasting app: time series on the shared CLI, training, export and tuning."""

from __future__ import annotations

import argparse

from apps.core.app import App
from apps.forecasting import config
from apps.forecasting.config import ForecastingConfig


class ForecastingApp(App[ForecastingConfig]):
    name = "forecasting"
    command = "rnn-forecast"
    package = "apps.forecasting"
    config_class = ForecastingConfig
    presets = config.PRESETS
    # Mean absolute error of the (median) forecast on the validation windows, normalized units.
    monitor = "val_mae"
    monitor_mode = "min"
    # Quantile models: the levels' offsets from the validation residuals (split conformal).
    calibrates_after_training = True

    def complete_config(self, config: ForecastingConfig) -> ForecastingConfig:
        return self.data.complete_config(config)

    def calibrate_after_training(self, model, config, datasets) -> bool:
        return self.evaluation.calibrate_quantiles(model, config, datasets)

    def add_commands(self, commands: argparse._SubParsersAction) -> None:
        tail = commands.add_parser(
            "tail", help="write the last steps of a dataset as CSV (an input for predict)"
        )
        tail.add_argument("--data", required=True, help="a dataset name or CSV file")
        tail.add_argument("--steps", type=int, required=True, help="how many last steps")
        tail.add_argument("--output", help="write here instead of stdout")
        tail.set_defaults(run=lambda app, args: app.serving.run_tail(args))


APP = ForecastingApp()
