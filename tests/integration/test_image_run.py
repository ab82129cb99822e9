"""The image task through the shared runner, on a small local keras-hub ResNet preset directory
(randomly initialised, so it runs in seconds): bad files skipped and recorded, `last_n` over
ResNet blocks, every export published and verified, re-exports get new versions.
(A killed export: tests/system/test_killed_exports.py.)"""

import json
import subprocess
import sys
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np
import pytest
from helpers import image_run_config
from PIL import Image

from ftk.errors import DataError
from ftk.export.run import export_run
from ftk.runs import pipeline as runner
from ftk.tasks.classification.verify import VERIFY_IMAGES_DIR, verify_export


def test_bad_images_stop_the_run_before_it_starts(tmp_path, resnet_preset, image_folder):
    with pytest.raises(DataError, match=r"cut.jpg: corrupt or truncated") as info:
        runner.run(image_run_config(tmp_path, resnet_preset, image_folder), verbose=0)
    assert "labels.txt" not in str(info.value)  # not an image: listed as skipped, not an error
    assert not (tmp_path / "runs").exists()


def test_image_run_publishes_verified_exports(tmp_path, resnet_preset, image_folder):
    config = image_run_config(
        tmp_path, resnet_preset, image_folder, "data.on_bad_images=skip", "export.litert=true"
    )
    summary = runner.run(config, verbose=0)

    run_dir = Path(summary["run_dir"])
    run = json.loads((run_dir / "run.json").read_text())
    assert run["task"] == "image_classification"
    assert sorted(Path(s["path"]).name for s in run["skipped"]) == ["cut.jpg", "labels.txt"]
    assert sum(sum(c.values()) for c in run["split_counts"].values()) == 30
    assert summary["test_accuracy"] > 0.5, summary  # three solid colours; chance is 1/3
    counts = json.loads((run_dir / "metrics.json").read_text())["parameters"]
    assert 0 < counts["trainable"] < counts["total"]  # last_n:1 over ResNet's blocks

    export = summary["export"]
    version = Path(export["version_dir"])
    assert version == tmp_path / "saved_models" / "colours" / "1"
    for key in (
        "savedmodel_max_abs_diff",
        "savedmodel_pixels_max_abs_diff",
        "onnx_max_abs_diff",
        "litert_max_abs_diff",
    ):
        assert export[key] <= 1e-4, export
    # The .tflite file stands alone: another process gets the same probabilities.
    check = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        "from pathlib import Path\n"
        "from ftk.data.images import decode_and_resize\n"
        "from ftk.tasks.classification.litert import litert_probabilities\n"
        "extra = Path(sys.argv[1]) / 'assets.extra'\n"
        "ref = json.loads((extra / 'ftk_verify.json').read_text())\n"
        "paths = [str(extra / 'ftk_verify' / n) for n in ref['images']]\n"
        "pixels = np.stack([decode_and_resize(tf.constant(p), (40, 40)).numpy() for p in paths])\n"
        "got = litert_probabilities(Path(sys.argv[1]) / 'litert' / 'model.tflite', pixels)\n"
        "print(float(np.max(np.abs(got - np.asarray(ref['probabilities'])))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, str(version)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) <= 1e-4
    assert export["examples"] == 9  # the verification images, JPEG and PNG, kept in the export
    kept = sorted(p.suffix for p in (version / "assets.extra" / VERIFY_IMAGES_DIR).iterdir())
    assert set(kept) == {".jpg", ".png"} and len(kept) == 9
    metadata = json.loads((version / "assets.extra" / "ftk_export.json").read_text())
    assert metadata["task"] == "image_classification"
    # Provenance: the resolved config, the backbone's checksum, data, versions, git (if any).
    assert metadata["config"]["model"]["trainable"] == "last_n:1" and "git" in metadata
    assert metadata["preset"]["checksum"].startswith("sha256:")
    assert metadata["data_fingerprint"] == run["data_fingerprint"]
    assert (
        'task = "image_classification"'
        in (version / "assets.extra" / "ftk_config.toml").read_text()
    )
    import onnx

    props = {p.key: p.value for p in onnx.load(str(version / "onnx" / "model.onnx")).metadata_props}
    provenance = json.loads(props["ftk_provenance"])
    assert provenance["preset"] == metadata["preset"]
    assert provenance["versions"]["keras"] == package_version("keras")
    assert json.loads(props["labels"]) == ["blue", "green", "red"]
    assert json.loads(props["ftk_config"])["model"]["image_size"] == 40
    assert "image_bytes" in metadata["signature"]["inputs"]
    assert (version / "assets.extra" / "labels.txt").read_text().split() == [
        "blue",
        "green",
        "red",
    ]
    checked = verify_export(version)
    assert set(checked) == {
        "savedmodel_max_abs_diff",
        "savedmodel_pixels_max_abs_diff",
        "onnx_max_abs_diff",
        "litert_max_abs_diff",
        "rest_row_max_abs_diff",
        "rest_columnar_max_abs_diff",
        "grpc_max_abs_diff",
    }
    assert max(checked.values()) <= 1e-4
    assert (version / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0

    # A re-export (rebuilt from the run's config and weights) is a new version, never version 1.
    again = export_run(run_dir)
    assert again["version"] == 2 and again["savedmodel_max_abs_diff"] <= 1e-4
    assert (version / "saved_model.pb").is_file()


def test_a_tampered_verification_image_fails_verification(tmp_path, resnet_preset, image_folder):
    from ftk.errors import VerificationError

    config = image_run_config(
        tmp_path, resnet_preset, image_folder, "data.on_bad_images=skip", "export.onnx=false"
    )
    version = Path(runner.run(config, verbose=0)["export"]["version_dir"])
    first = sorted((version / "assets.extra" / VERIFY_IMAGES_DIR).iterdir())[0]
    pixels = np.asarray(Image.open(first).convert("RGB")).copy()
    pixels[:] = 255 - pixels  # another image under the same name
    Image.fromarray(pixels).save(first, format="PNG" if first.suffix == ".png" else "JPEG")
    with pytest.raises(VerificationError, match="does not match the Keras model"):
        verify_export(version)
