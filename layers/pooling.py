"""Masked pooling of a sequence over time: last valid step, mean, max, additive attention."""

import keras

POOLING_MODES = ("last", "mean", "max", "attention")


def _large_negative_number(dtype):
    """A large negative score that stays finite in `dtype` (float16 tops out near 65504)."""
    if keras.backend.standardize_dtype(dtype) == "float16":
        return -3e4
    return -1e9


@keras.saving.register_keras_serializable(package="rnn_suite")
class SequencePooling(keras.layers.Layer):
    """Pools a `(batch, time, features)` sequence into `(batch, features * len(modes))`.

    Each mode gives one `(batch, features)` vector; the vectors are concatenated in the
    order of `modes`:

    - `"last"`: the vector at the last valid step of each row.
    - `"mean"`: the mean over valid steps.
    - `"max"`: the maximum over valid steps.
    - `"attention"`: learned additive attention pooling,
      `score_t = v . tanh(W x_t + b)`, softmax over valid steps, weighted sum of `x_t`.
      `attention_weights(inputs, mask)` returns the weights `(batch, time)`.

    Masking: the mask (from an upstream layer such as `Embedding(mask_zero=True)`, or the
    `mask` call argument) marks the valid steps; without a mask every step is valid. Masked
    steps never enter a result. A row without any valid step pools to zeros in every mode
    (no NaN). The time axis is removed, so no mask is propagated.

    Args:
        modes: sequence of pooling modes out of `"last"`, `"mean"`, `"max"`, `"attention"`.
            A single string is taken as one mode.
        attention_units: width of the attention hidden layer; defaults to the input width.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `(batch, time, features)`.
        mask: optional boolean tensor `(batch, time)`, True on valid steps.

    Returns:
        Tensor `(batch, features * len(modes))`.

    Example:

    ```python
    tokens = keras.Input(shape=(None,), dtype="int32")
    embedded = keras.layers.Embedding(1000, 32, mask_zero=True)(tokens)
    sequences = keras.layers.GRU(64, return_sequences=True)(embedded)
    pooled = SequencePooling(modes=("max", "mean"))(sequences)  # (batch, 128)
    ```

    References:
        - Bahdanau et al., "Neural Machine Translation by Jointly Learning to Align and
          Translate", 2015 (additive attention).
        - Yang et al., "Hierarchical Attention Networks for Document Classification", 2016
          (attention pooling).
    """

    def __init__(self, modes=("mean",), attention_units=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(modes, str):
            modes = (modes,)
        modes = tuple(modes)
        if not modes:
            raise ValueError(
                f"`modes` must name at least one of {list(POOLING_MODES)}. Received: modes=()"
            )
        for mode in modes:
            if mode not in POOLING_MODES:
                raise ValueError(
                    f"`modes` must contain only {list(POOLING_MODES)}. "
                    f"Received: modes={modes!r} with unknown mode {mode!r}"
                )
        if attention_units is not None and (
            not isinstance(attention_units, int) or attention_units < 1
        ):
            raise ValueError(
                "`attention_units` must be a positive integer or None. "
                f"Received: attention_units={attention_units!r}"
            )
        self.modes = modes
        self.attention_units = attention_units
        self.supports_masking = True

    def build(self, input_shape):
        if "attention" in self.modes:
            features = input_shape[-1]
            self.attention_hidden = keras.layers.Dense(
                self.attention_units or features,
                activation="tanh",
                name="attention_hidden",
                dtype=self.dtype_policy,
            )
            self.attention_hidden.build(input_shape)
            self.attention_score = keras.layers.Dense(
                1, use_bias=False, name="attention_score", dtype=self.dtype_policy
            )
            self.attention_score.build(tuple(input_shape[:-1]) + (self.attention_hidden.units,))
        self.built = True

    def call(self, inputs, mask=None):
        valid = self._valid_steps(inputs, mask)
        pooled = [self._pool(mode, inputs, valid) for mode in self.modes]
        if len(pooled) == 1:
            return pooled[0]
        return keras.ops.concatenate(pooled, axis=-1)

    def attention_weights(self, inputs, mask=None):
        """Attention weights `(batch, time)`: sum to 1 over valid steps, 0 on masked steps."""
        if "attention" not in self.modes:
            raise ValueError(
                f"`attention_weights` needs 'attention' in `modes`. Received: modes={self.modes!r}"
            )
        if not self.built:
            self.build(inputs.shape)
        return self._attention_weights(inputs, self._valid_steps(inputs, mask))

    def _valid_steps(self, inputs, mask):
        if mask is None:
            return keras.ops.ones(keras.ops.shape(inputs)[:2], dtype="bool")  # (batch, time)
        return keras.ops.cast(mask, "bool")

    def _pool(self, mode, inputs, valid):
        valid_features = keras.ops.expand_dims(valid, -1)  # (batch, time, 1)
        zeros = keras.ops.zeros_like(inputs)
        if mode == "mean":
            total = keras.ops.sum(keras.ops.where(valid_features, inputs, zeros), axis=1)
            count = keras.ops.sum(keras.ops.cast(valid_features, inputs.dtype), axis=1)
            return total / keras.ops.maximum(count, 1)
        if mode == "max":
            lowest = keras.ops.full_like(inputs, float("-inf"))
            maximum = keras.ops.max(keras.ops.where(valid_features, inputs, lowest), axis=1)
            has_valid_step = keras.ops.any(valid, axis=1, keepdims=True)  # (batch, 1)
            return keras.ops.where(has_valid_step, maximum, keras.ops.zeros_like(maximum))
        if mode == "last":
            positions = keras.ops.arange(keras.ops.shape(inputs)[1])  # (time,)
            valid_positions = keras.ops.where(valid, positions, -1)  # (batch, time)
            last_position = keras.ops.max(valid_positions, axis=1, keepdims=True)  # (batch, 1)
            is_last = keras.ops.expand_dims(
                keras.ops.logical_and(valid, keras.ops.equal(positions, last_position)), -1
            )  # (batch, time, 1)
            return keras.ops.sum(keras.ops.where(is_last, inputs, zeros), axis=1)
        weights = self._attention_weights(inputs, valid)
        weighted = keras.ops.expand_dims(weights, -1) * inputs  # (batch, time, features)
        return keras.ops.sum(weighted, axis=1)

    def _attention_weights(self, inputs, valid):
        scores = self.attention_score(self.attention_hidden(inputs))
        scores = keras.ops.squeeze(scores, axis=-1)  # (batch, time)
        scores = keras.ops.where(
            valid, scores, keras.ops.full_like(scores, _large_negative_number(scores.dtype))
        )
        weights = keras.ops.softmax(scores, axis=1)
        return keras.ops.where(valid, weights, keras.ops.zeros_like(weights))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        features = input_shape[-1]
        return (input_shape[0], None if features is None else features * len(self.modes))

    def get_config(self):
        config = super().get_config()
        config.update({"modes": list(self.modes), "attention_units": self.attention_units})
        return config
