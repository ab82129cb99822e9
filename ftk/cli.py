"""Command line: `train.py` in a baked project, and the `ftk` command.

```
python train.py [--config config.toml] [--set section.key=value ...] [--resume RUN_DIR]
python train.py --lr-find [head] [--apply]   # learning-rate finder (nothing is trained)
python train.py --tune [--workers N] [--search-only] [--apply]   # KerasTuner search, then train
ftk new [TEMPLATE] [-o DIR] [--no-input] [--set key=value ...]   # bake a project
ftk presets list [--builtin]   # backbones usable offline (and keras-hub's online names)
ftk presets pull NAME [--dest DIR]   # vendor a backbone into the project, with checksums
ftk train [--config config.toml] [--set ...]   # = python train.py
ftk lr-find [--config config.toml] [--apply]   # = train.py --lr-find
ftk tune [--config config.toml] [--workers N]   # = train.py --tune
ftk export RUN_DIR            # export a finished run again (a new version)
ftk verify VERSION_DIR        # re-check a published export against its Keras outputs
ftk report RUN_DIR            # (re)write a run's report.md and report.html
```

Errors print one line (`ftk: error: ...`) and exit 2 (1 for an unexpected error); `--debug`
shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ftk.errors import ConfigError, FtkError
from ftk.progress import keras_verbose, set_quiet

logger = logging.getLogger("ftk")


def _set_quiet(quiet: bool) -> None:
    """Quiet mode (`--quiet` or `run.quiet`): warnings only, no progress bars."""
    _setup_logging(quiet)
    set_quiet(quiet)


def project_load_data(config):
    """The `load_data` of the project a config belongs to: its `data.py` (next to the config),
    as the project's `train.py` uses it; `None` (the task's own reader) if there is none."""
    import importlib.util

    path = Path(config.base_dir) / "data.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_ftk_project_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "load_data", None)):
        raise ConfigError(f"{path} has no load_data(config) function (see the template's data.py).")
    return module.load_data


def _setup_logging(quiet: bool) -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("ftk: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    # tf2onnx logs every graph rewrite at INFO.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)


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
        "--lr-find-steps", type=int, default=100, metavar="N", help="steps of the sweep (100)"
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


def _print_summary(summary: dict) -> None:
    if "worker" in summary:  # a multi-worker run's non-chief worker
        print(f"worker {summary['worker']}: training done; the chief wrote the run")
        return
    export = summary.get("export") or {}
    lines = [
        f"test accuracy: {summary['test_accuracy']:.4f}   macro-F1: {summary['test_macro_f1']:.4f}",
        f"run directory: {summary['run_dir']}",
    ]
    if export:
        lines.append(
            f"SavedModel:    {export['version_dir']}  (max |diff| vs Keras "
            f"{export['savedmodel_max_abs_diff']:.2e})"
        )
        if "savedmodel_pixels_max_abs_diff" in export:
            lines.append(
                f"               serving_pixels max |diff| vs Keras "
                f"{export['savedmodel_pixels_max_abs_diff']:.2e}"
            )
        if "onnx" in export:
            lines.append(
                f"ONNX:          {export['onnx']}  (max |diff| vs Keras "
                f"{export['onnx_max_abs_diff']:.2e})"
            )
        if "onnx_int8" in export:
            q = export["onnx_int8"]
            lines.append(
                f"ONNX int8:     {q['file']}  (test accuracy {q['accuracy_float']:.4f} -> "
                f"{q['accuracy_int8']:.4f}, latency x{q['latency_ratio_int8_vs_float']:.2f} "
                "of float ONNX)"
            )
    if summary.get("report"):
        lines.append(f"report:        {summary['report']}")
    print("\n".join(lines))


def _train(args, load_data) -> int:
    from ftk.backend import set_backend
    from ftk.config import load_config

    if args.apply and not (args.lr_find or args.tune):
        raise FtkError("--apply goes with --lr-find or --tune (it writes what they found).")
    if args.lr_find and args.tune:
        raise FtkError("--lr-find and --tune are separate commands: use one at a time.")
    if (args.lr_find or args.tune) and args.resume is not None:
        raise FtkError(
            "--lr-find and --tune start from the pretrained model; they cannot --resume a run "
            "(rerunning the same --tune command continues its search)."
        )
    if args.workers < 0 or (args.workers and not args.tune):
        raise FtkError(f"--workers N (N >= 1) goes with --tune. Received: {args.workers}")
    if args.search_only and not args.tune:
        raise FtkError("--search-only goes with --tune.")
    if args.apply and args.config is None:
        raise FtkError("--apply needs a config file to write into (--config).")
    if args.resume is not None:
        from ftk.runs import load_run_config

        config = load_run_config(args.resume)
    else:
        config = load_config(args.config, args.overrides)
    _set_quiet(args.quiet or config.run.quiet)
    set_backend(config.runtime.backend, config.runtime.cpu_devices)
    if load_data is None:
        load_data = project_load_data(config)
    if args.lr_find:
        return _lr_find(args, config, load_data)
    if args.tune or (config.tune.enabled and args.resume is None):
        return _tune(args, config, load_data)
    from ftk.tasks.runner import run

    summary = run(config, load_data=load_data, resume=args.resume, verbose=keras_verbose())
    _print_summary(summary)
    return 0


def _tune(args, config, load_data) -> int:
    from ftk.tuning.command import tune

    result = tune(
        config,
        load_data,
        workers=args.workers,
        argv=args.relaunch,
        search_only=args.search_only,
        config_path=args.config if args.apply else None,
        verbose=keras_verbose(),
    )
    if not result:  # a distributed worker
        return 0
    search = result["search"]
    best = search["best"]
    print(
        f"best trial {best['trial']} of {search['trials']}: {search['objective']} = "
        f"{best['score']:.4f}  {best['values']}"
    )
    baseline = search["baseline"]
    if baseline is not None and baseline["score"] is not None:
        print(f"untuned config (trial {baseline['trial']}): {baseline['score']:.4f}")
    print(f"trials: {search['table']}  plot: {search['plot']}")
    print(f"best config: {search['best_config']}")
    if "backups" in search:
        print(f"written to {args.config} (previous version: {search['backups'][0]})")
    if result["run"] is not None:
        _print_summary(result["run"])
    return 0


def _lr_find(args, config, load_data) -> int:
    from ftk.tasks.runner import find_learning_rate

    if args.lr_find_steps < 10:
        raise FtkError(f"--lr-find-steps must be >= 10. Received: {args.lr_find_steps}")
    summary = find_learning_rate(
        config,
        load_data,
        phase=args.lr_find,
        steps=args.lr_find_steps,
        config_path=args.config if args.apply else None,
        verbose=keras_verbose(),
    )

    def rate(value) -> str:  # None: the sweep had no point of steepest descent
        return "none" if value is None else f"{value:.2g}"

    print(
        f"suggested {summary['key']} = {summary['suggestion']:.2g}  ({summary['rule']} rule; "
        f"steepest {rate(summary['steepest'])}, minimum/10 {rate(summary['minimum_tenth'])})\n"
        f"plot: {summary['plot']}"
    )
    if "backup" in summary:
        print(f"written to {summary['config']} (previous version: {summary['backup']})")
    else:
        print(f"use it: --set {summary['key']}={summary['suggestion']:.2g}, or rerun with --apply")
    return 0


def _export(args) -> int:
    from ftk.backend import set_backend

    set_backend("tensorflow")
    from ftk.export.run import export_run

    summary = export_run(args.run_dir)
    print(f"SavedModel: {summary['version_dir']}")
    return 0


def _verify(args) -> int:
    from ftk.backend import set_backend

    set_backend("tensorflow")
    from ftk.export.verify import verify_export

    for key, value in verify_export(args.version_dir).items():
        print(f"{key}: {value:.3g}")
    print(f"OK: {args.version_dir} matches its Keras model")
    return 0


def _report(args) -> int:
    from ftk.config import MAX_REPORT_MISTAKES
    from ftk.report import write_report

    if args.mistakes is not None and not 0 <= args.mistakes <= MAX_REPORT_MISTAKES:
        raise ConfigError(
            f"--mistakes must be in [0, {MAX_REPORT_MISTAKES}]. Received: {args.mistakes}"
        )
    paths = write_report(args.run_dir, args.mistakes)
    print(f"report: {paths['html']}\n        {paths['markdown']}")
    return 0


def _new(args) -> int:
    from ftk.templates import bake

    project = bake(
        args.template,
        output_dir=args.output_dir,
        no_input=args.no_input,
        answers=args.answers,
        templates=args.templates,
    )
    print(f"project: {project}\nnext:    cd {project} && python train.py")
    return 0


def _presets(args) -> int:
    from ftk import vendor

    if args.action == "list":
        base = Path(args.project)
        print(vendor.format_presets(vendor.list_presets(base)))
        if args.builtin:
            names = vendor.builtin_preset_names()
            print(f"\nkeras-hub built-in presets ({len(names)}, downloaded on first use):")
            print("\n".join(f"  {name}" for name in names))
        return 0
    from ftk.backend import set_backend  # an online preset is downloaded by keras-hub

    set_backend(os.environ.get("KERAS_BACKEND", "tensorflow"))
    pulled = vendor.pull_preset(args.name, args.dest, Path(args.project))
    print(
        f"vendored {pulled['name']} into {pulled['dest']} ({pulled['files']} files, "
        f"{pulled['bytes'] / 1e6:.1f} MB, manifest {pulled['checksum']})\n"
        f'use it: [model] preset = "{pulled["dest"]}"'
    )
    return 0


def _guarded(fn, args) -> int:
    """Run a command: errors the user can fix print one line and exit 2, anything else one line
    and exit 1 (with --debug, the traceback)."""
    _set_quiet(getattr(args, "quiet", False))
    try:
        return fn(args)
    except FtkError as e:
        if args.debug:
            raise
        print(f"ftk: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ftk: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 (one line, unless --debug)
        if args.debug:
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(
            f"ftk: error: {type(e).__name__}: {first} (unexpected: rerun with --debug for the "
            "traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error that points at --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def train_main(
    argv: list[str] | None = None, load_data=None, default_config: Path | None = Path("config.toml")
) -> int:
    """Entry point of a baked project's `train.py`."""
    parser = _Parser(
        prog="train.py",
        description="Fine-tune, evaluate, export and verify; write the run's report.",
        epilog=_TRAIN_EXAMPLES.replace("ftk train", "python train.py"),
    )
    _add_train_args(parser, default_config)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    # How a distributed search starts its chief and workers: this script, these arguments.
    args.relaunch = [str(Path(sys.argv[0]).resolve()), *argv]
    return _guarded(lambda a: _train(a, load_data), args)


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

