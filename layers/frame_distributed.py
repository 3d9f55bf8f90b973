"""A layer applied to every step of a sequence, with the steps folded into the batch."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnn_suite")
class FrameDistributed(keras.layers.Wrapper):
    """Applies `layer` to every step of a sequence (every frame of a clip) in one call.

    The input `(batch, time, *step_shape)` is reshaped to `(batch * time, *step_shape)`, the
    layer runs once on that batch, and its output is reshaped back to `(batch, time,
    *output_step_shape)`. The same answer as `keras.layers.TimeDistributed`, which maps the
    layer over the steps with `vectorized_map` and traces a deep backbone (MobileNetV3)
    step by step for minutes, where this takes seconds. For a small CNN neither is
    consistently faster: in locked runs of `benchmarks/activity_speed.py` TimeDistributed's
    training step ran at 1.04x-1.27x this one's, in one unlocked timing at 0.5x. The step
    shape must be known; `time` may be None. A mask passes through unchanged (the layer also
    runs on masked steps). The wrapped layer keeps its own dtype policy.

    Args:
        layer: the `keras.layers.Layer` (or model) applied to each step.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: tensor `(batch, time, *step_shape)`.
        training: passed to `layer`.
        mask: optional `(batch, time)` mask, returned as the output's mask.

    Returns:
        Tensor `(batch, time, *output_step_shape)`.

    Example:

    ```python
    frames = keras.random.uniform((2, 8, 32, 32, 3))
    encoder = FrameDistributed(keras.layers.Conv2D(4, 3, strides=2, padding="same"))
    encoder(frames)  # (2, 8, 16, 16, 4)
    ```

    References:
        - Donahue et al., "Long-term Recurrent Convolutional Networks for Visual Recognition
          and Description", 2015.
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build((None, *input_shape[2:]))
        self.built = True

    def call(self, inputs, training=None, mask=None):
        shape = ops.shape(inputs)
        folded = ops.reshape(inputs, (-1, *inputs.shape[2:]))  # (batch * time, *step_shape)
        outputs = self.layer(folded, training=training)
        # (batch, time, *output_step_shape)
        return ops.reshape(outputs, (shape[0], shape[1], *outputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        step_shape = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (input_shape[0], input_shape[1], *step_shape[1:])

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config["layer"] = keras.saving.serialize_keras_object(self.layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)
