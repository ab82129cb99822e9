"""Command line: `train.py` in a baked project, and the `ftk` command.

```
python train.py [--config config.toml] [--set section.key=value ...] [--resume RUN_DIR]
python train.py --lr-find [head] [--apply]   # learning-rate finder (nothing is trained)
python train.py --tune [--workers N] [--search-only] [--apply]   # KerasTuner search, then train
ftk train [--config config.toml] [--set ...]
ftk lr-find [--config config.toml] [--apply]   # = train.py --lr-find
ftk tune [--config config.toml] [--workers N]   # = train.py --tune
ftk export RUN_DIR            # export a finished run again (a new version)
ftk verify VERSION_DIR        # re-check a published export against its Keras outputs
```

Errors the user can fix print one line (`ftk: error: ...`) and exit 2; `--debug` shows the
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ftk.errors import FtkError

logger = logging.getLogger("ftk")


def _setup_logging(quiet: bool) -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("ftk: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    # tf2onnx logs every graph rewrite at INFO.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)


def _add_train_args(parser: argparse.ArgumentParser, default_config: Path | None) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config,
        help="TOML config file (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key, e.g. --set train.epochs=2 (repeatable)",
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
    set_backend(config.runtime.backend, config.runtime.cpu_devices)
    if args.lr_find:
        return _lr_find(args, config, load_data)
    if args.tune or (config.tune.enabled and args.resume is None):
        return _tune(args, config, load_data)
    from ftk.tasks.runner import run

    summary = run(
        config, load_data=load_data, resume=args.resume, verbose=2 if args.quiet else "auto"
    )
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
        verbose=2 if args.quiet else "auto",
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
        verbose=2 if args.quiet else "auto",
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
    logger.info("SavedModel: %s", summary["version_dir"])
    return 0


def _verify(args) -> int:
    from ftk.backend import set_backend

    set_backend("tensorflow")
    from ftk.export.verify import verify_export

    for key, value in verify_export(args.version_dir).items():
        print(f"{key}: {value:.3g}")
    print(f"OK: {args.version_dir} matches its Keras model")
    return 0


def _guarded(fn, args) -> int:
    _setup_logging(getattr(args, "quiet", False))
    try:
        return fn(args)
    except FtkError as e:
        if args.debug:
            raise
        print(f"ftk: error: {e}", file=sys.stderr)
        return 2


def train_main(
    argv: list[str] | None = None, load_data=None, default_config: Path | None = Path("config.toml")
) -> int:
    """Entry point of a baked project's `train.py`."""
    parser = argparse.ArgumentParser(
        prog="train.py", description="Fine-tune, evaluate, export and verify."
    )
    _add_train_args(parser, default_config)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    # How a distributed search starts its chief and workers: this script, these arguments.
    args.relaunch = [str(Path(sys.argv[0]).resolve()), *argv]
    return _guarded(lambda a: _train(a, load_data), args)


def main(argv: list[str] | None = None) -> int:
    """The `ftk` command."""
    parser = argparse.ArgumentParser(prog="ftk", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train, evaluate, export and verify a model")
    _add_train_args(train, Path("config.toml"))
    lr_find = sub.add_parser(
        "lr-find", help="sweep the learning rate, plot loss vs rate, suggest a value"
    )
    _add_train_args(lr_find, Path("config.toml"))
    tune = sub.add_parser(
        "tune", help="search hyperparameters, then train the best config (= train.py --tune)"
    )
    _add_train_args(tune, Path("config.toml"))
    export = sub.add_parser("export", help="export a finished run as a new version")
    export.add_argument("run_dir", type=Path)
    verify = sub.add_parser("verify", help="re-check an export against its Keras outputs")
    verify.add_argument("version_dir", type=Path)
    for p in (export, verify):
        p.add_argument("--debug", action="store_true", help="show tracebacks")
        p.add_argument("--quiet", action="store_true", help="warnings only")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.relaunch = ["-m", "ftk.cli", *argv]
    if args.command == "lr-find":
        args.lr_find = args.lr_find or "finetune"
    if args.command == "tune":
        args.tune = True
    handlers = {
        "train": lambda a: _train(a, None),
        "lr-find": lambda a: _train(a, None),
        "tune": lambda a: _train(a, None),
        "export": _export,
        "verify": _verify,
    }
    return _guarded(handlers[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
