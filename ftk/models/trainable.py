"""Trainable policies: which part of a pretrained backbone is fine-tuned.

`model.trainable` takes:

- `"head"`: the backbone is frozen, only the classification head trains.
- `"all"`: every weight trains.
- `"last_n:<k>"`: the top `k` transformer layers (and any pooler above them) train; the
  embeddings and lower layers stay frozen.

Changing `trainable` only takes effect in a compiled model after `compile()`, so callers
apply the policy, then compile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def _top_layers(backbone) -> list:
    """Layers that sit above the transformer stack (poolers, final norms)."""
    return [
        layer
        for layer in backbone.layers
        if "pool" in layer.name or layer.name.startswith(("final", "output_layer_norm"))
    ]


def apply_trainable_policy(model, policy: TrainablePolicy) -> dict[str, int]:
    """Set `trainable` flags on `model.backbone` per `policy`; return parameter counts.

    Example:

    >>> counts = apply_trainable_policy(classifier, TrainablePolicy.parse("last_n:2"))
    >>> counts["trainable"] < counts["total"]
    True
    """
    backbone = model.backbone
    model.trainable = True
    # Set the backbone explicitly: a functional Task does not always cascade the flag into it.
    backbone.trainable = policy.kind != "head"
    if policy.kind == "last_n":
        layers = getattr(backbone, "transformer_layers", None)
        if not layers:
            raise ConfigError(
                f"`model.trainable='last_n:{policy.n}'` needs a transformer backbone; "
                f"{type(backbone).__name__} has no transformer layers. Use 'head' or 'all'."
            )
        if policy.n > len(layers):
            raise ConfigError(
                f"`model.trainable` asks for the last {policy.n} layers, but the backbone has "
                f"{len(layers)}. Received: model.trainable='last_n:{policy.n}'"
            )
        for layer in backbone.layers:
            layer.trainable = False
        for layer in list(layers[-policy.n :]) + _top_layers(backbone):
            layer.trainable = True
    return count_parameters(model)


def count_parameters(model) -> dict[str, int]:
    """Trainable and total parameter counts of a built model."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    total = sum(math.prod(w.shape) for w in model.weights)
    return {"trainable": trainable, "total": total}
