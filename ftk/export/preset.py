"""The fine-tuned model as a keras-hub preset directory (`<version>/preset/`), checked on load.

`save_to_preset` writes the whole keras-hub task (backbone, head and preprocessor, with the
tokenizer's vocabulary); keras-hub's own loader reads it back on any backend:

>>> model = keras_hub.models.TextClassifier.from_preset("saved_models/bbc_news/3/preset")
>>> model = ftk.export.preset.load_preset("saved_models/bbc_news/3/preset")   # same, plus:

keras-hub's BERT runs tanh-approximate GELU; checkpoints trained with exact GELU (MiniLM-L6)
are fine-tuned and exported with exact GELU, which a preset's config cannot say. `load_preset`
switches it back (`ftk_preset.json` records it), so its outputs match the exported model's;
plain `from_preset` gives outputs a little off (the export records by how much).

An export checks the preset before publishing: it loads it back and compares its outputs on
held-out examples with the Keras model's (`assets.extra/ftk_preset_check.json`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ftk.errors import ExportError
from ftk.files import read_json, write_json

logger = logging.getLogger("ftk")

PRESET_DIR = "preset"  # in an export version
PRESET_INFO = "ftk_preset.json"  # in the preset directory
CHECK = "ftk_preset_check.json"  # in assets.extra: inputs and the Keras model's outputs
CHECK_EXAMPLES = 256


def uses_exact_gelu(model) -> bool:
    """Whether the model's backbone was switched to exact GELU (`ftk.models.text`)."""
    from ftk.models.text import exact_gelu

    return any(
        getattr(getattr(layer, "_feedforward_intermediate_dense", None), "activation", None)
        is exact_gelu
        for layer in getattr(getattr(model, "backbone", None), "transformer_layers", [])
    )


def task_class_name(path: Path) -> str:
    """keras-hub's registered name of the task in a preset (`keras_hub>BertTextClassifier`)."""
    return read_json(Path(path) / "task.json")["registered_name"]


def write_preset(model, staging: Path, task, inputs: list) -> None:
    """Save `model` as a keras-hub preset in `<staging>/preset/`, and what checks it: up to
    `CHECK_EXAMPLES` of `inputs` (the verification reference's) with the model's outputs."""
    path = staging / PRESET_DIR
    model.save_to_preset(str(path))
    write_json(
        path / PRESET_INFO,
        {
            "task": task.name,
            "exact_gelu": uses_exact_gelu(model),
            "keras_hub_task": task_class_name(path),
        },
    )
    inputs = list(inputs)[:CHECK_EXAMPLES]
    outputs = predict(model, task, inputs)
    (staging / "assets.extra").mkdir(exist_ok=True)
    write_json(staging / "assets.extra" / CHECK, {"inputs": inputs, "outputs": outputs.tolist()})


def predict(model, task, inputs: list) -> np.ndarray:
    import keras

    values = model.predict(task.preset_dataset(inputs), verbose=0)
    return np.asarray(keras.ops.convert_to_numpy(values), np.float32)


def load_preset(path: str | Path, exact_gelu: bool | None = None):
    """The fine-tuned keras-hub task saved in `path`, on the current Keras backend, with exact
    GELU where it was trained with it (`exact_gelu=None`: as `ftk_preset.json` says)."""
    import keras

    from ftk.models.text import use_exact_gelu

    path = Path(path)
    if not (path / "task.json").is_file():
        raise ExportError(f"{path} is no keras-hub task preset (no task.json).")
    cls = keras.saving.get_registered_object(task_class_name(path))
    model = cls.from_preset(str(path))
    info = read_json(path / PRESET_INFO) if (path / PRESET_INFO).is_file() else {}
    if info.get("exact_gelu", False) if exact_gelu is None else exact_gelu:
        use_exact_gelu(model.backbone)
    return model


def verify_preset(version_dir: Path, tolerance: float) -> dict:
    """Load `<version>/preset/` back and compare its outputs with the Keras model's; raises
    `ExportError` beyond `tolerance`. Returns the largest difference, and for exact-GELU
    models that of keras-hub's plain `from_preset` (tanh GELU), reported, not required."""
    from ftk.tasks.registry import get_task

    path = Path(version_dir) / PRESET_DIR
    check = read_json(Path(version_dir) / "assets.extra" / CHECK)
    expected = np.asarray(check["outputs"], np.float32)
    info = read_json(path / PRESET_INFO)
    task = get_task(info["task"])
    loads = {"preset_max_abs_diff": None}
    if info["exact_gelu"]:
        loads["preset_plain_max_abs_diff"] = False
    result = {}
    for key, exact in loads.items():
        got = predict(load_preset(path, exact_gelu=exact), task, check["inputs"])
        result[key] = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    if result["preset_max_abs_diff"] > tolerance:
        raise ExportError(
            f"The keras-hub preset's outputs differ from the Keras model's by "
            f"{result['preset_max_abs_diff']:.2e} (> export.tolerance {tolerance:g})."
        )
    logger.info(
        "Export: keras-hub preset verified on %d examples (max |diff| %.1e)",
        len(check["inputs"]),
        result["preset_max_abs_diff"],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m ftk.export.preset VERSION_DIR`: load the export's preset on this process's
    Keras backend (`KERAS_BACKEND`) and check it; prints the differences as JSON."""
    import argparse
    import json

    import keras

    parser = argparse.ArgumentParser(prog="python -m ftk.export.preset", description=main.__doc__)
    parser.add_argument("version_dir", type=Path)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args(argv)
    result = verify_preset(args.version_dir, args.tolerance)
    print(json.dumps({"backend": keras.backend.backend(), **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
