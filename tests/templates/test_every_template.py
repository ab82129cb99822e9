"""What every template under `templates/` must do, parametrised over the templates (a new one is
covered by adding its folder): the answer checks of its hooks, its config documenting every key
of its task, a plain `train.py`, and a baked project passing ruff and its own quick tests.
What a template's answers bake into: test_text_template.py and test_image_template.py."""

import json
import subprocess
import sys
import tomllib

import pytest
from cookiecutter.exceptions import FailedHookException
from helpers import TEMPLATES, assert_no_jinja, bake, colour_photos

from ftk.cli.main import main as ftk_main
from ftk.config import load_config, valid_keys

TEMPLATES_DIR = TEMPLATES[0].parent

pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")

NAMES = [template.name for template in TEMPLATES]
# Answers every template checks in its pre-gen hook (templates/_shared/ftk_template.py) ...
COMMON_INVALID = [
    ("project_slug", "1bad-slug"),
    ("model_name", "../escape"),
    ("preset", "has space"),
    ("labels", "only_one"),
    ("labels", "a,a"),
    ("trainable", "some"),
    ("trainable", "last_n:0"),
    ("path", ""),
]
# ... and the ones of each task.
TASK_INVALID = {
    "causal-lm": [("sequence_length", "8"), ("lora_rank", "-1"), ("lora_rank", "x")],
    "text-classification": [("sequence_length", "abc"), ("sequence_length", "4")],
    "image-classification": [("image_size", "16"), ("image_size", "big")],
    "token-classification": [("sequence_length", "abc"), ("sequence_length", "4")],
    "text-regression": [("sequence_length", "abc"), ("sequence_length", "4")],
    "text-multilabel": [("sequence_length", "abc"), ("sequence_length", "4")],
}


def questions(name: str) -> set[str]:
    """The answers a template asks for (its cookiecutter.json)."""
    return set(json.loads((TEMPLATES_DIR / name / "cookiecutter.json").read_text()))


INVALID = [
    (name, field, value)
    for name in NAMES
    for field, value in COMMON_INVALID + TASK_INVALID.get(name, [])
    if field in questions(name)
]
# Choice variables: cookiecutter itself refuses a value not in the list.
CHOICES = [(name, "backend", "mxnet") for name in NAMES] + [
    (name, "recipe", "fast") for name in NAMES if "recipe" in questions(name)
]
CHOICES += [("image-classification", "on_bad_images", "ignore")]


def template(name: str):
    return next(t for t in TEMPLATES if t.name == name)


def test_every_template_is_tested():
    assert NAMES == [
        "causal-lm",
        "image-classification",
        "text-classification",
        "text-multilabel",
        "text-regression",
        "token-classification",
    ]
    assert set(TASK_INVALID) == set(NAMES)


@pytest.mark.parametrize("name, field, value", INVALID)
def test_invalid_answers_fail_in_the_hook(tmp_path, capfd, name, field, value):
    with pytest.raises(FailedHookException):
        bake(tmp_path, template(name), **{field: value})
    assert f"`{field}` must be" in capfd.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("name, field, value", CHOICES)
def test_choice_answers_are_checked_by_cookiecutter(tmp_path, name, field, value):
    with pytest.raises(ValueError, match=f"choice variable {field}"):
        bake(tmp_path, template(name), **{field: value})


@pytest.mark.parametrize("name", NAMES)
def test_a_refused_template_answer_is_one_line_naming_it(tmp_path, capfd, name):
    out = tmp_path / "out"
    argv = ["new", name, "-o", str(out), "--no-input"]
    assert ftk_main([*argv, "--set", "preset=has space"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith("ftk: error: The template refused an answer: `preset` must be")
    assert "\n" not in err and "Traceback" not in err and "preset='has space'" in err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("name", NAMES)
def test_default_bake_documents_every_key_of_its_task(tmp_path, name):
    """Every config key of the template's task is present (and so documented) in the baked
    config.toml, which loads as that task; no Jinja is left in any file."""
    project = bake(tmp_path, template(name))
    assert_no_jinja(project)
    config = load_config(project / "config.toml")
    assert config.run.task == name.replace("-", "_")
    tree = tomllib.loads((project / "config.toml").read_text())
    baked = {f"{section}.{key}" for section, keys in tree.items() for key in keys}
    assert baked == set(valid_keys(config.run.task))


@pytest.mark.parametrize("name", NAMES)
def test_train_py_is_plain_python_and_documents_its_commands(name):
    train = (template(name) / "{{cookiecutter.project_slug}}" / "train.py").read_text()
    assert "{{" not in train and "{%" not in train
    assert "python train.py --resume" in train and "ftk verify" in train


def check_baked_project(project) -> None:
    """The project passes ruff (lint and format) and its own quick tests."""
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "--no-cache", "."], cwd=project, check=True, timeout=120)
    subprocess.run(
        [*ruff, "format", "--no-cache", "--check", "."], cwd=project, check=True, timeout=120
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 1 deselected" in done.stdout, done.stdout


@pytest.mark.parametrize("name", NAMES)
def test_baked_project_passes_ruff_and_its_own_quick_tests(tmp_path, name):
    # The image template's default data path is `images` in the project: photos to find.
    answers = {
        "image-classification": {"path": str(colour_photos(tmp_path / "photos", per_class=6))}
    }
    check_baked_project(bake(tmp_path, template(name), **answers.get(name, {})))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_compose_pins_a_tf_serving_image_with_tf_text_2_16(template):
    """tensorflow/serving 2.20.0 is the first release built with TF Text >= 2.16 (the text
    graph's RoundRobinTrim op; tensorflow/serving #2267): never `latest`."""
    compose = template / "{{cookiecutter.project_slug}}" / "serving" / "docker-compose.yml"
    assert "image: tensorflow/serving:2.20.0\n" in compose.read_text(encoding="utf-8")
