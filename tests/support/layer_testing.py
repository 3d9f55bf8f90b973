"""The layer test every layer gets: build and call (with and without its mask), config and
`.keras` round trips, one fit step, and a mixed-precision call."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np


def run_layer_test(
    layer_class,
    init_kwargs: dict,
    inputs: tuple,
    tmp_path: Path,
    call_kwargs: dict | None = None,
    mask: np.ndarray | None = None,
    masked_fill: float = 50.0,
    expected_output_shape=None,
    mixed_precision_output_dtype: str = "float16",
    mixed_precision_tolerance: float = 1e-2,
) -> None:
    """Runs `layer_class(**init_kwargs)(*inputs, **call_kwargs, mask=mask)` through the checks.

    `inputs` are the positional call arguments: arrays, or lists of arrays (states). Arrays
    in `call_kwargs` (or lists of them) become model inputs too; other values (`True`) are
    passed as they are. Checks, in order:

    - the call gives finite outputs of `expected_output_shape` (a shape, or the flat list of
      the outputs' shapes), and a functional model around the layer gives the same outputs
      and shapes with a `None` batch;
    - one eager fit step of that model (Adam, mean squared error to random targets; eager
      because tracing the step costs 10-15 s a layer on this machine) changes every trainable
      weight, keeps them finite, leaves the non-trainable ones as they were and lowers the
      loss evaluated (without dropout) before and after it; skipped for a layer without
      trainable weights. The checks below use the trained weights (a layer that starts at
      zero, such as `NgramBag`, would pass them vacuously on its initial ones);
    - with `mask`: outputs differ from the call without the mask, and do not change when the
      first input's masked positions are set to `masked_fill` (`mask` has the first input's
      leading `(batch, time)` axes);
    - `from_config(get_config())` has the same config and, given the weights, the same outputs;
    - a `keras.Model` around the layer saved to `.keras` and loaded back gives the same
      outputs, with as many trainable weights;
    - the layer made with `dtype="mixed_float16"` and the same weights keeps float32
      variables, outputs `mixed_precision_output_dtype` values that are finite and within
      `mixed_precision_tolerance` (relative, and absolute on the scale of the outputs) of the
      float32 outputs. The layer argument, not the global policy, so that a sublayer made
      without `dtype=self.dtype_policy` shows up as float32 outputs.
    """
    keras.utils.set_random_seed(0)
    call_kwargs = dict(call_kwargs or {})
    if mask is not None:
        call_kwargs["mask"] = mask

    layer = layer_class(**init_kwargs)
    outputs = as_numpy(layer(*inputs, **call_kwargs))
    for output in outputs:
        assert np.isfinite(output).all(), f"{layer_class.__name__} gave non-finite outputs"
    if expected_output_shape is not None:
        expected = expected_output_shape
        if not isinstance(expected[0], (tuple, list)):
            expected = [expected]
        assert [output.shape for output in outputs] == [tuple(shape) for shape in expected]

    model, model_inputs = functional_model(layer, inputs, call_kwargs)
    for symbolic, output in zip(model.outputs, outputs, strict=True):
        assert tuple(symbolic.shape) == (None, *output.shape[1:])
    assert_all_close(as_numpy(model(model_inputs)), outputs, tolerance=1e-6)
    if model.trainable_weights:
        check_fit_step(model, model_inputs, outputs)
        outputs = as_numpy(layer(*inputs, **call_kwargs))

    if mask is not None:
        check_mask(layer, inputs, call_kwargs, outputs, masked_fill)

    config = layer.get_config()
    restored = layer_class.from_config(config)
    assert restored.get_config() == config
    restored(*inputs, **call_kwargs)
    restored.set_weights(layer.get_weights())
    assert_all_close(as_numpy(restored(*inputs, **call_kwargs)), outputs, tolerance=1e-6)

    path = tmp_path / f"{layer_class.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    assert_all_close(as_numpy(loaded(model_inputs)), outputs, tolerance=1e-6)

    half = layer_class(**{**init_kwargs, "dtype": "mixed_float16"})
    half(*inputs, **call_kwargs)
    half.set_weights(layer.get_weights())
    assert all(variable.dtype == "float32" for variable in half.weights)
    half_outputs = half(*inputs, **call_kwargs)
    for half_output, expected in zip(keras.tree.flatten(half_outputs), outputs, strict=True):
        dtype = keras.backend.standardize_dtype(half_output.dtype)
        assert dtype == mixed_precision_output_dtype, (
            f"mixed_float16 {layer_class.__name__} outputs {dtype}, "
            f"not {mixed_precision_output_dtype}: a sublayer without the layer's dtype policy?"
        )
        half_output = keras.ops.convert_to_numpy(half_output).astype("float32")
        assert np.isfinite(half_output).all(), "mixed_float16 gave non-finite outputs"
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(
            half_output,
            expected,
            rtol=mixed_precision_tolerance,
            atol=mixed_precision_tolerance * scale,
        )


def as_numpy(structure) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(tensor) for tensor in keras.tree.flatten(structure)]


def assert_all_close(actual: list, expected: list, tolerance: float) -> None:
    assert len(actual) == len(expected)
    for actual_array, expected_array in zip(actual, expected, strict=True):
        np.testing.assert_allclose(actual_array, expected_array, rtol=tolerance, atol=tolerance)


def check_mask(layer, inputs, call_kwargs, outputs, masked_fill) -> None:
    unmasked_kwargs = {name: value for name, value in call_kwargs.items() if name != "mask"}
    unmasked = as_numpy(layer(*inputs, **unmasked_kwargs))
    assert [output.shape for output in unmasked] == [output.shape for output in outputs]
    assert any(
        not np.allclose(without, masked) for without, masked in zip(unmasked, outputs, strict=True)
    ), "the mask changes nothing"
    first, *rest = inputs
    mask = np.asarray(call_kwargs["mask"], bool)
    filled = np.array(first, copy=True)
    filled[~mask] = masked_fill
    assert not np.array_equal(filled, first), "`masked_fill` changes no masked value"
    assert_all_close(as_numpy(layer(filled, *rest, **call_kwargs)), outputs, tolerance=1e-6)


def functional_model(layer, inputs, call_kwargs):
    """A `keras.Model` whose inputs are every array argument of the call, flattened, and whose
    outputs are the layer's outputs, flattened. Returns `(model, arrays for its inputs)`."""
    arrays = keras.tree.flatten((list(inputs), call_kwargs))
    arrays = [value for value in arrays if isinstance(value, np.ndarray)]

    def symbolic(value):
        if isinstance(value, np.ndarray):
            return keras.Input(
                shape=value.shape[1:], dtype=keras.backend.standardize_dtype(value.dtype)
            )
        return value

    symbolic_inputs, symbolic_kwargs = keras.tree.map_structure(
        symbolic, (list(inputs), call_kwargs)
    )
    model_inputs = [
        value
        for value in keras.tree.flatten((symbolic_inputs, symbolic_kwargs))
        if isinstance(value, keras.KerasTensor)
    ]
    symbolic_outputs = layer(*symbolic_inputs, **symbolic_kwargs)
    model = keras.Model(model_inputs, keras.tree.flatten(symbolic_outputs))
    return model, arrays


