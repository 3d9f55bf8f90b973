import keras

from apps.core.training import optimizer
from toy_app.config import ToyConfig


def build_model(config: ToyConfig, assets) -> keras.Model:
    inputs = keras.Input(shape=(3,), name="x")
    outputs = keras.layers.Dense(1, activation=config.model.activation, name="sum")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer(config.training), loss="mse")
    return model
