import keras
import numpy as np
import pytest

from layers.highway import LinearHighway


def test_selects_the_last_value_with_hand_set_weights():
    layer = LinearHighway(window=2, horizon=3)
    inputs = np.arange(8, dtype=np.float32).reshape(1, 4, 2)  # series 0: 0,2,4,6; 1: 1,3,5,7
    layer.build(inputs.shape)
    layer.dense.set_weights([np.array([[0, 0, 0], [1, 1, 1]], np.float32), np.zeros(3)])
    np.testing.assert_allclose(layer(inputs), [[[6, 7], [6, 7], [6, 7]]])


def test_round_trip_and_fit_step(tmp_path):
    inputs = keras.Input((6, 2))
    model = keras.Model(inputs, LinearHighway(window=4, horizon=2, name="highway")(inputs))
    model.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(8, 6, 2)).astype(np.float32)
    model.fit(x, x[:, -2:, :], epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    assert restored.get_layer("highway").get_config()["window"] == 4


def test_rejects_a_window_longer_than_the_input():
    with pytest.raises(ValueError, match="window"):
        LinearHighway(window=5, horizon=2)(np.zeros((1, 3, 1), np.float32))
    with pytest.raises(ValueError, match="horizon"):
        LinearHighway(window=2, horizon=0)
