"""Losses and metrics: quantile (pinball) outputs and padded token sequences."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnn_suite")
class PinballLoss(keras.losses.Loss):
    """The pinball (quantile) loss, averaged over quantiles and every other axis.

    For quantile `q` and error `e = y_true - y_pred` the loss is `max(q * e, (q - 1) * e)`:
    under-predictions cost `q` per unit, over-predictions `1 - q`, so the minimizer is the
    `q`-quantile of the target. Masking: none; every element counts.

    Args:
        quantiles: the quantile levels, each in (0, 1), matching the last axis of `y_pred`.
        **kwargs: standard `keras.losses.Loss` arguments (`name`, `reduction`, ...).

    Call arguments:
        y_true: targets of shape `(...)`.
        y_pred: quantile predictions of shape `(..., len(quantiles))`.

    Returns:
        The mean loss per example, reduced as `reduction` says.

    Example:

    ```python
    loss = PinballLoss(quantiles=(0.1, 0.5, 0.9))
    loss(ops.ones((2, 3)), ops.zeros((2, 3, 3)))  # (0.1 + 0.5 + 0.9) / 3 = 0.5
    ```

    References:
        - Koenker & Bassett, "Regression Quantiles", 1978.
        - Wen et al., "A Multi-Horizon Quantile Recurrent Forecaster", 2017.
    """

    def __init__(self, quantiles=(0.1, 0.5, 0.9), name="pinball_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        quantiles = tuple(float(quantile) for quantile in quantiles)
        if not quantiles or any(not 0.0 < quantile < 1.0 for quantile in quantiles):
            raise ValueError(
                f"`quantiles` must be a non-empty list of levels in (0, 1). "
                f"Received: quantiles={quantiles!r}"
            )
        self.quantiles = quantiles

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        levels = ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        errors = ops.expand_dims(y_true, -1) - y_pred
        losses = ops.maximum(levels * errors, (levels - 1.0) * errors)
        return ops.mean(ops.reshape(losses, (ops.shape(losses)[0], -1)), axis=-1)  # (batch,)

    def get_config(self):
        config = super().get_config()
        config.update({"quantiles": self.quantiles})
        return config


def median_index(quantiles) -> int:
    """Index of the quantile level nearest 0.5 (the point forecast of a quantile model)."""
    return min(range(len(quantiles)), key=lambda index: abs(quantiles[index] - 0.5))


def median_absolute_error(y_true, y_pred, median_index):
    """Absolute error of quantile `median_index` of `y_pred` `(..., quantiles)`, per example."""
    y_pred = ops.convert_to_tensor(y_pred)
    errors = ops.abs(ops.cast(y_true, y_pred.dtype) - y_pred[..., median_index])
    return ops.mean(ops.reshape(errors, (ops.shape(errors)[0], -1)), axis=-1)  # (batch,)


@keras.saving.register_keras_serializable(package="rnn_suite")
class MedianAbsoluteError(keras.metrics.MeanMetricWrapper):
    """Mean absolute error of a quantile forecast's median, the point forecast it implies.

    The median is the quantile level closest to 0.5. Masking: none; every element counts.

    Args:
        quantiles: the quantile levels of the last axis of `y_pred`.
        name: the metric's name (`"mae"`, as for point forecasts).
        dtype: the metric's dtype.

    Example:

    ```python
    metric = MedianAbsoluteError(quantiles=(0.1, 0.5, 0.9))
    metric.update_state(ops.zeros((1, 2)), ops.convert_to_tensor([[[0, 3, 9], [0, -1, 9]]]))
    metric.result()  # (3 + 1) / 2 = 2.0
    ```
    """

    def __init__(self, quantiles=(0.1, 0.5, 0.9), name="mae", dtype=None):
        self.quantiles = tuple(float(quantile) for quantile in quantiles)
        super().__init__(median_absolute_error, name=name, dtype=dtype,
                         median_index=median_index(self.quantiles))  # fmt: skip

    def get_config(self):
        return {"quantiles": self.quantiles, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="rnn_suite")
class MaskedSequenceCrossentropy(keras.losses.Loss):
    """Cross-entropy over the non-padding tokens of a batch of sequences, from logits.

    With label smoothing `s` over a vocabulary of `V` tokens the target distribution is
    `(1 - s) * one_hot + s / V`. The loss is the mean over the batch's non-padding target
    tokens (every token counts the same, whatever its sequence's length), computed in float32.
    Masking: target tokens equal to `pad_id` do not count; a batch of padding only gives 0.

    Args:
        pad_id: the padding token of the targets.
        label_smoothing: mass spread uniformly over the vocabulary, in [0, 1).
        **kwargs: standard `keras.losses.Loss` arguments (`name`, `dtype`); the reduction is
            fixed (the mean over tokens).

    Call arguments:
        y_true: int targets `(batch, time)`.
        y_pred: logits `(batch, time, vocabulary)`.

    Returns:
        The scalar mean token loss.

    Example:

    ```python
    loss = MaskedSequenceCrossentropy(pad_id=0)
    loss(ops.convert_to_tensor([[1, 0]]), ops.zeros((1, 2, 4)))  # log(4), the padding ignored
    ```

    References:
        - Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", 2016
          (label smoothing).
    """

    def __init__(
        self, pad_id=0, label_smoothing=0.0, name="masked_sequence_crossentropy", **kwargs
    ):
        super().__init__(name=name, reduction="sum", **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1). "
                f"Received: label_smoothing={label_smoothing!r}"
            )
        self.pad_id = pad_id
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        log_probabilities = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        vocabulary_size = ops.shape(y_pred)[-1]
        targets = ops.one_hot(y_true, vocabulary_size)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + (
                self.label_smoothing / ops.cast(vocabulary_size, "float32")
            )
        token_losses = -ops.sum(targets * log_probabilities, axis=-1)
        # Each token's share of the batch mean, so the "sum" reduction gives the mean.
        return token_losses * mask / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.pop("reduction", None)
        config.update({"pad_id": self.pad_id, "label_smoothing": self.label_smoothing})
        return config


@keras.saving.register_keras_serializable(package="rnn_suite")
class TokenAccuracy(keras.metrics.Metric):
    """The share of weighted target tokens whose most probable prediction is right.

    Pass the padding weights of the batches as `sample_weight` (1.0 on target tokens, 0.0 on
    padding; compile it under `weighted_metrics`): the result is
    `sum(weight * hit) / sum(weight)` over every token seen. Keras'
    `SparseCategoricalAccuracy` is not used because its `Mean` first averages each row over
    its padded length, so that batches of short sequences weigh more than batches of long
    ones and its figure is not the token accuracy when batches are bucketed by length.

    Args:
        name: the metric's name.
        dtype: the metric's dtype.

    Example:

    ```python
    metric = TokenAccuracy()
    metric.update_state([[1, 2, 0]], [[[0, 1, 0], [0, 1, 0], [1, 0, 0]]], [[1.0, 1.0, 0.0]])
    metric.result()  # 0.5: one of the two weighted tokens is right
    ```
    """

    def __init__(self, name="token_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        hits = ops.cast(
            ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32"
        )
        weights = (
            ops.ones_like(hits) if sample_weight is None else ops.cast(sample_weight, "float32")
        )
        self.correct.assign_add(ops.sum(hits * weights))
        self.total.assign_add(ops.sum(weights))

    def result(self):
        return self.correct / ops.maximum(self.total, 1e-12)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)
