"""`python train.py --tune`: search, write the results, then train the final model with the
best values (a normal run: evaluated, exported and verified)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ftk.config import Config, update_config_file
from ftk.errors import FtkError
from ftk.tuning.search import prepare, role, run_search

logger = logging.getLogger("ftk")


def tune(
    config: Config,
    load_data=None,
    *,
    workers: int = 0,
    argv: list[str] | None = None,
    search_only: bool = False,
    config_path: Path | None = None,
    verbose="auto",
) -> dict:
    """Search (in this process, or with `workers` local worker processes), then train.

    Trials run on one device in float32; the final run uses `[runtime]` (devices, precision).

    Returns `{"search": results summary, "run": the final run's summary or None}`. In
    KerasTuner's distributed mode a worker only runs its trials and returns `{}`.
    """
    from ftk.tuning.results import write_results

    if config.runtime.distribution == "multi_worker" and not search_only:
        raise FtkError(
            "A search runs its trials on one device each, and a multi_worker run needs its "
            "workers from the start: search first (--search-only), then train the best config "
            "with runtime.distribution = 'multi_worker' (train.py --config "
            "runs/tune/<name>/best_config.toml on every worker)."
        )
    distributed_role = role()
    if distributed_role not in (None, "chief"):  # a worker: trials only
        run_search(config, prepare(config, load_data), verbose)
        return {}
    if workers:
        prepared = prepare(config, load_data)  # checks, and the feature cache for the workers
        if not argv:
            raise FtkError("A distributed search needs the command to start its workers with.")
        _launch(config, prepared["directory"], workers, argv)
    else:
        prepared = prepare(config, load_data, features=distributed_role is None)
        run_search(config, prepared, verbose)
    search = write_results(config, prepared["space"], prepared["directory"])
    log_best(search)
    if config_path is not None:
        for key, value in search["best"]["values"].items():
            search.setdefault("backups", []).append(
                str(update_config_file(config_path, key, value))
            )
    if search_only:
        return {"search": search, "run": None}
    from ftk.config import load_config
    from ftk.runs.pipeline import run

    tuned = load_config(search["best_config"])
    logger.info("Training the final model with the best values (%s)", search["best_config"])
    summary = run(tuned, load_data=load_data, verbose=verbose, extra={"tuned": search})
    return {"search": search, "run": summary}


def log_best(search: dict) -> None:
    best, baseline = search["best"], search["baseline"]
    untuned = ""
    if baseline is not None:
        score = "failed" if baseline["score"] is None else f"{baseline['score']:.4f}"
        untuned = f" (the untuned config, trial {baseline['trial']}: {score})"
    logger.info(
        "Best of %d trial(s): trial %s, %s = %.4f%s; values %s. Table: %s",
        search["trials"],
        best["trial"],
        search["objective"],
        best["score"],
        untuned,
        best["values"],
        search["table"],
    )


def _launch(config: Config, directory: Path, workers: int, argv: list[str]) -> None:
    """Chief + `workers` processes of this same command on 127.0.0.1, supervised."""
    from ftk.tuning.distributed import launch

    command = [sys.executable, *_worker_argv(argv)]
    timeout = config.tune.max_minutes * 60 + 600 if config.tune.max_minutes else None
    result = launch(command, workers, directory / "logs", timeout=timeout)
    for report in result.reports:
        logger.info("%s: %s (log %s)", report.tuner_id, report.status, report.log)
    if result.ok:
        return
    chief = next(r for r in result.reports if r.tuner_id == "chief")
    if chief.status == "ok":  # the oracle finished the search; a late worker found it gone
        logger.warning("The search finished; some workers did not exit cleanly: %s", result.message)
        return
    raise FtkError(f"The distributed search did not finish: {result.message}")


def _worker_argv(argv: list[str]) -> list[str]:
    """This command for a chief or worker process: without `--workers N` (and `--apply`)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers=") or arg == "--apply":
            continue
        out.append(arg)
    return [*out, "--search-only"]
