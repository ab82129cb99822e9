"""End to end, as a user runs it: bake the image template, point it at a folder of real JPEG
photos of digits (scikit-learn's bundled set) that also holds a corrupt image, a hidden file
and a text file; check the up-front refusal, then train the real EfficientNet-Lite0, export,
and call the SavedModel with JPEG bytes (a few minutes on 2 CPU cores)."""

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import IMAGE_TEMPLATE, bake, only_run_dir, run_train_py
from PIL import Image

from ftk.data.image_examples import write_example_images

LABELS = ["0", "1", "7"]


def jpeg_folder(tmp_path: Path, per_label: int = 40) -> Path:
    """`images/<label>/<n>.jpg`: digits upscaled to 48x48 RGB JPEGs, plus three bad files."""
    examples = write_example_images(tmp_path / "digits", source="digits", seed=0)
    root = tmp_path / "images"
    for label in LABELS:
        (root / label).mkdir(parents=True)
        pngs = sorted((tmp_path / "digits" / "train" / label).glob("*.png"))[:per_label]
        assert len(pngs) == per_label, examples
        for png in pngs:
            image = Image.open(png).convert("RGB").resize((48, 48), Image.Resampling.BILINEAR)
            image.save(root / label / f"{png.stem}.jpg", quality=90)
    good = sorted((root / "0").glob("*.jpg"))[0].read_bytes()
    (root / "0" / "broken.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    (root / "1" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: ignored
    (root / "7" / "notes.txt").write_text("scanned at 300 dpi\n")  # not an image: listed
    return root


@pytest.mark.slow
def test_bake_check_train_export_serve_jpeg_bytes(tmp_path, isolated_cookiecutter):
    images = jpeg_folder(tmp_path)
    project = bake(
        tmp_path, IMAGE_TEMPLATE, project_name="Digit Photos", path=str(images), image_size="64"
    )

    # on_bad_images = "error" (the default): stops before training, naming the bad file.
    started = time.monotonic()
    refused = run_train_py(project, check=False)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "broken.jpg: corrupt or truncated" in refused.stderr
    assert time.monotonic() - started < 120
    assert not (project / "runs").exists()

    # "skip": the bad file is left out and listed; training runs to completion. The head alone
    # learns in a few steps (with "all", BatchNorm statistics need more steps to adapt).
    done = run_train_py(
        project,
        "data.on_bad_images=skip",
        "model.trainable=head",
        "train.learning_rate=1e-2",
        "train.epochs=3",
        "train.batch_size=16",
        "export.verify_examples=12",
    )
    assert "test accuracy:" in done.stdout and "SavedModel:" in done.stdout
    run_dir = only_run_dir(project)
    run = json.loads((run_dir / "run.json").read_text())
    assert sorted(Path(s["path"]).name for s in run["skipped"]) == ["broken.jpg", "notes.txt"]
    assert sum(sum(split.values()) for split in run["split_counts"].values()) == 120
    assert run["preset"]["kind"] == "offline" and "efficientnet" in run["preset"]["source"].lower()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.7, summary  # three classes: chance is 1/3 (measured 0.96)

    export = summary["export"]
    version_dir = Path(export["version_dir"])
    assert version_dir == project / "saved_models" / "digit_photos" / "1"
    for key in ("savedmodel_max_abs_diff", "savedmodel_pixels_max_abs_diff", "onnx_max_abs_diff"):
        assert export[key] <= 1e-4, export
    metadata = json.loads((version_dir / "assets.extra" / "ftk_export.json").read_text())
    assert metadata["task"] == "image_classification" and metadata["label_names"] == LABELS

    # TF Serving's view: serving_default on raw JPEG bytes, as a REST client sends them.
    import tensorflow as tf

    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    test_jpegs = sorted((version_dir / "assets.extra" / "ftk_verify").iterdir())
    assert test_jpegs and all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in test_jpegs)
    photo = Image.open(images / "7" / sorted(p.name for p in (images / "7").glob("*.jpg"))[0])
    buffer = io.BytesIO()
    photo.resize((200, 160)).save(buffer, format="JPEG")  # another size: resized in the graph
    batch = [p.read_bytes() for p in test_jpegs] + [buffer.getvalue()]
    out = served(image_bytes=tf.constant(batch))
    probabilities = out["probabilities"].numpy()
    assert probabilities.shape == (len(batch), 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    reference = json.loads((version_dir / "assets.extra" / "ftk_verify.json").read_text())
    np.testing.assert_allclose(probabilities[:-1], reference["probabilities"], atol=1e-4)
    names = [n.decode() for n in out["class_name"].numpy()]
    assert names == [LABELS[i] for i in out["class_id"].numpy()]
