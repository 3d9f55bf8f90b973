import keras_tuner

from apps.forecasting import config as config_lib
from apps.forecasting.app import APP


def test_search_space_defaults_keep_the_config_and_choices_apply():
    base = config_lib.base()
    hp = keras_tuner.HyperParameters()
    config = APP.search_space.search_space(hp, base)
    assert config == base and config is not base
    assert set(hp.values) == {
        "model_type",
        "cell",
        "units",
        "num_layers",
        "dropout",
        "lookback",
        "learning_rate",
        "batch_size",
    }
    hp.values.update({"lookback": 264, "model_type": "encoder-decoder", "units": 16})
    chosen = APP.search_space.search_space(hp, base)
    assert chosen.data.lookback == 264 and chosen.model.recurrent_window == 48
    assert chosen.model.model_type == "encoder-decoder" and chosen.model.units == 16


def test_the_highway_follows_the_chosen_lookback():
    config = config_lib.quick()
    config.data.lookback, config.evaluation.season = 48, 12
    config.model.highway_window, config.model.recurrent_window = 48, 40
    hp = keras_tuner.HyperParameters()
    APP.search_space.search_space(hp, config)
    hp.values["lookback"] = 24
    chosen = APP.search_space.search_space(hp, config)
    # A recurrent window longer than the lookback reads all of it.
    assert chosen.model.highway_window == 24 and chosen.model.recurrent_window == 40
