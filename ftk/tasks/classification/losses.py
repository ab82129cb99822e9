"""The classification loss (Keras is imported here: load this module after the backend is set)."""

from __future__ import annotations

import keras

from ftk.config.schema import TrainConfig
from ftk.training.fit import compile_model


@keras.saving.register_keras_serializable(package="ftk")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels and logits, with optional label smoothing, or with
    `gamma > 0` focal loss (Lin et al. 2017): the cross-entropy times (1 - p)^gamma, so the
    examples the model already gets right weigh less (`train.loss = "focal"`).

    Keras' `SparseCategoricalCrossentropy` has no `label_smoothing`; this one-hot encodes the
    labels and uses Keras' `categorical_crossentropy` (or `categorical_focal_crossentropy`,
    with alpha 1: class balance is `train.class_weight`'s), which have.
    """

    def __init__(
        self, label_smoothing: float = 0.0, gamma: float = 0.0, name="sparse_crossentropy", **kw
    ):
        super().__init__(name=name, **kw)
        self.label_smoothing = label_smoothing
        self.gamma = gamma

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        if self.gamma:
            return keras.losses.categorical_focal_crossentropy(
                one_hot,
                y_pred,
                alpha=1.0,
                gamma=self.gamma,
                from_logits=True,
                label_smoothing=self.label_smoothing,
            )
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "gamma": self.gamma,
        }


def loss_of(train: TrainConfig) -> SparseCrossentropy:
    """The loss `train` asks for: cross-entropy, or focal loss (`train.loss = "focal"`)."""
    gamma = train.focal_gamma if train.loss == "focal" else 0.0
    return SparseCrossentropy(label_smoothing=train.label_smoothing, gamma=gamma)


def compile_classifier(
    model, train: TrainConfig, learning_rate=None, multipliers: list | None = None
) -> None:
    """`compile_model` with cross-entropy on logits (`train.label_smoothing`) and accuracy."""
    compile_model(
        model,
        train,
        loss_of(train),
        [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        learning_rate,
        multipliers,
    )
