"""Check the answers' form before anything is written; exit 1 with a message naming the field.

ftk's config loader checks the full rules again when train.py runs.
"""

import re
import sys

ANSWERS = {
    "project_slug": "{{ cookiecutter.project_slug }}",
    "model_name": "{{ cookiecutter.model_name }}",
    "preset": "{{ cookiecutter.preset }}",
    "format": "{{ cookiecutter.format }}",
    "path": "{{ cookiecutter.path }}",
    "labels": "{{ cookiecutter.labels }}",
    "sequence_length": "{{ cookiecutter.sequence_length }}",
    "trainable": "{{ cookiecutter.trainable }}",
    "backend": "{{ cookiecutter.backend }}",
    "ftk_source": "{{ cookiecutter.ftk_source }}",
}


def problems(answers: dict) -> list[str]:
    out = []

    def bad(field: str, expected: str) -> None:
        out.append(f"`{field}` must be {expected}. Received: {field}={answers[field]!r}")

    if not re.fullmatch(r"[a-z][a-z0-9_]*", answers["project_slug"]):
        bad("project_slug", "lowercase letters, digits and '_', starting with a letter")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", answers["model_name"]):
        bad("model_name", "letters, digits, '_', '-' or '.', starting with a letter or digit")
    if not answers["preset"].strip() or any(c.isspace() for c in answers["preset"]):
        bad("preset", "a preset name or a directory, without spaces")
    if answers["format"] not in ("folder", "csv", "tfds"):
        bad("format", "one of folder, csv, tfds")
    if not answers["path"].strip():
        bad("path", "a file, a directory, a TFDS name or example:bbc_news")
    if '"' in answers["path"] or "\\" in answers["path"]:
        bad("path", "a path without quotes or backslashes")
    labels = [label.strip() for label in answers["labels"].split(",") if label.strip()]
    if answers["labels"].strip() and (len(labels) < 2 or len(set(labels)) != len(labels)):
        bad("labels", "empty, or at least 2 distinct comma-separated names")
    if any('"' in label or "\\" in label for label in labels):
        bad("labels", "names without quotes or backslashes")
    if not answers["sequence_length"].isdigit() or not 8 <= int(answers["sequence_length"]) <= 4096:
        bad("sequence_length", "an integer between 8 and 4096")
    if not re.fullmatch(r"head|all|last_n:[1-9][0-9]*", answers["trainable"]):
        bad("trainable", "'head', 'all' or 'last_n:<k>' (k >= 1)")
    if answers["backend"] not in ("tensorflow", "jax", "torch"):
        bad("backend", "one of tensorflow, jax, torch")
    if not answers["ftk_source"].strip():
        bad("ftk_source", "'auto' or a pip requirement for ftk")
    return out


if __name__ == "__main__":
    found = problems(ANSWERS)
    for message in found:
        print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1 if found else 0)
