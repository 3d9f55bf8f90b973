"""The checkpoint that training publishes: whole after a crash, with the score it was saved for."""

import json

import keras
import numpy as np

from apps.core import training


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
