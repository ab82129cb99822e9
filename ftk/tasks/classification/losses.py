"""The classification loss (Keras is imported here: load this module after the backend is set)."""

from __future__ import annotations

import keras

from ftk.config.schema import TrainConfig
from ftk.training.fit import compile_model


@keras.saving.register_keras_serializable(package="ftk")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels and logits, with optional label smoothing.

    Keras' `SparseCategoricalCrossentropy` has no `label_smoothing`; this one-hot encodes the
    labels and uses Keras' `categorical_crossentropy`, which has.
    """

    def __init__(self, label_smoothing: float = 0.0, name="sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def compile_classifier(
    model, train: TrainConfig, learning_rate=None, multipliers: list | None = None
) -> None:
    """`compile_model` with cross-entropy on logits (`train.label_smoothing`) and accuracy."""
    compile_model(
        model,
        train,
        SparseCrossentropy(label_smoothing=train.label_smoothing),
        [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        learning_rate,
        multipliers,
    )
