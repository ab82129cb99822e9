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
    "format": "{{ cookiecutter.format }}",
    "path": "{{ cookiecutter.path }}",
    "labels": "{{ cookiecutter.labels }}",
    "image_size": "{{ cookiecutter.image_size }}",
    "trainable": "{{ cookiecutter.trainable }}",
    "recipe": "{{ cookiecutter.recipe }}",
    "on_bad_images": "{{ cookiecutter.on_bad_images }}",
    "backend": "{{ cookiecutter.backend }}",
    "ftk_source": "{{ cookiecutter.ftk_source }}",
}


def image_problems(answers, bad) -> None:
    integer_in(answers, "image_size", 32, 1024, bad)
    if answers["on_bad_images"] not in ("error", "skip"):
        bad("on_bad_images", "'error' or 'skip'")


if __name__ == "__main__":
    sys.exit(check_answers(ANSWERS, image_problems))
