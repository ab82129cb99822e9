"""`TextTargetsTask`: the base of the text tasks whose targets are a float vector per text or
text pair (regression's numbers, multi-label's 0/1 labels). What they share: a keras-hub text
encoder with one linear output per target (seeded), single texts or pairs
(`data.second_text_column`) batched with float32 targets, and the checks of those keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ftk.tasks.base import Task

if TYPE_CHECKING:
    import numpy as np

    from ftk.config.schema import Config
    from ftk.data.splits import Examples


class TextTargetsTask(Task):
    """Not registered: `TextRegression` and `TextMultiLabel` are."""

    cpu_compute = "text_encoder"
    publishes_preset = True
    text_litert = True

    def validate(self, config: Config, fail) -> None:
        if not 8 <= config.model.sequence_length <= 4096:
            fail("model.sequence_length", "between 8 and 4096")
        texts = {config.data.text_column, config.data.second_text_column}
        if texts & set(config.data.target_columns):
            fail("data.target_columns", "columns other than the text columns")
        if config.export.openvino and config.data.second_text_column:
            fail("export.openvino", "false for text pairs (its tokenizer takes one text)")
        if config.export.litert and config.data.second_text_column:
            fail("export.litert", "false for text pairs (its tokenizer takes one text)")
        if config.export.onnx_text and config.data.second_text_column:
            fail("export.onnx_text", "false for text pairs (its tokenizer takes one text)")
        if config.data.second_text_column == config.data.text_column:
            fail("data.second_text_column", "another column than data.text_column (or '')")

    def dataset(self, examples: Examples, config: Config, training: bool):
        from ftk.tasks.text_regression.pairs import text_dataset

        return text_dataset(examples, config, training)

    def build_model(self, info, config: Config, label_names: list[str]):
        from ftk.models.text import text_classifier

        return text_classifier(info, config.model, len(label_names))

    def prepare_model(self, model, config: Config) -> None:
        from ftk.models.head import seed_head

        seed_head(model, config.run.seed)

    def predict(self, model, dataset) -> np.ndarray:
        """Float32 outputs `[n, targets]` of the linear head (the multi-label task takes their
        sigmoid)."""
        import keras
        import numpy as np

        from ftk.tasks.text_regression.pairs import inputs_only

        values = model.predict(dataset.map(inputs_only), verbose=0)
        return np.asarray(keras.ops.convert_to_numpy(values), np.float32)

    def preset_dataset(self, inputs: list):
        from ftk.tasks.text_regression.pairs import raw_batches

        return raw_batches(inputs)

    def serving_inputs(self, version_dir: Path) -> dict:
        from ftk.tasks.text_regression.pairs import serving_arrays
        from ftk.tasks.text_regression.verify import read_reference

        return serving_arrays(read_reference(version_dir)["texts"])
