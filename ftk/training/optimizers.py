"""Discriminative (layer-wise) learning rates: each group of variables trains at its own rate.

`DiscriminativeAdamW` is `keras.optimizers.AdamW` with a learning-rate multiplier per variable.
The groups of a keras-hub Task follow the blocks that the `last_n:<k>` trainable policy uses
(`ftk.models.trainable`):

- `"embeddings"`: backbone layers below the first block (token/position embeddings, a CNN's stem);
- `"lower"`: the bottom half of the backbone's blocks;
- `"upper"`: the top half (the middle block of an odd count included) and the layers above the
  last block (poolers, final norms, a CNN's top conv);
- `"head"`: every variable of the Task outside the backbone.

Example:

>>> rates = {"embeddings": 0.1, "lower": 0.3, "upper": 1.0, "head": 1.0}
>>> optimizer = DiscriminativeAdamW(
...     multipliers=discriminative_multipliers(classifier, rates),
...     learning_rate=3e-5,
...     weight_decay=0.01,
... )
>>> classifier.compile(optimizer=optimizer, loss=..., metrics=[...])

The token embeddings then train at 3e-6, the top blocks and the head at 3e-5; decoupled weight
decay follows the same per-group rate.

Why not `keras.optimizers.MultiOptimizer` (Keras 3.15 has one; it routes each variable to its
own inner optimizer): this is one AdamW, so a phase passes one learning rate or schedule (the
recipe's, or the LR finder's sweep) plus the multipliers, and the optimizer keeps one step
counter and a readable `learning_rate`. With `MultiOptimizer` each distinct multiplier would need
its own AdamW with its own copy of the schedule scaled by the multiplier (Keras has no such
wrapper), `learning_rate` raises by design, and clipping or gradient accumulation would act per
group. What `MultiOptimizer` would gain: on torch its inner `AdamW`s get Keras' fused
`torch._foreach` update, which this subclass does not (see `_backend_update_step`). Both work on
TensorFlow (also under `MirroredStrategy`), JAX and torch, and both save and restore their
state with the model's weights.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from ftk.errors import ConfigError
from ftk.models.trainable import _top_layers, backbone_blocks

LAYER_GROUPS = ("embeddings", "lower", "upper", "head")


def layer_groups(model) -> dict[str, list]:
    """Variables of a keras-hub Task (`model.backbone` + head) by group.

    - `"embeddings"`: backbone layers below the first block (token/position embeddings, a CNN's
      stem), and any variable the backbone holds outside its layers;
    - `"lower"`: the bottom half of the backbone's blocks;
    - `"upper"`: the top half (for an odd count the middle block goes to upper) plus the layers
      above the last block (poolers, final norm, a CNN's top conv);
    - `"head"`: every model variable not in the backbone (dropout/logits layers of the Task).

    Blocks and top layers are the ones `ftk.models.trainable` finds for `last_n:<k>`. A backbone
    layer that is neither a block nor a top layer but sits between two blocks goes with the block
    below it. Every variable of `model.weights` (trainable or not) is in exactly one group;
    variables are matched by identity, never by path.

    Args:
        model: a built keras-hub Task with a `backbone`.

    Returns:
        A dict from each name of `LAYER_GROUPS` to a list of `keras.Variable`s, in the order of
        `model.weights`.

    Example:

    >>> groups = layer_groups(bert_classifier)  # 2 transformer layers
    >>> [len(groups[name]) for name in LAYER_GROUPS]
    [5, 16, 18, 2]
    """
    backbone = model.backbone
    blocks = backbone_blocks(backbone)
    if not blocks:
        raise ConfigError(
            f"Layer-wise learning rates need a backbone made of blocks; "
            f"{type(backbone).__name__} has none ftk recognises."
        )
    half = len(blocks) // 2

    def block_group(index: int) -> str:
        return "lower" if index < half else "upper"

    owner: dict[int, str] = {}  # id(variable) -> group; the first claim wins

    def claim(layer, group: str) -> None:
        for variable in layer.weights:
            owner.setdefault(id(variable), group)

    for layer in _top_layers(backbone):
        claim(layer, "upper")
    block_of = {id(layer): i for i, block in enumerate(blocks) for layer in block}
    for i, block in enumerate(blocks):
        for layer in block:
            claim(layer, block_group(i))
    current = "embeddings"  # layers in backbone order: below the first block, between, above
    for layer in backbone.layers:
        if id(layer) in block_of:
            current = block_group(block_of[id(layer)])
        else:
            claim(layer, current)
    backbone_ids = {id(variable) for variable in backbone.weights}
    groups: dict[str, list] = {name: [] for name in LAYER_GROUPS}
    seen: set[int] = set()
    for variable in model.weights:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        if id(variable) in backbone_ids:
            groups[owner.get(id(variable), "embeddings")].append(variable)
        else:
            groups["head"].append(variable)
    return groups


def discriminative_multipliers(model, rates: dict[str, float]) -> list[tuple]:
    """`[(variable, rate)]` for every variable of each group named in `rates`.

    Args:
        model: a built keras-hub Task (see `layer_groups`).
        rates: group name (one of `LAYER_GROUPS`) -> multiplier of the optimizer's learning
            rate, a finite number >= 0. Groups left out keep the full rate (1.0).

    Returns:
        The `multipliers` argument of `DiscriminativeAdamW`.

    Example:

    >>> multipliers = discriminative_multipliers(classifier, {"embeddings": 0.0, "lower": 0.5})
    >>> optimizer = DiscriminativeAdamW(multipliers=multipliers, learning_rate=1e-4)
    """
    unknown = sorted(set(rates) - set(LAYER_GROUPS))
    if unknown:
        raise ConfigError(
            f"Layer-wise learning rates are set per group: {', '.join(LAYER_GROUPS)}. "
            f"Received unknown group(s): {', '.join(map(repr, unknown))}"
        )
    for name, rate in rates.items():
        _check_multiplier(rate, f"rates[{name!r}]", ConfigError)
    groups = layer_groups(model)
    return [
        (variable, float(rates[name]))
        for name in LAYER_GROUPS
        if name in rates
        for variable in groups[name]
    ]


def _check_multiplier(value, what: str, error=ValueError) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise error(
            f"A learning-rate multiplier must be a finite number >= 0. Received: {what}={value!r}"
        )
    return number


@keras.saving.register_keras_serializable(package="ftk")
class DiscriminativeAdamW(keras.optimizers.AdamW):
    """AdamW with a learning-rate multiplier per variable (discriminative fine-tuning).

    Each variable is updated with `learning_rate * multiplier`, and its decoupled weight decay
    uses the same product (`variable -= variable * weight_decay * learning_rate * multiplier`),
    so a multiplier of 0.0 freezes a variable (its Adam moments still accumulate). Variables not
    listed get 1.0: with no multipliers this is `keras.optimizers.AdamW`. Learning-rate
    schedules, `exclude_from_weight_decay`, gradient clipping and accumulation, EMA, loss scaling
    (mixed precision) and `tf.distribute` behave as in AdamW.

    The multipliers are matched by variable identity and are not part of `get_config()`: an
    optimizer restored from a config has none. Build a new one to resume training.

    Args:
        multipliers: `[(variable, multiplier)]`, each multiplier a finite number >= 0; see
            `discriminative_multipliers`. Listing a variable twice with different values is an
            error.
        **kwargs: the arguments of `keras.optimizers.AdamW` (`learning_rate`, `weight_decay`,
            ...).

    Example:

    >>> optimizer = DiscriminativeAdamW(
    ...     multipliers=[(w, 0.1) for w in model.get_layer("embedding").weights],
    ...     learning_rate=1e-3,
    ... )
    >>> model.compile(optimizer=optimizer, loss="mse")
    """

    def __init__(self, multipliers: list[tuple[keras.Variable, float]] | None = None, **kwargs):
        super().__init__(**kwargs)
        by_key: dict = {}
        for variable, value in multipliers or ():
            path = getattr(variable, "path", variable.name)
            number = _check_multiplier(value, f"multiplier of {path!r}")
            key = self._var_key(variable)
            if by_key.setdefault(key, number) != number:
                raise ValueError(
                    f"Variable {path!r} is listed with two learning-rate multipliers: "
                    f"{by_key[key]} and {number}."
                )
        # Keyed like Keras' own variable index (`_var_key`: `id()`, or the TF variable's id).
        self._lr_multipliers = by_key

    def _multiplier(self, variable) -> float:
        """The learning-rate multiplier of `variable` (1.0 if it was not listed)."""
        return self._lr_multipliers.get(self._var_key(variable), 1.0)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # One backend update per multiplier: TF's all-reduce and `tf.distribute` update and JAX's
        # stateless scope run as for AdamW. (On torch, Keras swaps in its fused `foreach` AdamW
        # only for the exact class; this subclass gets the generic per-variable update.)
        groups: dict[float, tuple[list, list]] = {}
        for grad, variable in zip(grads, trainable_variables, strict=True):
            group = groups.setdefault(self._multiplier(variable), ([], []))
            group[0].append(grad)
            group[1].append(variable)
        for multiplier, (group_grads, group_variables) in groups.items():
            rate = learning_rate if multiplier == 1.0 else learning_rate * multiplier
            super()._backend_update_step(group_grads, group_variables, rate)

    def _apply_weight_decay(self, variables):
        # Decay is applied in `update_step`, with the variable's own `learning_rate * m`.
        return

    def update_step(self, gradient, variable, learning_rate):
        """Decoupled weight decay at the variable's own rate, then the Adam step.

        AdamW decays every variable before any Adam step; no step reads another variable, so
        decaying each one just before its own step is the same update.
        """
        if self.weight_decay and self._use_weight_decay(variable):
            lr = ops.cast(learning_rate, variable.dtype)
            wd = ops.cast(self.weight_decay, variable.dtype)
            self.assign_sub(variable, ops.multiply(variable, ops.multiply(wd, lr)))
        super().update_step(gradient, variable, learning_rate)
