"""The benchmark imports ftk inside functions (each worker sets its backend first), so a renamed
ftk function breaks a row only when `make bench` reaches it. Every `from ftk... import name` in
bench/*.py must resolve, checked here without running a row."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def ftk_imports() -> list[tuple[str, str, str]]:
    """(bench file, module, name) of every `from ftk... import name`, at any depth."""
    found = []
    for path in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ftk":
                found += [(path.name, node.module, alias.name) for alias in node.names]
    return found


def test_every_ftk_name_the_benchmark_imports_exists():
    imports = ftk_imports()
    assert len(imports) > 20  # the benchmark does import ftk
    missing = []
    for file, module, name in imports:
        loaded = importlib.import_module(module)
        if not hasattr(loaded, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule
            except ImportError:
                missing.append(f"{file}: from {module} import {name}")
    assert not missing, missing
