"""The shape of the `ftk` package: no import circles, modules and functions of a readable size,
tasks only behind the task API, and one template per task. (`import ftk` without Keras, in a
fresh interpreter: tests/integration/test_package.py.)"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
from helpers import REPO

ROOT = REPO
PACKAGE = ROOT / "ftk"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    assert "ftk.config.loading" in found, f"no ftk package at {PACKAGE}"  # never vacuous
    return found


def import_edges() -> dict[str, set[str]]:
    """Module -> ftk modules it imports, at any depth of the file (function-level too)."""
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    parts = name.split(".")[: -node.level if path.name != "__init__.py" else None]
                    if path.name == "__init__.py" and node.level > 1:
                        parts = parts[: -(node.level - 1)]
                    base = ".".join([*parts, node.module])
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:  # the longest module prefix
                    target = target.rpartition(".")[0]
                if target and target not in (name, "ftk"):
                    edges[name].add(target)
    return edges


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (each is a circle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_tarjan_finds_a_planted_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_in_ftk():
    circles = strongly_connected(import_edges())
    assert circles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_modules_and_functions_are_of_a_readable_size():
    big = {
        module_name(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}, f"modules over {MAX_MODULE_LINES} lines"
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{module_name(path)}.{node.name}"] = length
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines"


def registered_tasks():
    from ftk.tasks import all_tasks

    return all_tasks()


def test_no_module_outside_the_tasks_names_a_task():
    """Only `ftk/tasks/` and the config schema (its `run.task` default) spell a task's name:
    everything else asks the task."""
    names = [t.name for t in registered_tasks()]
    assert {
        "text_classification",
        "image_classification",
        "token_classification",
        "text_regression",
        "text_multilabel",
    } <= set(names)
    hits = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("ftk/tasks/") or relative == "ftk/config/schema.py":
            continue
        text = path.read_text()
        hits += [f"{relative}: {n}" for n in names if re.search(rf"[\"']{n}[\"']", text)]
    assert hits == []


def template_tasks() -> dict[str, str]:
    """`{template folder: the run.task its config.toml sets}` for every template."""
    found = {}
    for config in sorted(ROOT.glob("templates/*/{{cookiecutter.project_slug}}/config.toml")):
        folder = config.parents[1].name
        # The file holds Jinja, so it is not TOML yet: read the one line.
        (found[folder],) = re.findall(r'^task = "([a-z_]+)"', config.read_text(), re.M)
    return found


def test_every_task_has_a_template_and_every_template_a_task():
    tasks = {t.name: t for t in registered_tasks()}
    templates = template_tasks()
    menu = json.loads((ROOT / "cookiecutter.json").read_text())["templates"]
    assert templates, "no templates found"
    for folder, task in templates.items():
        assert task in tasks, f"templates/{folder} sets run.task={task!r}, which is not registered"
        assert tasks[task].template == folder
        assert folder in menu, f"templates/{folder} is not in the cookiecutter.json menu"
    for name, task in tasks.items():
        assert task.template in templates, f"task {name} has no templates/{task.template}/"
        assert task.title and menu[task.template]["title"] == task.title
        assert task.objectives["val_loss"] == "min"
        assert set(task.objectives.values()) <= {"min", "max"} and len(task.headline_metrics) >= 1


def test_a_task_registered_from_outside_is_found_and_its_keys_are_its_own():
    """The registry is open: a task defined in a user's module is looked up by name, gets
    its defaults, and a key it owns is refused under another task."""
    from ftk.config import load_config
    from ftk.errors import ConfigError
    from ftk.tasks import get_task, register_task, registry
    from ftk.tasks.classification import ClassificationTask

    @register_task
    class Sentiment(ClassificationTask):
        name = "test_sentiment"
        template = "text-classification"
        only_keys = ("data.decode_errors",)
        defaults = {"train": {"epochs": 7}}
        objectives = {"val_loss": "min", "val_accuracy": "max"}

    try:
        assert isinstance(get_task("test_sentiment"), Sentiment)
        config = load_config(overrides=["run.task=test_sentiment", "data.path=x"])
        assert config.train.epochs == 7
        assert config.tune.objective == "val_loss"  # its first objective is its default
        assert load_config(overrides=["run.task=text_classification"]).tune.objective == (
            "val_accuracy"
        )
        with pytest.raises(ConfigError, match="decode_errors` is a setting of"):
            load_config(overrides=["run.task=image_classification", "data.decode_errors=strict"])
        with pytest.raises(TypeError, match="Two tasks are registered"):

            @register_task
            class Other(ClassificationTask):
                name = "test_sentiment"
    finally:
        registry._TASKS.pop("test_sentiment", None)
    with pytest.raises(ConfigError, match="run.task.*Received: run.task='test_sentiment'"):
        get_task("test_sentiment")


def test_public_api_names_resolve_lazily():
    import ftk

    for name in ftk.__all__:
        assert getattr(ftk, name) is not None
    with pytest.raises(AttributeError):
        ftk.not_a_public_name  # noqa: B018


def test_test_modules_have_unique_names():
    """The test folders have no `__init__.py`, so pytest imports each module by its file name: two
    `test_x.py` in different folders stop the whole collection ("import file mismatch")."""
    tests = Path(__file__).resolve().parents[1]
    names = [p.name for p in tests.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
