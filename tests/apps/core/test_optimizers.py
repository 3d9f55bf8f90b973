"""FusedAdamW: the same updates as keras.optimizers.AdamW, and a model that saves and reloads."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from apps.core.config import TrainingConfig
from apps.core.optimizers import FusedAdamW
from apps.core.training import optimizer as training_optimizer


def trained_weights(optimizer_class, initial, gradients):
    variables = [keras.Variable(value) for value in initial]
    optimizer = optimizer_class(learning_rate=1e-2, weight_decay=1e-2, global_clipnorm=1.0)

    @tf.function
    def step(values, indices, dense):
        table_gradient = tf.IndexedSlices(values, indices, tf.constant([50, 4], tf.int64))
        optimizer.apply([table_gradient, dense], variables)

    for values, indices, dense in gradients:
        step(values, indices, dense)
    return [variable.numpy() for variable in variables]


def test_updates_equal_keras_adamw_with_sparse_and_dense_gradients():
    rng = np.random.default_rng(0)
    initial = [rng.normal(size=(50, 4)).astype("float32"), rng.normal(size=4).astype("float32")]
    # Row 3 appears twice in every embedding-style gradient, as in a batch repeating a word.
    indices = tf.constant([1, 3, 3, 7, 49, 0], tf.int64)
    gradients = [
        (
            tf.constant(rng.normal(size=(6, 4)), tf.float32),
            indices,
            tf.constant(rng.normal(size=4), tf.float32),
        )
        for _ in range(4)
    ]
    expected = trained_weights(keras.optimizers.AdamW, initial, gradients)
    fused = trained_weights(FusedAdamW, initial, gradients)
    for want, got, start in zip(expected, fused, initial, strict=True):
        assert np.abs(want - start).max() > 1e-2  # the weights did move
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_training_optimizer_is_fused_takes_the_config_and_round_trips(tmp_path):
    training = TrainingConfig(learning_rate=3e-3, weight_decay=0.05, clip_norm=2.0)
    optimizer = training_optimizer(training)
    assert isinstance(optimizer, FusedAdamW)
    assert optimizer.weight_decay == 0.05 and optimizer.global_clipnorm == 2.0
    np.testing.assert_allclose(float(optimizer.learning_rate), 3e-3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(reloaded.optimizer, FusedAdamW)
    np.testing.assert_allclose(
        reloaded.predict(np.ones((1, 3)), verbose=0), model.predict(np.ones((1, 3)), verbose=0)
    )