def check_fit_step(model, model_inputs, outputs) -> None:
    generator = np.random.default_rng(1)
    targets = [generator.normal(size=output.shape).astype("float32") for output in outputs]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=["mse"] * len(outputs), run_eagerly=True
    )
    trainable_before = [keras.ops.convert_to_numpy(weight) for weight in model.trainable_weights]
    frozen_before = [keras.ops.convert_to_numpy(weight) for weight in model.non_trainable_weights]
    loss_before = evaluated_loss(model, model_inputs, targets)
    model.fit(model_inputs, targets, batch_size=len(targets[0]), epochs=1, verbose=0)
    loss_after = evaluated_loss(model, model_inputs, targets)
    assert np.isfinite(loss_after), f"the loss is {loss_after} after a fit step"
    for weight, before in zip(model.trainable_weights, trainable_before, strict=True):
        after = keras.ops.convert_to_numpy(weight)
        assert np.isfinite(after).all(), f"{weight.path} is not finite after a fit step"
        assert not np.allclose(after, before), f"{weight.path} did not change in a fit step"
    for weight, before in zip(model.non_trainable_weights, frozen_before, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), before)
    assert loss_after < loss_before, f"a fit step took the loss from {loss_before} to {loss_after}"


def evaluated_loss(model, model_inputs, targets) -> float:
    predictions = model(model_inputs, training=False)
    return float(model.compute_loss(model_inputs, targets, predictions, training=False))