Templates: text-classification, image-classification (see the README).""",
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

The SavedModel and ONNX model are verified against the run's Keras outputs before the
version directory appears (never overwritten).""",
    ),
    "verify": (
        "re-check a published export against its Keras outputs",
        """example:
  ftk verify saved_models/news_classifier/1""",
    ),
    "report": (
        "(re)write a run's report.md and report.html",
        """example:
  ftk report runs/20261123-101500 --mistakes 24

Curves, per-class precision/recall/F1, the confusion matrix, the most confident mistakes,
the exports and the config, from the files in the run directory (no model is loaded).""",
    ),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ftk", description=__doc__.split("\n\n")[0])
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
    verbs["verify"].add_argument("version_dir", type=Path, help="<export_dir>/<model>/<version>")
    verbs["report"].add_argument("run_dir", type=Path, help="a run directory")
    verbs["report"].add_argument(
        "--mistakes", type=int, metavar="N", help="how many mistakes to list (run.report_mistakes)"
    )
    for name in ("new", "presets", "export", "verify", "report"):
        verbs[name].add_argument("--quiet", action="store_true", help="warnings only, no bars")
        verbs[name].add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `ftk` command."""
    parser = _build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.relaunch = ["-m", "ftk.cli", *argv]
    if args.command == "lr-find":
        args.lr_find = args.lr_find or "finetune"
    if args.command == "tune":
        args.tune = True
    if args.command == "presets" and (args.action == "pull") != bool(args.name):
        parser.exit(
            2,
            "ftk presets: error: "
            + ("pull needs a NAME" if args.name is None else f"list takes no NAME ({args.name!r})")
            + " (see: ftk presets --help)\n",
        )
    handlers = {
        "new": _new,
        "presets": _presets,
        "train": lambda a: _train(a, None),
        "lr-find": lambda a: _train(a, None),
        "tune": lambda a: _train(a, None),
        "export": _export,
        "verify": _verify,
        "report": _report,
    }
    return _guarded(handlers[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
