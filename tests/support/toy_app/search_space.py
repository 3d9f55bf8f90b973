import copy

from apps.core.search_space import choice


def search_space(hp, config):
    config = copy.deepcopy(config)
    config.training.learning_rate = choice(hp, "learning_rate", [0.01, 0.05], 0.05)
    return config
