"""FusedAdamW: the same updates as keras.optimizers.AdamW, and a model that saves and reloads;
the training optimizer's learning-rate schedule and weight decay."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps.core.app import Datasets
from apps.core.config import TrainingConfig
from apps.core.errors import UserError
from apps.core.optimizers import FusedAdamW
from apps.core.training import NO_WEIGHT_DECAY, fit, fit_schedule_to_run
from apps.core.training import learning_rate as training_learning_rate
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


def cosine_closed_form(step, peak, warmup_steps, decay_steps, final_fraction):
    if step < warmup_steps:
        return peak * step / warmup_steps
    progress = min(step - warmup_steps, decay_steps) / decay_steps
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def compiled_regression(training):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=training_optimizer(training), loss="mse")
    return model


def test_the_constant_schedule_is_the_configured_float():
    assert training_learning_rate(TrainingConfig(learning_rate=3e-3)) == 3e-3


def test_the_cosine_schedule_warms_up_then_decays_over_the_run():
    training = TrainingConfig(
        learning_rate=1e-2,
        learning_rate_schedule="cosine",
        warmup_steps=10,
        final_learning_rate_fraction=0.1,
    )
    model = compiled_regression(training)
    # 100 examples in batches of 10 whose count tf.data cannot tell (the filter): 10 steps an
    # epoch, so 11 epochs are 110 steps, 100 of them after the warm-up.
    dataset = tf.data.Dataset.range(100).filter(lambda value: value >= 0).batch(10)
    assert int(dataset.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    fit_schedule_to_run(model, dataset, epochs=11)
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    expected = {0: 0.0, 5: 5e-3, 10: 1e-2, 60: 5.5e-3, 110: 1e-3, 150: 1e-3}
    for step, value in expected.items():
        np.testing.assert_allclose(
            cosine_closed_form(step, 1e-2, 10, 100, 0.1), value, rtol=1e-12, atol=1e-15
        )
        np.testing.assert_allclose(float(schedule(step)), value, rtol=1e-6, atol=1e-9)
    for step in (3, 37, 99):
        np.testing.assert_allclose(
            float(schedule(step)), cosine_closed_form(step, 1e-2, 10, 100, 0.1), rtol=1e-6
        )


def test_training_fit_runs_the_cosine_schedule_to_its_final_rate(tmp_path):
    training = TrainingConfig(learning_rate=1e-2, learning_rate_schedule="cosine", warmup_steps=3)
    model = compiled_regression(training)
    train = tf.data.Dataset.from_tensor_slices((np.ones((40, 3)), np.zeros((40, 1)))).batch(8)
    datasets = Datasets(train=train, validation=None, test=None, assets=None)
    fit(model, datasets, epochs=2, callbacks=[], verbose=0)
    assert int(model.optimizer.iterations) == 10
    assert model.optimizer._learning_rate.decay_steps == 7
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 1e-3, rtol=1e-6)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras").optimizer._learning_rate
    assert (reloaded.decay_steps, reloaded.warmup_steps) == (7, 3)


def test_a_warm_up_as_long_as_the_run_is_an_error():
    model = compiled_regression(TrainingConfig(learning_rate_schedule="cosine", warmup_steps=20))
    with pytest.raises(UserError, match="training.warmup_steps: 20 warm-up steps"):
        fit_schedule_to_run(model, tf.data.Dataset.range(40).batch(8), epochs=4)


def decay_model():
    token_ids = keras.Input((None,), dtype="int64")
    x = keras.layers.Embedding(20, 4, name="embedding")(token_ids)
    x = keras.layers.GRU(3, return_sequences=True, name="gru")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    outputs = keras.layers.Dense(2, name="dense")(x)
    model = keras.Model(token_ids, outputs, name="decay")
    rng = np.random.default_rng(1)
    for variable in model.trainable_variables:  # no zeros: decay would show on every one
        variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    return model


def keras_adamw_without_decay_on_biases_and_norms():
    adamw = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    adamw.exclude_from_weight_decay(var_names=[NO_WEIGHT_DECAY])
    return adamw


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: training_optimizer(TrainingConfig(learning_rate=0.1, weight_decay=0.5)),
        keras_adamw_without_decay_on_biases_and_norms,
    ],
    ids=["training-fused-adamw", "keras-adamw"],
)
def test_weight_decay_shrinks_kernels_and_embeddings_only(make_optimizer):
    model, optimizer = decay_model(), make_optimizer()
    before = {variable.path: variable.numpy() for variable in model.trainable_variables}
    zeros = [tf.zeros_like(variable) for variable in model.trainable_variables]
    tf.function(lambda: optimizer.apply(zeros, model.trainable_variables))()
    after = {variable.path: variable.numpy() for variable in model.trainable_variables}
    assert set(after) == {
        "embedding/embeddings",
        "gru/gru_cell/kernel",
        "gru/gru_cell/recurrent_kernel",
        "gru/gru_cell/bias",
        "norm/gamma",
        "norm/beta",
        "dense/kernel",
        "dense/bias",
    }
    decayed = {path for path in before if not np.array_equal(after[path], before[path])}
    assert decayed == {
        "embedding/embeddings",
        "gru/gru_cell/kernel",
        "gru/gru_cell/recurrent_kernel",
        "dense/kernel",
    }
    for path in decayed:  # Adam's step is zero for zero gradients: only the decay moved them
        np.testing.assert_allclose(after[path], before[path] * (1 - 0.1 * 0.5), rtol=1e-6)
