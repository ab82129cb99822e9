"""`TokenClassifier`: a keras-hub `Task` that tags every word piece (keras-hub has none yet,
keras-hub #624): backbone -> `sequence_output` -> dropout -> `Dense(num_tags)` logits.

The backbone is any keras-hub text backbone whose outputs include `sequence_output` (BERT and
its family: MiniLM, DistilBERT, RoBERTa, ...); its preset's tokenizer cuts the words.
"""

from __future__ import annotations

import keras
import keras_hub

from ftk.config import ModelConfig
from ftk.models.loading import preset_errors
from ftk.presets.resolve import PresetInfo, check_online


@keras.saving.register_keras_serializable(package="ftk")
class TokenClassifier(keras_hub.models.Task):
    """Per-token logits `[batch, sequence_length, num_classes]` over a text backbone."""

    def __init__(self, backbone, num_classes: int, dropout: float = 0.1, **kwargs):
        self.backbone = backbone
        self.preprocessor = None
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=backbone.dtype_policy,
            name="logits",
        )
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes
        self.dropout = dropout

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
        }


def build_tokenizer(info: PresetInfo):
    """The preset's tokenizer (with ftk's fixes, e.g. accents stripped for MiniLM)."""
    with preset_errors(info, "a tokenizer"):
        return keras_hub.tokenizers.Tokenizer.from_preset(info.location, **info.tokenizer_kwargs)


def build_token_classifier(
    info: PresetInfo, model_config: ModelConfig, num_tags: int
) -> TokenClassifier:
    """A `TokenClassifier` on the pretrained backbone of `info`."""
    from ftk.errors import ConfigError
    from ftk.models.text import use_exact_gelu

    check_online(info)
    with preset_errors(info, "a token classifier"):
        backbone = keras_hub.models.Backbone.from_preset(info.location)
    if "sequence_output" not in getattr(backbone, "output", {}):
        raise ConfigError(
            f"`model.preset` {info.source!r} is a {type(backbone).__name__}, which has no "
            "per-token `sequence_output`; token classification needs a text encoder (BERT, "
            "MiniLM, DistilBERT, RoBERTa, ...)."
        )
    if info.exact_gelu:
        use_exact_gelu(backbone)
    return TokenClassifier(backbone, num_tags, dropout=model_config.dropout)
