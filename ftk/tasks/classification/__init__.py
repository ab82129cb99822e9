"""`ClassificationTask`: what text and image classification share.

One label per example, a softmax head seeded from `run.seed`, cross-entropy (with label
smoothing) and accuracy, test metrics from `ftk.tasks.classification.metrics`
(accuracy, macro-F1, per-class scores, the confusion matrix), stratified cross-validation
folds, exports whose `serving_default` returns `probabilities`, `class_id` and `class_name`,
and the report's per-class, confusion-matrix and mistakes sections. A classification task
adds its data reader, its model builder and its export writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ftk.errors import DataError
from ftk.tasks.base import Task

if TYPE_CHECKING:
    import numpy as np

    from ftk.config.schema import Config
    from ftk.data.splits import Examples

# What every classifier's `serving_default` returns (recorded in the export metadata).
CLASSIFICATION_OUTPUTS = {
    "probabilities": "DT_FLOAT [-1, num_classes]",
    "class_id": "DT_INT32 [-1]",
    "class_name": "DT_STRING [-1]",
}


def stratified_fold_ids(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold id in `[0, k)` for each example, stratified by label and seeded.

    Example:

    >>> stratified_fold_ids(np.array([0, 0, 1, 1]), 2, seed=0).tolist()  # one of each label a fold
    [0, 1, 0, 1]
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = np.zeros(len(labels), np.int64)
    offset = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        # Continue the round-robin across labels so fold sizes differ by at most one.
        ids[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return ids


class ClassificationTask(Task):
    """Single-label classification over `label_names` (a subclass reads and builds)."""

    objectives = {"val_accuracy": "max", "val_macro_f1": "max", "val_loss": "min"}
    interpolation_metric = "accuracy"
    epoch_metric_names = ("macro_f1",)
    headline_metrics = ("accuracy", "macro_f1")
    metric_titles = {"macro_f1": "macro-F1"}
    input_kind = "text"  # what a mistake shows in the report: "text" or "image"

    def fold_ids(self, examples: Examples, k: int, seed: int) -> np.ndarray:
        import numpy as np

        smallest = np.bincount(examples.labels).min() if len(examples) else 0
        if smallest < k:
            raise DataError(
                f"`recipe.cv_folds={k}` needs at least {k} training examples of every label; "
                f"the smallest label has {smallest}. Lower recipe.cv_folds."
            )
        return stratified_fold_ids(examples.labels, k, seed)

    def prepare_model(self, model, config: Config) -> None:
        """The head starts from the same weights on every backend (`seed_head`)."""
        from ftk.models.head import seed_head

        seed_head(model, config.run.seed)

    def validate(self, config: Config, fail) -> None:
        """The loss keys every classifier reads (a subclass adds its own checks)."""
        if config.train.loss not in ("auto", "cross_entropy", "focal"):
            fail("train.loss", "'auto', 'cross_entropy' or 'focal' for a classifier")
        if config.train.focal_gamma < 0:
            fail("train.focal_gamma", ">= 0 (0 is plain cross-entropy)")

    def loss(self, config: Config):
        from ftk.tasks.classification.losses import loss_of

        return loss_of(config.train)

    def metrics(self, config: Config) -> list:
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def predict(self, model, dataset) -> np.ndarray:
        """Float32 softmax probabilities."""
        import keras
        import numpy as np

        logits = model.predict(dataset.map(lambda x, y: x), verbose=0)
        probabilities = keras.ops.softmax(logits, axis=-1)
        return np.asarray(keras.ops.convert_to_numpy(probabilities), np.float32)

    def evaluate(
        self, examples: Examples, outputs: np.ndarray, label_names: list[str], calibration=None
    ) -> dict:
        from ftk.tasks.classification.metrics import classification_report

        return classification_report(examples.labels, outputs.argmax(-1), label_names)

    def epoch_metrics(self, model, dataset, examples: Examples, config: Config) -> dict:
        """`macro_f1` (the mean of the per-class F1s, over the classes of `model`'s output)."""
        from ftk.tasks.classification.metrics import classification_report

        outputs = self.predict(model, dataset)
        names = [str(i) for i in range(outputs.shape[-1])]
        report = classification_report(examples.labels, outputs.argmax(-1), names)
        return {"macro_f1": report["macro_f1"]}

    def serving_inputs(self, version_dir: Path) -> dict:
        from ftk.tasks.classification.verify import reference_inputs

        return reference_inputs(version_dir)

    def verify_export(self, version_dir: Path) -> dict:
        from ftk.tasks.classification.verify import read_reference, verify_export

        result = verify_export(version_dir)
        result["examples"] = len(read_reference(version_dir)["probabilities"])
        return result

    def measure_int8(self, version_dir: Path, onnx_path: Path, test: dict) -> dict:
        import numpy as np

        from ftk.tasks.classification.quantize import quantize_and_measure

        labels = np.asarray(test["labels"])
        return quantize_and_measure(version_dir, onnx_path, test["inputs"], labels)

    def report_sections(self, doc, run) -> None:
        from ftk.tasks.classification.report import add_sections

        add_sections(self, doc, run)

    def dataset(self, examples: Examples, config: Config, training: bool):
        """The task's batches (`batches`), with `train.class_weight` on the training split."""
        ds = self.batches(examples, config, training)
        if not training or config.train.class_weight == "none":
            return ds
        from ftk.tasks.classification.weights import with_class_weights

        return with_class_weights(ds, examples.labels, int(examples.labels.max(initial=-1)) + 1)

    def batches(self, examples: Examples, config: Config, training: bool):
        """Batches of `(input, label)` (the task's reader and augmentation)."""
        raise NotImplementedError

    def feature_cache_refusal(self, config: Config) -> str | None:
        if config.train.class_weight != "none":
            return "train.class_weight weights the training examples (set it to none to tune "
            "on cached features)"
        return None
