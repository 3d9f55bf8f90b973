import keras
import pytest

from layers.cudnn import cudnn_problems
from layers.recurrent_encoder import RecurrentEncoder


def model_of(*recurrent_layers):
    inputs = keras.Input((None, 4))
    outputs = inputs
    for layer in recurrent_layers:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs)


def test_default_lstm_gru_and_the_shared_encoder_are_eligible():
    model = model_of(
        keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True)),
        RecurrentEncoder(3, cell="gru", num_layers=2, bidirectional=True),
    )
    assert cudnn_problems(model) == {}


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (keras.layers.LSTM(3, activation="relu"), "activation relu (needs tanh)"),
        (keras.layers.GRU(3, recurrent_activation="hard_sigmoid"), "recurrent_activation"),
        (keras.layers.LSTM(3, recurrent_dropout=0.2), "recurrent_dropout=0.2"),
        (keras.layers.GRU(3, reset_after=False), "reset_after=False"),
        (keras.layers.LSTM(3, unroll=True), "unroll=True"),
        (keras.layers.GRU(3, use_bias=False), "use_bias=False"),
    ],
)
def test_each_ineligible_setting_is_named_with_its_layer(layer, reason):
    wrapped = keras.layers.Bidirectional(layer)
    problems = cudnn_problems(model_of(wrapped))
    assert len(problems) == 2  # the forward and the backward copy
    for path, reasons in problems.items():
        assert path.startswith(wrapped.name) and any(reason in item for item in reasons)
