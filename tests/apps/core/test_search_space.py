"""Every app's search space holds each of its presets: its default point is the preset itself."""

import keras_tuner
import pytest

from apps.activity.app import APP as ACTIVITY
from apps.captioning.app import APP as CAPTIONING
from apps.core.search_space import choice
from apps.forecasting.app import APP as FORECASTING
from apps.sentiment.app import APP as SENTIMENT
from apps.translation.app import APP as TRANSLATION

CASES = [
    (app, preset)
    for app in (SENTIMENT, FORECASTING, TRANSLATION, CAPTIONING, ACTIVITY)
    for preset in app.presets
]


@pytest.mark.parametrize(("app", "preset"), CASES, ids=[f"{a.name}-{p}" for a, p in CASES])
def test_default_point_of_the_space_is_the_preset(app, preset):
    config = app.make_config(preset)
    hyperparameters = keras_tuner.HyperParameters()
    assert app.search_space.search_space(hyperparameters, config) == config
    assert hyperparameters.values  # the space is not empty


def test_choice_adds_the_default_to_the_options():
    hyperparameters = keras_tuner.HyperParameters()
    assert choice(hyperparameters, "units", [32, 64], 8) == 8
    assert hyperparameters.space[0].values == [8, 32, 64]
