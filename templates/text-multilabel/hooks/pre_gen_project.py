"""Check the answers' form before anything is written; exit 1 with a message naming the field.

ftk's config loader checks the full rules again when train.py runs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path("{{ cookiecutter.__template_dir }}").parent / "_shared"))

from ftk_template import check_answers, integer_in  # noqa: E402

ANSWERS = {
    "project_slug": "{{ cookiecutter.project_slug }}",
    "model_name": "{{ cookiecutter.model_name }}",
    "preset": "{{ cookiecutter.preset }}",
    "path": "{{ cookiecutter.path }}",
    "sequence_length": "{{ cookiecutter.sequence_length }}",
    "trainable": "{{ cookiecutter.trainable }}",
    "recipe": "{{ cookiecutter.recipe }}",
    "backend": "{{ cookiecutter.backend }}",
    "ftk_source": "{{ cookiecutter.ftk_source }}",
}


def multilabel_problems(answers, bad) -> None:
    integer_in(answers, "sequence_length", 8, 4096, bad)


if __name__ == "__main__":
    sys.exit(check_answers(ANSWERS, multilabel_problems))
