"""The command line's arguments: the `ftk` parser, one sub-command per verb with its examples,
and the parser of a baked project's `train.py` (the same training arguments).

`ftk.cli.main` parses with these and runs the verbs. Standard library only.

Example:

>>> args = build_parser("ftk").parse_args(["presets", "list"])
>>> args.command, args.action       # ("presets", "list")
>>> train_parser().parse_args(["--set", "train.epochs=2"]).overrides   # ["train.epochs=2"]
"""

from __future__ import annotations

import argparse
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error that points at --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _add_set(parser: argparse.ArgumentParser, dest: str, metavar: str, help: str) -> None:
    parser.add_argument(
        "--set",
        dest=dest,
        action="append",
        default=[],
        metavar=metavar,
        help=f"{help} (repeatable)",
    )


def _add_train_args(parser: argparse.ArgumentParser, default_config: Path | None) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config,
        help="TOML config file (default: %(default)s)",
    )
    _add_set(
        parser, "overrides", "SECTION.KEY=VALUE", "override one config key, e.g. train.epochs=2"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue a crashed run from its last finished epoch",
    )
    parser.add_argument(
        "--lr-find",
        nargs="?",
        const="finetune",
        choices=("finetune", "head"),
        metavar="PHASE",
        help="instead of training: sweep the learning rate of the fine-tuning phase (or 'head'), "
        "plot loss vs rate into a new run directory and suggest a value; nothing is saved",
    )
    parser.add_argument(
        "--lr-find-steps",
        type=int,
        default=100,
        metavar="N",
        help="at most N steps of the sweep (100; fewer on small data: at most 2 passes over the "
        "training split, at least 20)",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="search hyperparameters over [tune] space (KerasTuner), then train the final model "
        "with the best values (same as tune.enabled = true); rerun to continue a search",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="with --tune: run the trials in N local worker processes (KerasTuner's "
        "chief/worker mode on 127.0.0.1, supervised)",
    )
    parser.add_argument(
        "--search-only",
        action="store_true",
        help="with --tune: write the results and best_config.toml, train no final model",
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help="with --lr-find or --tune: write the suggested / best values into the config file "
        "(comments kept, a .bak copy of the old file is kept)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


_TRAIN_EXAMPLES = """examples:
  ftk train                                   train with ./config.toml (and ./data.py)
  ftk train --set train.epochs=2 --quiet      override a key; warnings only
  ftk train --resume runs/20261123-101500     continue a crashed run

A run writes runs/<timestamp>/: config.toml, checkpoints/, logs/ (TensorBoard:
tensorboard --logdir runs), history.csv, metrics.json, report.md and report.html; and
publishes a verified SavedModel (+ ONNX) under export.export_dir/<model_name>/<version>/."""

_VERBS = {
    "new": (
        "bake a new project from a template (cookiecutter)",
        """examples:
  ftk new                                     pick a template and answer its questions
  ftk new text-classification --no-input      the defaults (BBC News, MiniLM-L6)
  ftk new image-classification --set project_name="Leaf Spots" --set path=/data/leaves

Templates: text-classification, image-classification, causal-lm (see docs/templates/).""",
    ),
    "presets": (
        "list the backbones usable here, or vendor one into the project",
        """examples:
  ftk presets list                   offline presets, installed or not, and vendored ones
  ftk presets list --builtin         also keras-hub's built-in names (downloaded when used)
  ftk presets pull minilm_l6         copy it to presets/minilm_l6 with sha256 checksums
  then in config.toml: [model] preset = "presets/minilm_l6" (checked on every load)""",
    ),
    "train": ("train, evaluate, export and verify (= python train.py)", _TRAIN_EXAMPLES),
    "lr-find": (
        "sweep the learning rate, plot loss vs rate, suggest a value (= train.py --lr-find)",
        """examples:
  ftk lr-find                 the fine-tuning phase's rate (train.learning_rate)
  ftk lr-find --lr-find head  the head phase's rate (recipe.head_learning_rate)
  ftk lr-find --apply         write the suggestion into config.toml (a .bak is kept)""",
    ),
    "tune": (
        "search hyperparameters with KerasTuner, then train the best (= train.py --tune)",
        """examples:
  ftk tune                          the [tune] section's search, then the final model
  ftk tune --search-only --apply    search only; write the best values into config.toml
  ftk tune --workers 2              trials in 2 local worker processes""",
    ),
    "export": (
        "export a finished run again, as a new version",
        """example:
  ftk export runs/20261123-101500   -> export.export_dir/<model_name>/<next version>/
  ftk export runs/20261123-101500 --set export.export_dir=/srv/models --set export.onnx=false

The SavedModel and ONNX model are verified against the run's Keras outputs before the
version directory appears (never overwritten).""",
    ),
    "verify": (
        "re-check a published export against its Keras outputs",
        """example:
  ftk verify saved_models/news_classifier/1""",
    ),
    "doctor": (
        "this machine's CPU, GPUs and backends, the precision a run picks, and (--probe) the "
        "fastest backend and precision for this project, measured",
        """examples:
  ftk doctor                         CPU instruction sets, backends, what precision=auto picks
  ftk doctor --probe                 time a few training steps on every backend and precision
  ftk doctor --probe --backends tensorflow,torch --steps 8

A probe trains this project's model on its data for a few steps in a fresh process per
backend and precision (about a minute each on 2 CPU cores); nothing is written.""",
    ),
    "report": (
        "(re)write a run's report.md and report.html",
        """example:
  ftk report runs/20261123-101500 --mistakes 24

Curves, per-class precision/recall/F1, the confusion matrix, the most confident mistakes,
the exports and the config, from the files in the run directory (no model is loaded).""",
    ),
}


def train_parser(default_config: Path | None = Path("config.toml")) -> argparse.ArgumentParser:
    """The parser of a baked project's `train.py` (`ftk.cli.main.train_main`)."""
    parser = _Parser(
        prog="train.py",
        description="Fine-tune, evaluate, export and verify; write the run's report.",
        epilog=_TRAIN_EXAMPLES.replace("ftk train", "python train.py"),
    )
    _add_train_args(parser, default_config)
    return parser


def build_parser(description: str) -> argparse.ArgumentParser:
    """The `ftk` command's parser (`ftk.cli.main`): one sub-parser per verb in `_VERBS`."""
    parser = _Parser(prog="ftk", description=description)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    verbs = {}
    for name, (summary, epilog) in _VERBS.items():
        verbs[name] = sub.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=epilog,
        )
    for name in ("train", "lr-find", "tune"):
        _add_train_args(verbs[name], Path("config.toml"))

    new = verbs["new"]
    new.add_argument(
        "template",
        nargs="?",
        help="text-classification or image-classification (default: ask, or the first with "
        "--no-input)",
    )
    new.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="where (default: .)")
    new.add_argument("--no-input", action="store_true", help="take the defaults, ask nothing")
    _add_set(new, "answers", "KEY=VALUE", "answer one template question, e.g. project_name=Tickets")
    new.add_argument(
        "--templates", type=Path, help="a checkout of this repository (default: ftk's)"
    )

    presets = verbs["presets"]
    presets.add_argument("action", choices=("list", "pull"), help="list, or pull NAME")
    presets.add_argument("name", nargs="?", help="with pull: the preset to vendor")
    presets.add_argument("--dest", type=Path, help="with pull: where (default: presets/NAME)")
    presets.add_argument("--builtin", action="store_true", help="with list: keras-hub's names too")
    presets.add_argument(
        "--project", default=".", metavar="DIR", help="the project directory (default: .)"
    )

    verbs["export"].add_argument("run_dir", type=Path, help="a finished run directory")
    _add_set(
        verbs["export"],
        "overrides",
        "export.KEY=VALUE",
        "change one [export] key for this export, e.g. export.export_dir=/srv/models",
    )
    verbs["verify"].add_argument("version_dir", type=Path, help="<export_dir>/<model>/<version>")
    verbs["report"].add_argument("run_dir", type=Path, help="a run directory")
    verbs["report"].add_argument(
        "--mistakes", type=int, metavar="N", help="how many mistakes to list (run.report_mistakes)"
    )
    doctor = verbs["doctor"]
    doctor.add_argument(
        "--config", default=None, help="the project's config.toml (default: ./config.toml if any)"
    )
    _add_set(doctor, "overrides", "KEY=VALUE", "override a key of the config for the probes")
    doctor.add_argument("--probe", action="store_true", help="time training on each backend")
    doctor.add_argument("--backends", help="with --probe: a comma list (default: all installed)")
    doctor.add_argument("--steps", type=int, default=5, help="with --probe: timed steps (5)")
    doctor.add_argument("--warmup", type=int, default=2, help="with --probe: untimed steps (2)")
    doctor.add_argument(
        "--timeout", type=float, default=600, help="with --probe: seconds per probe (600)"
    )
    for name in ("new", "presets", "export", "verify", "report", "doctor"):
        verbs[name].add_argument("--quiet", action="store_true", help="warnings only, no bars")
        verbs[name].add_argument("--debug", action="store_true", help="show tracebacks")
    return parser
