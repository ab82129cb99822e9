"""LoRA fine-tuning with keras-hub's own `Backbone.enable_lora(rank)`.

keras-hub adds two low-rank factors (`lora_kernel_a`, `lora_kernel_b`, always float32) to the
`query` and `value` `EinsumDense` layers of every attention block; the layer's `kernel` property
then returns the merged kernel `W + (alpha / rank) * A @ B` (alpha defaults to the rank).

ftk trains those factors and the classification head, nothing else:

- `enable_lora(model, rank)`: adapt the backbone and set the trainable flags.
- `lora_trainable(model)`: (re)set the flags; call it after anything that touched `trainable`.
- `save_adapter` / `load_adapter`: one small HDF5 file with the adapters and the head.
- `merge_lora(lora_model, plain_model)`: fold the adapters into a model built without LoRA, for
  export (same outputs, no LoRA variables).
- `load_weights_keeping_lora(model, path)`: `model.load_weights` for a checkpoint of a LoRA model
  (Keras saves merged kernels and, on loading, zeroes the factors).

keras-hub's `enable_lora` leaves the `query`/`value` biases trainable, and a later
`backbone.trainable = True` can unfreeze every kernel again; `lora_trainable` fixes both.
As with every trainable change, compile after it.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from ftk.errors import ConfigError, ExportError
from ftk.models.lora_save import merged_kernel, patch_lora_saving
from ftk.models.trainable import count_parameters

ADAPTER_FORMAT = "ftk-lora-adapter"
ADAPTER_VERSION = 1
LORA_WEIGHTS = ("lora_kernel_a", "lora_kernel_b")


def enable_lora(model, rank: int, alpha: float = 0.0, targets=()) -> dict[str, int]:
    """Add rank-`rank` LoRA adapters to the backbone's attention query/value layers (or to the
    layers named in `targets`), scaled by `alpha / rank` (`alpha` 0 = the rank).

    Only the adapters and the head stay trainable. Returns parameter counts like
    `count_parameters`. Compile the model after this call.

    Example:

    >>> counts = enable_lora(classifier, rank=8)
    >>> counts["trainable"] < counts["total"]
    True
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ConfigError(f"`model.lora_rank` must be an integer >= 1. Received: {rank!r}")
    backbone = model.backbone
    existing = lora_layers(model)
    if existing:
        raise ConfigError(
            f"LoRA is already enabled on this model (rank {existing[0].lora_rank}); build a "
            f"fresh model to change it. Received: model.lora_rank={rank}"
        )
    none = ConfigError(
        "`model.lora_rank` needs a backbone with attention layers keras-hub can adapt "
        f"(query/value); {type(backbone).__name__} has none. Received: model.lora_rank={rank}"
    )
    targets = list(targets) or None
    if not _lora_candidates(backbone, targets):
        if targets:
            raise ConfigError(
                f"`model.lora_targets` names no layer of {type(backbone).__name__} that LoRA can "
                f"adapt. Received: {targets}; its default is {backbone.default_lora_layer_names()}"
            )
        raise none  # checked first: keras-hub's enable_lora freezes the whole backbone
    patch_lora_saving()  # checkpoints under mixed precision keep float32 kernels
    backbone.enable_lora(rank, target_layer_names=targets)
    if not lora_layers(model):
        raise none
    if alpha:
        for layer in lora_layers(model):
            layer.lora_alpha = float(alpha)
    lora_trainable(model)
    return count_parameters(model)


def _lora_candidates(backbone, targets=None) -> list:
    """The layers keras-hub's `Backbone.enable_lora` would adapt (same selection rule)."""
    names = set(targets or backbone.default_lora_layer_names())
    return [
        layer
        for layer in backbone._flatten_layers(include_self=False)
        if layer.weights and layer.name in names and hasattr(layer, "enable_lora")
    ]


def lora_layers(model) -> list:
    """The backbone layers with LoRA enabled, in `_flatten_layers()` order."""
    return [
        layer
        for layer in model.backbone._flatten_layers(include_self=False)
        if getattr(layer, "lora_enabled", False)
    ]


