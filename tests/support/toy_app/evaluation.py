import numpy as np


def evaluate(model, config, datasets, workdir):
    errors = [np.abs(model(x) - y) for x, y in datasets.test]
    return {"mae": float(np.mean(np.concatenate(errors)))}


def validation_callbacks(config, datasets):
    return []
