"""Trainable policies: which part of a pretrained backbone is fine-tuned.

`model.trainable` takes:

- `"head"`: the backbone is frozen, only the classification head trains.
- `"all"`: every weight trains.
- `"last_n:<k>"`: the top `k` blocks (transformer layers, or a CNN's named blocks) and any
  pooler or top layer above them train; the embeddings / stem and lower blocks stay frozen, and
  every BatchNorm stays in inference mode.

Changing `trainable` only takes effect in a compiled model after `compile()`, so callers
apply the policy, then compile.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import keras

from ftk.errors import ConfigError


@dataclass(frozen=True)
class TrainablePolicy:
    kind: str  # "head" | "all" | "last_n"
    n: int = 0

    @classmethod
    def parse(cls, text: str) -> TrainablePolicy:
        """`"last_n:2"` -> `TrainablePolicy("last_n", 2)`."""
        if text in ("head", "all"):
            return cls(text)
        kind, _, n = text.partition(":")
        if kind == "last_n" and n.isdigit() and int(n) >= 1:
            return cls("last_n", int(n))
        raise ConfigError(
            "`model.trainable` must be 'head', 'all' or 'last_n:<k>' (k >= 1). "
            f"Received: model.trainable={text!r}"
        )


# EfficientNet's `block3b_expand_conv`, ResNet's `stack1_block0_1_conv`.
_CNN_BLOCK_RE = re.compile(r"^(block\d+[a-z]?|stack\d+_block\d+)_")


def _top_layers(backbone) -> list:
    """Layers that sit above the last block (poolers, final norms, a CNN's top conv)."""
    return [
        layer
        for layer in backbone.layers
        if "pool" in layer.name or layer.name.startswith(("final", "output_layer_norm", "top_"))
    ]


def backbone_blocks(backbone) -> list[list]:
    """The backbone's blocks, bottom to top, each a list of layers.

    Transformers: one block per `transformer_layers` entry. CNNs built from named blocks
    (EfficientNet's `block3b_...`, ResNet's `stack1_block0_...` layers): the layers sharing a
    block prefix.
    """
    layers = getattr(backbone, "transformer_layers", None)
    if layers:
        return [[layer] for layer in layers]
    groups: dict[str, list] = {}
    for layer in backbone.layers:
        match = _CNN_BLOCK_RE.match(layer.name)
        if match:
            groups.setdefault(match[1], []).append(layer)
    return list(groups.values())


def apply_trainable_policy(
    model, policy: TrainablePolicy, freeze_batchnorm: bool = False
) -> dict[str, int]:
    """Set `trainable` flags on `model.backbone` per `policy`; return parameter counts.

    With `freeze_batchnorm`, every BatchNormalization layer stays in inference mode (moving
    statistics kept, scale and offset frozen) under `"all"` too, as Keras' transfer-learning
    guide advises once a head has been trained on the pretrained features. Under `last_n` they
    always do.

    Example:

    >>> counts = apply_trainable_policy(classifier, TrainablePolicy.parse("last_n:2"))
    >>> counts["trainable"] < counts["total"]
    True
    """
    backbone = model.backbone
    model.trainable = True
    # Set the backbone and its layers explicitly: a functional model does not cascade the flag
    # into its layers, so an earlier policy's per-layer flags would otherwise stay.
    for layer in backbone.layers:
        layer.trainable = True
    backbone.trainable = policy.kind != "head"
    if policy.kind == "last_n":
        blocks = check_policy(policy, backbone)
        for layer in backbone.layers:
            layer.trainable = False
        for layer in [layer for block in blocks[-policy.n :] for layer in block]:
            layer.trainable = True
        for layer in _top_layers(backbone):
            layer.trainable = True
        # A partly frozen backbone keeps every BatchNorm in inference mode (Keras 3 runs a
        # non-trainable BatchNormalization layer with its moving statistics).
    if policy.kind == "last_n" or (policy.kind == "all" and freeze_batchnorm):
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return count_parameters(model)


def check_policy(policy: TrainablePolicy, backbone) -> list:
    """The backbone's blocks; a `ConfigError` if `policy` asks for more than it has. Checked
    before the first phase trains, so a wrong `last_n` costs seconds, not a head phase."""
    blocks = backbone_blocks(backbone)
    if policy.kind != "last_n":
        return blocks
    if not blocks:
        raise ConfigError(
            f"`model.trainable='last_n:{policy.n}'` needs a backbone made of blocks; "
            f"{type(backbone).__name__} has none ftk recognises. Use 'head' or 'all'."
        )
    if policy.n > len(blocks):
        raise ConfigError(
            f"`model.trainable` asks for the last {policy.n} blocks, but the backbone has "
            f"{len(blocks)}. Received: model.trainable='last_n:{policy.n}'"
        )
    return blocks


def count_parameters(model) -> dict[str, int]:
    """Trainable and total parameter counts of a built model."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = sum(math.prod(w.shape) for w in model.weights)
    return {"trainable": trainable, "total": total}