def lora_rank(model) -> int:
    """The LoRA rank of `model` (raises `ConfigError` if LoRA is not enabled)."""
    return _lora_layers_or_raise(model)[0].lora_rank


def _lora_layers_or_raise(model) -> list:
    layers = lora_layers(model)
    if not layers:
        raise ConfigError(
            f"LoRA is not enabled on this {type(model.backbone).__name__}; "
            "call `ftk.models.lora.enable_lora(model, rank)` first."
        )
    return layers


def _own_weights(layer) -> list:
    """Weights created by `layer` itself (not by its sublayers), deduplicated, in order."""
    seen, out = set(), []
    for v in list(layer._trainable_variables) + list(layer._non_trainable_variables):
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _weight_owners(model) -> list:
    """The model's layers that own weights, in `_flatten_layers()` order.

    Layers without weights are skipped: `compile()` and `fit()` add some (loss wrappers,
    softmax layers), so the full lists of a trained and a fresh model differ.
    """
    return [layer for layer in model._flatten_layers(include_self=False) if _own_weights(layer)]


def _layer_ids(layer) -> set[int]:
    return {id(sub) for sub in layer._flatten_layers(include_self=True)}


def _head_layers(model) -> list:
    """Layers of the task that are neither in the backbone nor in the preprocessor."""
    excluded = _layer_ids(model.backbone)
    if getattr(model, "preprocessor", None) is not None:
        excluded |= _layer_ids(model.preprocessor)
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if id(layer) not in excluded and _own_weights(layer)
    ]


def lora_trainable(model) -> None:
    """Make only the LoRA adapters and the head trainable; freeze every other weight.

    Idempotent, and safe after `apply_trainable_policy` or `backbone.trainable = True` (which
    re-enable every backbone kernel). Every layer and variable flag is set explicitly: on the
    TensorFlow backend, assigning a layer the `trainable` value it already has is a no-op that
    does not reach its sublayers. Compile the model after this call.
    """
    adapted = {id(layer) for layer in _lora_layers_or_raise(model)}
    backbone = model.backbone
    model.trainable = True
    backbone.trainable = True
    for layer in backbone._flatten_layers(include_self=False):
        on = id(layer) in adapted
        layer.trainable = on
        for v in layer._trainable_variables:
            v.trainable = on and v.name in LORA_WEIGHTS
    for layer in _head_layers(model):
        layer.trainable = True
        for v in layer._trainable_variables:
            v.trainable = True


def _adapter_entries(model) -> dict[str, object]:
    """`{stable key: variable}` for the adapter: LoRA factors and head weights.

    Keys are `<index>.<layer class>.<weight name>`, the index counting the task's layers that
    own weights in `_flatten_layers()` order. Layer names repeat, and auto-generated names and
    variable paths get uniquified suffixes, so neither identifies a weight across two builds.
    """
    adapted = {id(layer) for layer in _lora_layers_or_raise(model)}
    head = {id(layer) for layer in _head_layers(model)}
    entries = {}
    for index, layer in enumerate(_weight_owners(model)):
        if id(layer) not in adapted and id(layer) not in head:
            continue
        for v in _own_weights(layer):
            if id(layer) in adapted and v.name not in LORA_WEIGHTS:
                continue
            key = f"{index:04d}.{type(layer).__name__}.{v.name}".replace("/", "_")
            if key in entries:
                raise ExportError(f"Two adapter weights share the key {key!r}.")
            entries[key] = v
    return entries


def _to_storable(value):
    """numpy array h5py can store (bfloat16 and float8 are widened to float32)."""
    array = np.asarray(keras.ops.convert_to_numpy(value))
    if array.dtype.kind not in "biuf":
        array = array.astype("float32")
    return array


