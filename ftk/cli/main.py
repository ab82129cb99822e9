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
ftk export RUN_DIR [--set export.KEY=VALUE]   # export a finished run again (a new version)
ftk verify VERSION_DIR        # re-check a published export against its Keras outputs
ftk report RUN_DIR            # (re)write a run's report.md and report.html
ftk doctor [--probe]          # CPU, backends, the precision "auto" picks; --probe times them
```

Errors print one line (`ftk: error: ...`) and exit 2 (1 for an unexpected error); `--debug`
shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ftk.cli.parser import build_parser, train_parser
from ftk.errors import ConfigError, FtkError
from ftk.progress import keras_verbose, set_quiet
from ftk.runtime.native_logs import quiet_env, start_tensorflow

logger = logging.getLogger("ftk")


def _set_quiet(quiet: bool) -> None:
    """Quiet mode (`--quiet` or `run.quiet`): warnings only, no progress bars."""
    _setup_logging(quiet)
    set_quiet(quiet)


def _setup_logging(quiet: bool) -> None:
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("ftk: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    # tf2onnx logs every graph rewrite at INFO.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)


def _print_summary(summary: dict) -> None:
    if "worker" in summary:  # a multi-worker run's non-chief worker
        print(f"worker {summary['worker']}: training done; the chief wrote the run")
        return
    export = summary.get("export") or {}
    from ftk.tasks import get_task

    task = get_task(summary["task"])
    scores = [f"{task.metric_title(m)}: {summary[f'test_{m}']:.4f}" for m in task.headline_metrics]
    lines = ["test " + "   ".join(scores), f"run directory: {summary['run_dir']}"]
    if export:
        lines.append(
            f"SavedModel:    {export['version_dir']}  ({task.verification_summary(export)})"
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
    from ftk.config import load_config
    from ftk.runtime.backend import set_backend

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
    quiet_env(args.debug)
    set_backend(config.runtime.backend, config.runtime.cpu_devices)
    start_tensorflow(args.debug)
    if load_data is None:
        from ftk.runs.model import project_load_data

        load_data = project_load_data(config)
    if args.lr_find:
        return _lr_find(args, config, load_data)
    if args.tune or (config.tune.enabled and args.resume is None):
        return _tune(args, config, load_data)
    from ftk.runs.pipeline import run

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
    from ftk.runs.find_lr import find_learning_rate

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
    from ftk.runtime.backend import set_backend

    for text in args.overrides:
        if not text.startswith("export."):
            raise ConfigError(
                f"ftk export --set takes [export] keys only (export.KEY=VALUE). Received: {text!r}"
            )
    quiet_env(args.debug)
    set_backend("tensorflow")
    start_tensorflow(args.debug)
    from ftk.export.run import export_run

    summary = export_run(args.run_dir, overrides=args.overrides)
    print(f"SavedModel: {summary['version_dir']}")
    return 0


def _verify(args) -> int:
    from ftk.runtime.backend import set_backend

    quiet_env(args.debug)
    set_backend("tensorflow")
    start_tensorflow(args.debug)
    from ftk.export.run import export_task

    for key, value in export_task(args.version_dir).verify_export(args.version_dir).items():
        if key != "examples":
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
    from ftk.cli.new import bake

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
    from ftk.presets import vendor

    if args.action == "list":
        base = Path(args.project)
        print(vendor.format_presets(vendor.list_presets(base)))
        if args.builtin:
            names = vendor.builtin_preset_names()
            print(f"\nkeras-hub built-in presets ({len(names)}, downloaded on first use):")
            print("\n".join(f"  {name}" for name in names))
        return 0
    from ftk.runtime.backend import set_backend  # an online preset is downloaded by keras-hub

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


def _doctor(args) -> int:
    from ftk.cli.doctor import doctor

    _set_quiet(True)
    if args.config is None and Path("config.toml").is_file():
        args.config = "config.toml"
    if args.steps < 1 or args.warmup < 1:
        raise FtkError(
            f"--steps and --warmup must be at least 1. Received: {args.steps}, {args.warmup}"
        )
    return doctor(args)


def train_main(
    argv: list[str] | None = None, load_data=None, default_config: Path | None = Path("config.toml")
) -> int:
    """Entry point of a baked project's `train.py`."""
    parser = train_parser(default_config)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    # How a distributed search starts its chief and workers: this script, these arguments.
    args.relaunch = [str(Path(sys.argv[0]).resolve()), *argv]
    return _guarded(lambda a: _train(a, load_data), args)


def main(argv: list[str] | None = None) -> int:
    """The `ftk` command."""
    parser = build_parser(description=__doc__.split("\n\n")[0])
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.relaunch = ["-m", "ftk.cli.main", *argv]
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
        "doctor": _doctor,
    }
    return _guarded(handlers[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
