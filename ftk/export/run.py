"""Export a finished run: SavedModel + ONNX, verified, then published as a new version.

Runs under the TensorFlow backend. Runs trained under JAX or PyTorch are exported by
`python -m ftk.export <run_dir>` in a TensorFlow subprocess that rebuilds the model from the
run's config and loads its weights; either way the export is checked against the outputs
that the *training* backend's model produced (`verify_reference.json` in the run directory).
"""

from __future__ import annotations

import json
import logging
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from ftk.config import Config, to_dict
from ftk.errors import ExportError
from ftk.export.card import write_model_card
from ftk.export.onnx import ONNX_DIR, ONNX_FILE, add_metadata
from ftk.export.preset import verify_preset, write_preset
from ftk.export.serving import write_warmup
from ftk.files import read_json, write_json
from ftk.runs import load_run_config
from ftk.runs.files import RunFiles
from ftk.tasks.registry import get_task

logger = logging.getLogger("ftk")


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (
        "ftk",
        "keras",
        "keras-hub",
        "tensorflow",
        "tensorflow-text",
        "tf2onnx",
        "onnxruntime",
        "jax",
        "torch",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def rebuild_model(config: Config, label_names: list[str], weights: Path):
    """The trained model, rebuilt from its config with the task's builder, weights loaded."""
    from ftk.presets.resolve import resolve_preset

    info = resolve_preset(config.model.preset, config.base_dir)
    model = get_task(config.run.task).build_model(info, config, label_names)
    with warnings.catch_warnings():
        # The run's file also holds optimizer state, which an export does not need.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(weights))
    return model


def git_commit(directory: Path) -> dict | None:
    """`{"commit": sha, "dirty": bool}` of the git checkout holding `directory`, if any."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(directory), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def provenance(files: RunFiles, config: Config, task, labels: list[str]) -> dict:
    """What an export records about where it came from (`assets.extra/ftk_export.json`)."""
    run_info = read_json(files.run)
    return {
        "model_name": config.export.model_name,
        "task": task.name,
        "label_names": labels,
        "preset": run_info.get("preset", {}),
        "trained_backend": run_info.get("backend"),
        "data_fingerprint": run_info.get("data_fingerprint"),
        "metrics": read_json(files.metrics) if files.metrics.exists() else {},
        "run_dir": str(files.root.resolve()),
        "config": to_dict(config),
        "git": git_commit(Path(config.base_dir)),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": library_versions(),
        "signature": task.signature,
    }


def write_more(model, staging: Path, task, config: Config, inputs: list) -> None:
    """The artifacts beside the task's own: the keras-hub preset, OpenVINO."""
    if config.export.preset and task.publishes_preset:
        write_preset(model, staging, task, inputs)
    if config.export.openvino:
        from ftk.export.openvino import write_openvino

        write_openvino(staging)
    if config.export.onnx_text:
        from ftk.export.onnx_text import write_onnx_text

        write_onnx_text(staging)
    if config.export.litert and task.text_litert:
        from ftk.export.litert_text import write_text_litert

        write_text_litert(model, staging, task)


def verify_more(staging: Path, task, config: Config, inputs: list, expected) -> dict:
    """`write_more`'s artifacts against the Keras outputs `expected` for `inputs`."""
    result = {}
    if config.export.preset and task.publishes_preset:
        result.update(verify_preset(staging, config.export.tolerance))
    if config.export.openvino:
        from ftk.export.openvino import verify_openvino

        result.update(verify_openvino(staging, inputs, expected, config.export.tolerance))
    if config.export.onnx_text:
        from ftk.export.onnx_text import verify_onnx_text

        result.update(verify_onnx_text(staging, inputs, expected, config.export.tolerance))
    if config.export.litert and task.text_litert:
        from ftk.export.litert_text import verify_text_litert

        result.update(verify_text_litert(staging, inputs, expected, config.export.tolerance))
    return result


def add_onnx_metadata(staging: Path, metadata: dict, task) -> None:
    """The provenance, config and test metrics in every ONNX model's `metadata_props` (not
    `model_int8.onnx`: it is written while verifying)."""
    provenance = {k: v for k, v in metadata.items() if k not in ("metrics", "config")}
    for path in (staging / ONNX_DIR).glob("*.onnx"):
        add_metadata(
            path,
            {
                "ftk_provenance": json.dumps(provenance),
                "ftk_config": json.dumps(metadata["config"]),
                "ftk_test_metrics": json.dumps(
                    {k: metadata["metrics"].get(k) for k in task.headline_metrics}
                ),
            },
        )


def export_task(version_dir: Path):
    """The task that wrote an export (from its `ftk_export.json`)."""
    from ftk.config.schema import RunConfig

    path = Path(version_dir) / "assets.extra" / "ftk_export.json"
    name = read_json(path).get("task", RunConfig.task) if path.is_file() else RunConfig.task
    return get_task(name)


def _destination(run_dir: Path, overrides: list[str]) -> tuple[Config, Path]:
    """The run's config (with `overrides`) and its writable `<export_dir>/<model_name>`, or a
    one-line error saying what is missing."""
    from ftk.export.publish import check_writable

    files = RunFiles(run_dir)
    config = load_run_config(run_dir, overrides)
    if not files.weights.is_file():
        raise ExportError(
            f"{run_dir} has no trained model ({files.weights.name}): only a run that finished "
            "training can be exported (`--resume` continues one that stopped)."
        )
    if not config.export.export_dir:
        raise ExportError(
            'export.export_dir is "" in this run\'s config: name a destination with '
            f"ftk export {run_dir} --set export.export_dir=DIR"
        )
    model_root = config.resolve_path(config.export.export_dir) / config.export.model_name
    check_writable(model_root)
    return config, model_root


def export_run(run_dir: Path, model=None, overrides: list[str] = ()) -> dict:
    """Write, verify and publish the run's model. Returns the export summary (also saved).

    `overrides` (`export.KEY=VALUE`) change the run's `[export]` keys for this export only."""
    import keras

    from ftk.export.publish import publish

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("export_run needs the TensorFlow backend; use python -m ftk.export")
    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    config, model_root = _destination(run_dir, overrides)
    task = get_task(config.run.task)
    labels = read_json(files.labels)
    reference = read_json(files.reference)
    inputs = reference["inputs"]
    expected = np.asarray(reference["probabilities"], dtype=np.float32)
    if model is None:
        logger.info("Export: rebuilding the model under TensorFlow from %s", files.weights)
        model = rebuild_model(config, labels, files.weights)
    metadata = provenance(files, config, task, labels)
    result: dict = {}

    def write(staging: Path) -> None:
        logger.info(
            "Export: writing the SavedModel%s into %s",
            " and converting it to ONNX" if config.export.onnx else "",
            staging,
        )
        calibration = read_json(files.calibration) if files.calibration.is_file() else {}
        task.write_export(model, labels, config, staging, inputs, expected, calibration)
        write_more(model, staging, task, config, inputs)
        write_warmup(staging, config.export.model_name, task.serving_inputs(staging))
        (staging / "assets.extra" / "ftk_config.toml").write_text(
            files.config.read_text(encoding="utf-8"), encoding="utf-8"
        )
        if config.export.onnx:
            add_onnx_metadata(staging, metadata, task)

    def verify(staging: Path) -> None:
        logger.info("Export: verifying against the Keras outputs on %d examples", len(inputs))
        result.update(task.verify_export(staging))
        result.update(verify_more(staging, task, config, inputs, expected))
        if config.export.onnx_int8:
            metadata["onnx_int8"] = task.measure_int8(
                staging, staging / ONNX_DIR / ONNX_FILE, read_json(files.test_split)
            )
        metadata["verification"] = {**result, "tolerance": config.export.tolerance}
        write_json(staging / "assets.extra" / "ftk_export.json", metadata)
        write_model_card(staging, metadata, task)

    version_dir = publish(model_root, write, verify, staging_root=run_dir)
    summary = {"version_dir": str(version_dir), "version": int(version_dir.name), **result}
    if config.export.onnx:
        summary["onnx"] = str(version_dir / ONNX_DIR / ONNX_FILE)
    if "onnx_int8" in metadata:
        summary["onnx_int8"] = metadata["onnx_int8"]
    project = Path(config.base_dir)
    if (project / "serving").is_dir():  # a baked project: refresh its client examples
        from ftk.export.kit import write_clients

        write_clients(project, config.export.model_name, version_dir, task.signature)
        from ftk.export.kserve import write_manifests

        write_manifests(
            project / "serving" / "kserve", config.export.model_name, version_dir=version_dir
        )
    write_json(files.export, summary)
    return summary
