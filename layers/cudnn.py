"""Which recurrent layers of a model can run on cuDNN's fused kernels on a GPU.

Keras runs `keras.layers.LSTM` and `keras.layers.GRU` with cuDNN (TensorFlow backend,
`use_cudnn="auto"`) only when the activation is tanh, the recurrent activation sigmoid, the
layer has a bias, is not unrolled and has no recurrent dropout, and (GRU) `reset_after=True`;
its mask must also be right-padded, which the pipelines' padding guarantees. Elsewhere the same
layer falls back to a generic loop several times slower on a GPU. Cells stepped one token at a
time (the attention decoder, the autoregressive forecaster) are a loop by design.

Example:

    problems = cudnn_problems(model)  # {} when every LSTM/GRU layer is eligible
"""

from __future__ import annotations

import keras


def layer_problems(layer: keras.layers.Layer) -> list[str]:
    """Why one `keras.layers.LSTM`/`GRU` cannot use cuDNN (empty: it can)."""
    cell = layer.cell
    problems = []
    if keras.activations.serialize(cell.activation) != "tanh":
        problems.append(f"activation {keras.activations.serialize(cell.activation)} (needs tanh)")
    if keras.activations.serialize(cell.recurrent_activation) != "sigmoid":
        name = keras.activations.serialize(cell.recurrent_activation)
        problems.append(f"recurrent_activation {name} (needs sigmoid)")
    if not cell.use_bias:
        problems.append("use_bias=False")
    if layer.unroll:
        problems.append("unroll=True")
    if cell.recurrent_dropout:
        problems.append(f"recurrent_dropout={cell.recurrent_dropout}")
    if isinstance(layer, keras.layers.GRU) and not cell.reset_after:
        problems.append("reset_after=False")
    if layer.use_cudnn is False:
        problems.append("use_cudnn=False")
    return problems


def cudnn_problems(model: keras.layers.Layer) -> dict[str, list[str]]:
    """Every LSTM/GRU layer of `model` (nested ones included) that cannot use cuDNN, by path."""
    problems = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.LSTM | keras.layers.GRU):
            reasons = layer_problems(layer)
            if reasons:
                problems[layer.path] = reasons
    return problems
