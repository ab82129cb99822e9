"""LoRA checkpoints under a mixed precision policy keep float32 kernels.

Keras writes a LoRA layer's kernel as the merged `W + (alpha / rank) * A @ B`
(`_get_kernel_with_merged_lora`, through the `kernel` property). In Keras 3.15 that property
casts the sum to the layer's *compute* dtype, so under `mixed_bfloat16` (which
`runtime.precision = "auto"` picks on GPUs and on some CPUs) every checkpoint of a LoRA model
holds bfloat16-rounded kernels: the frozen base weights lose everything past three significant
digits, and `ftk.models.lora.load_weights_keeping_lora` rightly refuses such a file (its delta
is no longer a rank-`rank` update). `patch_lora_saving` makes Dense and EinsumDense save the
merged kernel in the variables' own dtype (float32) instead; quantized layers keep Keras' path.

Like `ftk.runtime.keras_fixes`, the patch applies only to the Keras versions it was checked on
(`PATCHED_VERSIONS`) and only while the upstream property still casts;
`tests/unit/models/test_lora_save.py` fails once Keras stops casting, so it can be dropped.
"""

from __future__ import annotations

import inspect

import keras

PATCHED_VERSIONS = ("3.15.",)
_CAST_MARKER = "dtype=self.compute_dtype"
_applied = False


def merged_kernel(layer):
    """`W + (alpha / rank) * A @ B` of a LoRA layer in the dtype of its variables."""
    kernel = layer._kernel
    delta = (layer.lora_alpha / layer.lora_rank) * keras.ops.matmul(
        layer.lora_kernel_a, layer.lora_kernel_b
    )
    return keras.ops.add(kernel, keras.ops.cast(delta, kernel.dtype))


def needs_patch() -> bool:
    """Whether this Keras casts the merged LoRA kernel to the compute dtype (and is a version
    the patch was checked on)."""
    from keras.src.layers.core.dense import Dense
    from keras.src.layers.core.einsum_dense import EinsumDense

    if not keras.__version__.startswith(PATCHED_VERSIONS):
        return False
    return all(_CAST_MARKER in inspect.getsource(cls.kernel.fget) for cls in (Dense, EinsumDense))


def patch_lora_saving() -> bool:
    """Apply the fix (once per process). Returns whether it is in place."""
    global _applied
    if _applied:
        return True
    if not needs_patch():
        return False
    from keras.src.layers.core.dense import Dense
    from keras.src.layers.core.einsum_dense import EinsumDense

    for cls in (Dense, EinsumDense):
        upstream = cls._get_kernel_with_merged_lora

        def _get_kernel_with_merged_lora(self, _upstream=upstream):
            if self.lora_enabled and self.dtype_policy.quantization_mode is None:
                return merged_kernel(self), None, None
            return _upstream(self)

        cls._get_kernel_with_merged_lora = _get_kernel_with_merged_lora
    _applied = True
    return True
