"""Seeded random triples and their sums, split by the shared fractions."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from apps.core.app import Assets, Datasets
from toy_app.config import ToyConfig


class ToyAssets(Assets):
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "toy.txt").write_text("no fitted state\n")

    @classmethod
    def load(cls, directory: Path) -> "ToyAssets":
        return cls()


ASSETS_CLASS = ToyAssets


def load_data(config: ToyConfig, assets=None, whole_as_test=False) -> Datasets:
    rng = np.random.default_rng(config.data.split_seed)
    x = rng.normal(size=(config.data.examples, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    test = int(len(x) * config.data.test_fraction)
    validation = int(len(x) * config.data.validation_fraction)

    def batches(rows):
        return tf.data.Dataset.from_tensor_slices((x[rows], y[rows])).batch(
            config.training.batch_size
        )

    parts = np.arange(len(x))
    return Datasets(
        train=None if whole_as_test else batches(parts[test + validation :]),
        validation=None if whole_as_test else batches(parts[test : test + validation]),
        test=batches(parts if whole_as_test else parts[:test]),
        assets=assets or ToyAssets(),
        summary={"examples": len(x)},
    )
