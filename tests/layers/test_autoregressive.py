import numpy as np
import pytest
import tensorflow as tf
from layer_testing import run_layer_test

from layers.autoregressive import AutoregressiveDecoder


def decoder_inputs(batch=3, units=8, outputs=2, horizon=5, seed=0):
    rng = np.random.default_rng(seed)
    last_values = rng.normal(size=(batch, outputs)).astype(np.float32)
    states = [rng.normal(size=(batch, units)).astype(np.float32) for _ in range(2)]
    return last_values, states


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_teacher_forcing_with_its_own_predictions_equals_free_running(cell):
    decoder = AutoregressiveDecoder(8, output_units=2, horizon=5, cell=cell)
    last_values, states = decoder_inputs()
    states = states if cell == "lstm" else states[:1]
    free_running = decoder(last_values, states)
    assert free_running.shape == (3, 5, 2)
    forced = decoder(last_values, states, teacher_targets=free_running, training=True)
    np.testing.assert_allclose(forced, free_running, atol=1e-5)
    other_teacher = decoder(last_values, states, teacher_targets=free_running + 1.0, training=True)
    # Step 1 reads only the last observed values; later steps read the teacher.
    np.testing.assert_allclose(other_teacher[:, 0], free_running[:, 0], atol=1e-6)
    assert not np.allclose(other_teacher[:, 1:], free_running[:, 1:])
    ignored = decoder(last_values, states, teacher_targets=free_running + 1.0, training=False)
    np.testing.assert_allclose(ignored, free_running, atol=1e-6)


def test_quantiles_feed_back_the_chosen_level_and_known_future():
    decoder = AutoregressiveDecoder(
        8, output_units=2, horizon=4, num_quantiles=3, feedback_quantile=1
    )
    last_values, states = decoder_inputs()
    future = np.ones((3, 4, 1), np.float32)
    output = decoder(last_values, states, known_future=future)
    assert output.shape == (3, 4, 2, 3)
    forced = decoder(
        last_values, states, known_future=future, teacher_targets=output[..., 1], training=True
    )
    np.testing.assert_allclose(forced, output, atol=1e-5)


@pytest.mark.parametrize(
    ("init_kwargs", "output_shape"),
    [
        ({"units": 8, "output_units": 2, "horizon": 4, "dropout": 0.2}, (3, 4, 2)),
        (
            {"units": 8, "output_units": 2, "horizon": 4, "cell": "gru", "num_quantiles": 3},
            (3, 4, 2, 3),
        ),
    ],
)
def test_layer(init_kwargs, output_shape, tmp_path):
    last_values, states = decoder_inputs()
    states = states if init_kwargs.get("cell", "lstm") == "lstm" else states[:1]
    generator = np.random.default_rng(4)
    known_future = generator.normal(size=(3, 4, 1)).astype(np.float32)
    teacher_targets = generator.normal(size=(3, 4, 2)).astype(np.float32)
    run_layer_test(
        AutoregressiveDecoder,
        init_kwargs,
        (last_values, states),
        tmp_path,
        call_kwargs={"known_future": known_future, "teacher_targets": teacher_targets},
        expected_output_shape=output_shape,
    )


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="cell"):
        AutoregressiveDecoder(4, 1, 3, cell="rnn")
    with pytest.raises(ValueError, match="feedback_quantile"):
        AutoregressiveDecoder(4, 1, 3, num_quantiles=2, feedback_quantile=2)


def test_dropout_draws_a_mask_per_call_in_separate_graphs():
    decoder = AutoregressiveDecoder(8, output_units=2, horizon=4, cell="gru", dropout=0.5)
    last_values, states = decoder_inputs()
    inference = decoder(last_values, states[:1])
    first_graph = tf.function(lambda: decoder(last_values, states[:1], training=True))
    second_graph = tf.function(lambda: decoder(last_values, states[:1], training=True))
    dropped = first_graph()
    second_graph()  # reading the first graph's mask here would raise "out of scope"
    assert not np.allclose(dropped, inference)
    np.testing.assert_allclose(decoder(last_values, states[:1], training=False), inference)
