"""A narrow workaround for keras-team/keras#20585: Keras 3's TensorFlow `fit` under
`tf.distribute` strategies.

Two private functions of `keras/src/backend/tensorflow/trainer.py` fail:

1. `TensorFlowTrainer._maybe_symbolic_build` builds the model from the first batch by taking
   the *mean* of the replicas' batches (`strategy.reduce("MEAN", batch)`). That cannot work for
   bool inputs (BERT's `padding_mask`; it breaks plain `MirroredStrategy` too) nor, under
   `MultiWorkerMirroredStrategy`, for a dict of inputs. Drawing that batch also starts one pass
   over the dataset before training, so a shuffled dataset trains in its second shuffle order:
   not the order a single-device run sees. Only shapes and dtypes matter there: ftk builds from
   the dataset's `element_spec` and draws nothing.
2. `reduce_per_replica` reduces the step's logs (scalar metrics) under
   `MultiWorkerMirroredStrategy` with `strategy.reduce("MEAN", v, axis=0)`, which fails on
   scalars. ftk reduces with `axis=None`: the mean over all replicas, what the single-machine
   path computes.

The patch applies only to the Keras versions it was checked on (`PATCHED_VERSIONS`) and only if
the upstream code still contains the failing calls. `tests/system/test_distribution.py` runs the
upstream code unpatched and fails once Keras fixes it, so the workaround can be dropped.
"""

from __future__ import annotations

import inspect
import logging

logger = logging.getLogger("ftk")

PATCHED_VERSIONS = ("3.15.",)
_BUILD_MARKER = 'self.distribute_strategy.reduce(\n                        "MEAN"'
_REDUCE_MARKER = 'strategy.reduce("MEAN", v, axis=0)'
_applied = False


def needs_patch() -> bool:
    """Whether this Keras still has the code keras#20585 is about (and is a version ftk's
    workaround was checked on)."""
    import keras
    from keras.src.backend.tensorflow import trainer

    if not keras.__version__.startswith(PATCHED_VERSIONS):
        return False
    return _BUILD_MARKER in inspect.getsource(
        trainer.TensorFlowTrainer._maybe_symbolic_build
    ) and _REDUCE_MARKER in inspect.getsource(trainer.reduce_per_replica)


def patch_distributed_fit() -> bool:
    """Apply the workaround (once per process). Returns whether it is in place."""
    global _applied
    if _applied:
        return True
    if not needs_patch():
        import keras

        logger.warning(
            "Keras %s: ftk's workaround for keras-team/keras#20585 is not applied (checked on "
            "Keras %s). If fit fails under tf.distribute, see that issue.",
            keras.__version__,
            ", ".join(v + "x" for v in PATCHED_VERSIONS),
        )
        return False
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            # Shapes and dtypes are all the build needs: no batch is drawn.
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    upstream_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return upstream_reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    _applied = True
    return True
