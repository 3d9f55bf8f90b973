"""The checkpoint that training publishes: whole after a crash, with the score it was saved for;
models built under the configured mixed-precision policy."""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from toy_app.app import APP as TOY

from apps.core import training
from apps.core.optimizers import FusedAdamW
from apps.sentiment.app import APP as SENTIMENT


def checkpoint_callbacks(workdir, threshold=None):
    staged, published = workdir / training.STAGED_MODEL_FILE, workdir / training.MODEL_FILE
    return [
        keras.callbacks.ModelCheckpoint(
            str(staged),
            monitor="val_loss",
            save_best_only=True,
            initial_value_threshold=threshold,
        ),
        training.PublishCheckpoint(
            staged, published, workdir / training.MODEL_RECORD_FILE, "val_loss"
        ),
    ]


def regression(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    features = np.random.default_rng(seed).normal(size=(64, 3)).astype("float32")
    return model, features, features @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")


def test_the_published_model_is_the_best_epoch_and_records_its_score(tmp_path):
    model, x, y = regression()
    history = model.fit(
        x, y, validation_data=(x, y), epochs=4, verbose=0, callbacks=checkpoint_callbacks(tmp_path)
    )
    best = min(history.history["val_loss"])
    record = json.loads((tmp_path / training.MODEL_RECORD_FILE).read_text())
    assert record == {"val_loss": best, "epoch": 4}  # the loss falls every epoch here
    assert not (tmp_path / training.STAGED_MODEL_FILE).exists()
    published = keras.saving.load_model(tmp_path / training.MODEL_FILE)
    np.testing.assert_allclose(published.evaluate(x, y, verbose=0), best, rtol=1e-5)
    assert training.published_value(tmp_path, "val_loss") == best


def test_a_partial_staged_write_never_replaces_the_published_model(tmp_path):
    model, x, y = regression()
    model.fit(
        x, y, validation_data=(x, y), epochs=2, verbose=0, callbacks=checkpoint_callbacks(tmp_path)
    )
    published_bytes = (tmp_path / training.MODEL_FILE).read_bytes()
    best = training.published_value(tmp_path, "val_loss")
    # A kill while Keras wrote the staged file left half of one behind; the resumed run's
    # next epoch is worse than the published model (learning rate 0, another start).
    (tmp_path / training.STAGED_MODEL_FILE).write_bytes(b"PK\x03\x04 half a zip")
    worse, _, _ = regression(seed=1)
    worse.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    worse.fit(
        x,
        y,
        validation_data=(x, y),
        epochs=1,
        verbose=0,
        callbacks=checkpoint_callbacks(tmp_path, threshold=best),
    )
    assert (tmp_path / training.MODEL_FILE).read_bytes() == published_bytes
    assert not (tmp_path / training.STAGED_MODEL_FILE).exists()
    assert training.published_value(tmp_path, "val_loss") == best


@pytest.mark.parametrize(
    ("mixed_precision", "policy"),
    [("off", "float32"), ("mixed_bfloat16", "mixed_bfloat16"), ("mixed_float16", "mixed_float16")],
)
def test_the_model_is_built_under_the_policy_and_the_global_policy_is_restored(
    mixed_precision, policy, monkeypatch
):
    config = TOY.make_config("tiny")
    config.training.mixed_precision = mixed_precision
    model = training.build_model(TOY, config, None)
    assert keras.config.dtype_policy().name == "float32"
    assert model.get_layer("sum").dtype_policy.name == policy
    if policy == "mixed_float16":  # Keras' compile wraps it to scale the loss
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, FusedAdamW)
    else:
        assert isinstance(model.optimizer, FusedAdamW)

    def failing_build(config, assets):
        raise RuntimeError("build failed")

    monkeypatch.setattr(TOY.model, "build_model", failing_build)
    with pytest.raises(RuntimeError, match="build failed"):
        training.build_model(TOY, config, None)
    assert keras.config.dtype_policy().name == "float32"


def test_auto_precision_is_float16_on_a_gpu_and_off_on_a_cpu():
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert training.dtype_policy("auto") == ("mixed_float16" if on_gpu else "float32")


def test_a_tiny_sentiment_model_trains_under_mixed_bfloat16(tmp_path, reviews_csv):
    config = SENTIMENT.presets["tiny"]()
    config.data.source = str(reviews_csv(tmp_path / "reviews.csv", 160))
    config.data.text_column, config.data.label_column = "review", "stars"
    # One direction, one bucket shape and no validation pass: a third of the tracing time.
    config.model.bidirectional, config.model.length_buckets = False, 1
    config.training.mixed_precision = "mixed_bfloat16"
    datasets = dataclasses.replace(SENTIMENT.data.load_data(config), validation=None)
    model = training.build_model(SENTIMENT, config, datasets.assets)
    assert keras.config.dtype_policy().name == "float32"
    assert model.get_layer("encoder").compute_dtype == "bfloat16"
    assert model.get_layer("embedding").variable_dtype == "float32"
    history = training.fit(model, datasets, 1, [], verbose=0)
    assert math.isfinite(history.history["loss"][0])
    ids, _ = next(iter(datasets.test))
    probabilities = model(ids, training=False)
    assert probabilities.dtype == "float32"
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-6)


class WeightLog(keras.callbacks.Callback):
    """The model's kernel at each epoch end, named `name` in `log`, and with `steps` after
    every batch too (the trained weights)."""

    def __init__(self, log, name, steps=False):
        super().__init__()
        self.log, self.name, self.steps = log, name, steps

    def on_train_batch_end(self, batch, logs=None):
        if self.steps:
            self.log.setdefault("steps", []).append(self.model.get_weights()[0].copy())

    def on_epoch_end(self, epoch, logs=None):
        self.log.setdefault(self.name, []).append(self.model.get_weights()[0].copy())
        self.log.setdefault(f"{self.name} val_loss", []).append(logs["val_loss"])


def test_averaged_weights_are_validated_and_checkpointed_and_trained_ones_go_on(tmp_path):
    config = training.config_lib.TrainingConfig(learning_rate=0.05, ema_momentum=0.9)
    model, x, y = regression()
    model.compile(optimizer=training.optimizer(config), loss="mse")
    into, out = training.averaged_weights(config)
    log = {}
    seen, after = WeightLog(log, "seen", steps=True), WeightLog(log, "after")
    model.fit(
        x, y, validation_data=(x, y), batch_size=16, epochs=3, verbose=0,
        callbacks=[into[0], seen, *checkpoint_callbacks(tmp_path), *out, after],
    )  # fmt: skip
    # Keras' average: the first step's weights, then average = 0.9 average + 0.1 weights.
    average, averages = None, []
    for weights in log["steps"]:
        average = weights if average is None else 0.9 * average + 0.1 * weights
        averages.append(average)
    ends = [averages[4 * epoch + 3] for epoch in range(3)]  # 64 examples: 4 batches
    trained = [log["steps"][4 * epoch + 3] for epoch in range(3)]
    np.testing.assert_allclose(log["seen"], ends, atol=1e-6)
    np.testing.assert_allclose(log["after"], trained, atol=1e-6)
    assert not np.allclose(ends[0], trained[0], atol=1e-3)
    # The validation loss is the average's, and the published model is the best average.
    best = int(np.argmin(log["seen val_loss"]))
    published = keras.saving.load_model(tmp_path / training.MODEL_FILE)
    np.testing.assert_allclose(published.get_weights()[0], ends[best], atol=1e-6)
    with pytest.raises(training.UserError, match="training.ema_momentum"):
        training.averaged_weights(dataclasses.replace(config, ema_momentum=1.0))