def save_adapter(model, path) -> Path:
    """Write the LoRA adapters and the head of `model` to one HDF5 file at `path`.

    Each dataset is named by its stable key and carries `shape`/`dtype` attributes; the file
    carries `format`, `version`, `rank`, `lora_alpha`, `num_variables` and `backbone`. The file
    is written atomically and an existing file is never overwritten.
    """
    import h5py

    path = Path(path)
    if path.exists():
        raise ExportError(f"Refusing to overwrite the existing adapter file {path}.")
    layers = _lora_layers_or_raise(model)
    entries = _adapter_entries(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = ADAPTER_FORMAT
            f.attrs["version"] = ADAPTER_VERSION
            f.attrs["rank"] = int(layers[0].lora_rank)
            f.attrs["lora_alpha"] = float(layers[0].lora_alpha)
            f.attrs["num_variables"] = len(entries)
            f.attrs["num_lora_layers"] = len(layers)
            f.attrs["backbone"] = type(model.backbone).__name__
            group = f.create_group("weights")
            for key, v in entries.items():
                dataset = group.create_dataset(key, data=_to_storable(v))
                dataset.attrs["shape"] = list(v.shape)
                dataset.attrs["dtype"] = str(v.dtype)
                dataset.attrs["path"] = v.path
        if path.exists():
            raise ExportError(f"Refusing to overwrite the existing adapter file {path}.")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_adapter(model, path) -> None:
    """Load an adapter written by `save_adapter` into `model`.

    `model` is built from the same preset and has had `enable_lora(model, rank)` with the
    adapter's rank. Every check (rank, count, names, shapes) runs before any weight changes.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No LoRA adapter file at {path}.")
    layers = _lora_layers_or_raise(model)
    entries = _adapter_entries(model)
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != ADAPTER_FORMAT or "weights" not in f:
            raise ConfigError(f"{path} is not an ftk LoRA adapter file (see save_adapter).")
        rank, alpha = int(f.attrs["rank"]), float(f.attrs["lora_alpha"])
        if rank != layers[0].lora_rank or alpha != float(layers[0].lora_alpha):
            raise ConfigError(
                f"The adapter {path} has LoRA rank {rank} (alpha {alpha:g}) but the model has "
                f"rank {layers[0].lora_rank} (alpha {float(layers[0].lora_alpha):g}); "
                f"call enable_lora(model, {rank}) on a fresh model."
            )
        group = f["weights"]
        count = int(f.attrs["num_variables"])
        if count != len(group) or count != len(entries):
            raise ConfigError(
                f"The adapter {path} holds {len(group)} weights (metadata says {count}) but "
                f"the model expects {len(entries)}; was it saved from the same preset and "
                "number of classes?"
            )
        missing = sorted(set(entries) - set(group))
        unexpected = sorted(set(group) - set(entries))
        if missing or unexpected:
            raise ConfigError(
                f"The adapter {path} does not fit the model: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}."
            )
        wrong = [
            f"{key}: file {tuple(group[key].shape)} vs model {tuple(v.shape)}"
            for key, v in entries.items()
            if tuple(group[key].shape) != tuple(v.shape)
        ]
        if wrong:
            raise ConfigError(
                f"The adapter {path} has weights of other shapes than the model: "
                + "; ".join(wrong[:5])
            )
        values = {key: group[key][()] for key in entries}
    for key, v in entries.items():
        v.assign(_copy(values[key], v.dtype))


def load_weights_keeping_lora(model, path, load=None) -> float:
    """`model.load_weights(path)` for a LoRA model, without losing the adapters.

    Keras writes a LoRA layer's merged kernel `W + (alpha / rank) * A @ B` and no factors, and
    loading zeroes both factors: the outputs are right but `A = B = 0` gets no gradient (LoRA
    stops learning) and `save_adapter` would save zeros. Here the frozen kernel `W` (which
    training never changes) is kept, the file's delta is factorised back into rank-`rank`
    factors (SVD, exact up to float rounding), and `W` is restored. `load(model, path)`
    replaces `model.load_weights` (e.g. a wrapper that silences optimizer warnings). Returns
    the largest relative error of the refactorised deltas; raises `ConfigError` if the file's
    kernels are not `W` plus a rank-`rank` update (a file from another model or preset).
    """
    layers = _lora_layers_or_raise(model)
    frozen = [np.array(keras.ops.convert_to_numpy(layer._kernel), copy=True) for layer in layers]
    (load or (lambda m, p: m.load_weights(str(p))))(model, path)
    worst = 0.0
    for layer, kernel in zip(layers, frozen, strict=True):
        merged = keras.ops.convert_to_numpy(layer._kernel).astype(np.float64)
        scale = layer.lora_alpha / layer.lora_rank
        delta = (merged - kernel.astype(np.float64)) / scale
        matrix = delta.reshape(-1, delta.shape[-1])
        u, singular, vt = np.linalg.svd(matrix, full_matrices=False)
        root = np.sqrt(singular[: layer.lora_rank])
        a = u[:, : layer.lora_rank] * root
        b = root[:, None] * vt[: layer.lora_rank]
        norm = np.linalg.norm(matrix)
        error = float(np.linalg.norm(a @ b - matrix) / norm) if norm else 0.0
        if error > 1e-3:
            layer._kernel.assign(kernel)  # keep the model usable; the file does not fit it
            raise ConfigError(
                f"{path}: the kernel of LoRA layer {layer.name!r} is not this model's frozen "
                f"kernel plus a rank-{layer.lora_rank} update (relative error {error:.2g}); "
                "was it saved from another model?"
            )
        worst = max(worst, error)
        layer._kernel.assign(kernel)
        layer.lora_kernel_a.assign(a.reshape(delta.shape[:-1] + (layer.lora_rank,)))
        layer.lora_kernel_b.assign(b)
    return worst


def merge_lora(lora_model, plain_model) -> int:
    """Copy every weight of `lora_model` into `plain_model`, LoRA kernels merged.

    `plain_model` is built the same way (same preset, classes and options) without LoRA, so
    it computes the same outputs with no LoRA variables — what an export needs. Layers with
    weights are matched by position in `_flatten_layers()` (and class), weights by name within
    a layer; names and variable paths are not compared (they get uniquified suffixes). Returns the
    number of merged layers.
    """
    adapted = {id(layer) for layer in _lora_layers_or_raise(lora_model)}
    if lora_layers(plain_model):
        raise ConfigError("`plain_model` has LoRA enabled; build it without `enable_lora`.")
    source, target = _weight_owners(lora_model), _weight_owners(plain_model)
    if len(source) != len(target):
        raise ConfigError(
            f"The models differ: {len(source)} layers with weights vs {len(target)}; build "
            "`plain_model` from the same preset with the same options."
        )
    assignments = []
    for index, (src, dst) in enumerate(zip(source, target, strict=True)):
        if type(src) is not type(dst):
            raise ConfigError(
                f"The models differ at layer {index}: {type(src).__name__} {src.name!r} vs "
                f"{type(dst).__name__} {dst.name!r}."
            )
        merged = id(src) in adapted
        src_weights = _by_name(w for w in _own_weights(src) if w.name not in LORA_WEIGHTS)
        dst_weights = _by_name(_own_weights(dst))
        if sorted(src_weights) != sorted(dst_weights):
            raise ConfigError(
                f"Layer {index} ({src.name!r}) has weights {sorted(src_weights)} vs "
                f"{sorted(dst_weights)} in `plain_model`."
            )
        for name, dst_list in dst_weights.items():
            for src_w, dst_w in zip(src_weights[name], dst_list, strict=True):
                value = merged_kernel(src) if merged and name == "kernel" else src_w
                if tuple(value.shape) != tuple(dst_w.shape):
                    raise ConfigError(
                        f"Layer {index} ({src.name!r}) weight {name!r}: shape "
                        f"{tuple(value.shape)} vs {tuple(dst_w.shape)} in `plain_model`."
                    )
                assignments.append((dst_w, value))
    for dst_w, value in assignments:
        dst_w.assign(_copy(value, dst_w.dtype))
    return len(adapted)


def _copy(value, dtype):
    """A host copy of `value` in `dtype`. Never the source buffer itself: on JAX two models
    sharing one array break once `fit`/`predict` donates (deletes) it."""
    return np.array(keras.ops.convert_to_numpy(keras.ops.cast(value, dtype)), copy=True)


def _by_name(weights) -> dict[str, list]:
    out: dict[str, list] = {}
    for w in weights:
        out.setdefault(w.name, []).append(w)
    return out
