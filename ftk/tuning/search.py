"""Run or continue a KerasTuner search over the config's `[tune]` space.

The search lives in `<run.run_dir>/tune/<tune.name>/` (KerasTuner's project directory):
re-running the same command continues it (finished trials are kept, an interrupted trial is
retried), and a changed config is refused rather than mixed in (`check_same_search`).

Trials are numbered from 1 wherever ftk shows them, as in KerasTuner's "Trial 1 Complete" lines
(`trial_number`); their directories keep KerasTuner's ids (`trial_0` is trial 1).

Trial 1 trains the config as written (the untuned baseline), except for grid search; then the
algorithm (`tune.algorithm`: random, bayesian, hyperband or grid) proposes values until
`tune.max_trials` trials exist or `tune.max_minutes` have passed (no trial starts after that,
the running one finishes, and the first trial always runs).

KerasTuner's own distributed mode applies as is: with `KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` set, the chief serves the oracle and the
workers run trials (`ftk.tuning.distributed` launches and supervises them on one machine).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path

import keras_tuner

from ftk.config import Config, to_dict
from ftk.errors import ConfigError, FtkError
from ftk.files import read_json, write_json
from ftk.tuning.measure import memory_mb, objective
from ftk.tuning.space import (
    baseline_values,
    check_space,
    search_space,
    uses_cached_features,
)

logger = logging.getLogger("ftk")

SEARCH_FILE = "search.json"  # the config the search was started with
TRIAL_FILE = "ftk_trial.json"  # per trial: seconds, memory, worker, path
# Keys that may change between runs of one search: the budget and what a run shows (and, in
# _search_tree, the whole [export] section: where exports go).
_MAY_CHANGE = {
    "tune.enabled",
    "tune.max_trials",
    "tune.max_minutes",
    "run.quiet",
    "run.report_mistakes",
}


def tune_dir(config: Config) -> Path:
    return config.resolve_path(config.run.run_dir) / "tune" / config.tune.name


def trial_number(trial_id: str) -> int:
    """The number a user sees for KerasTuner's trial id: `"0"` (or `"00"`, zero-padded) is
    trial 1, as KerasTuner's own "Trial 1 Complete" line says (ids count the trials created)."""
    return int(trial_id) + 1


def role() -> str | None:
    """`"chief"`, a worker's tuner id, or None outside KerasTuner's distributed mode."""
    return os.environ.get("KERASTUNER_TUNER_ID") if "KERASTUNER_ORACLE_IP" in os.environ else None


def _search_tree(config: Config) -> dict[str, object]:
    flat = {
        f"{section}.{key}": value
        for section, values in to_dict(config).items()
        for key, value in values.items()
        if section != "export"
    }
    return {k: v for k, v in flat.items() if k not in _MAY_CHANGE}


def check_same_search(config: Config, directory: Path) -> None:
    """Record the config of a new search; refuse to continue one started with another config."""
    path = directory / SEARCH_FILE
    tree = _search_tree(config)
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        write_json(path, {"config": tree})
        return
    before = read_json(path)["config"]
    changed = sorted(k for k in set(tree) | set(before) if tree.get(k) != before.get(k))
    if changed:
        shown = "; ".join(f"{k}: {before.get(k)!r} -> {tree.get(k)!r}" for k in changed[:6])
        raise ConfigError(
            f"{directory} holds a search started with a different config ({shown}). Set "
            f"tune.name to start a new search, or restore those keys to continue this one."
        )


def _oracle(config: Config, space: dict, objective, hp):
    """The algorithm's oracle, with ftk's budget (trials, minutes) and baseline trial."""
    tune = config.tune
    common = {"objective": objective, "seed": config.run.seed, "hyperparameters": hp}
    bases = {
        "random": keras_tuner.oracles.RandomSearchOracle,
        "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
        "grid": keras_tuner.oracles.GridSearchOracle,
        "hyperband": keras_tuner.oracles.HyperbandOracle,
    }
    base = bases[tune.algorithm]
    deadline = time.time() + tune.max_minutes * 60 if tune.max_minutes else None
    baseline = None if tune.algorithm == "grid" else baseline_values(config, space)

    class Oracle(base):
        def populate_space(self, trial_id):
            if deadline is not None and time.time() > deadline and self.trials:
                logger.info("tune.max_minutes=%g reached: no new trials", tune.max_minutes)
                return {"status": "STOPPED"}
            if len(self.trials) >= tune.max_trials:  # Hyperband has no max_trials of its own
                return {"status": "STOPPED"}
            if baseline is not None and not self.trials:
                return {"status": "RUNNING", "values": dict(baseline)}
            return super().populate_space(trial_id)

        def reload(self):
            super().reload()  # queues the trials that were running for a retry
            # A chief saves oracle.json before it drops a finished trial from the running ones:
            # without this, a rerun would train the last finished trial again.
            self._retry_queue = [
                t for t in self._retry_queue if self.trials[t].status != "COMPLETED"
            ]

    if tune.algorithm == "hyperband":
        epochs = tune.epochs or config.train.epochs
        return Oracle(max_epochs=epochs, factor=3, **common)
    return Oracle(max_trials=tune.max_trials, **common)


class _FtkTrials:
    """Tuner behaviour shared by every algorithm: no per-trial weight files (except for
    Hyperband, which continues trials from them), and a record of each trial's time, memory
    and worker next to KerasTuner's `trial.json`."""

    def _populate_initial_space(self):
        # The space is declared in full from the config: KerasTuner's default would also
        # build the model once here, to discover conditional hyperparameters ftk has none of.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial, *args, **kwargs):
        hyperband = isinstance(self.oracle, keras_tuner.oracles.HyperbandOracle)
        if self._ftk_path == "full":  # in its own process: see ftk.tuning.trial
            from ftk.tuning.trial import run_isolated

            self.hypermodel.trial_config(trial.hyperparameters)  # an invalid mix fails here
            values = trial.hyperparameters.values
            parent = values.get("tuner/trial_id")
            history = run_isolated(
                Path(self.project_dir),
                trial.trial_id,
                epochs=values.get("tuner/epochs") if hyperband else None,
                initial_epoch=values.get("tuner/initial_epoch", 0) if hyperband else 0,
                load=self._get_checkpoint_fname(parent) if parent else None,
                save=self._get_checkpoint_fname(trial.trial_id) if hyperband else None,
                verbose=self._ftk_verbose,
            )
            self._ftk_trial_peak = history.ftk_peak_rss_mb
            return history
        if hyperband:
            return super().run_trial(trial, *args, **kwargs)
        from keras_tuner.src.engine.tuner_utils import TunerCallback

        reporter = TunerCallback(self, trial)
        callbacks = [*kwargs.pop("callbacks", []), reporter]
        return self._build_and_fit_model(trial, *args, callbacks=callbacks, **kwargs)

    def _build_hypermodel(self, hp):
        model = keras_tuner.Tuner._build_hypermodel(self, hp)
        if "tuner/trial_id" in hp.values:  # Hyperband continues an earlier trial
            from ftk.training.fit import load_weights

            load_weights(model, self._get_checkpoint_fname(hp.values["tuner/trial_id"]))
        return model

    def on_trial_begin(self, trial):
        self._started = time.monotonic()
        self._ftk_trial_peak = None
        logger.info(
            "Trial %d of %s",
            trial_number(trial.trial_id),
            getattr(self, "_ftk_max_trials", "?"),
        )
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        seconds = time.monotonic() - self._started
        super().on_trial_end(trial)
        gc.collect()
        current, peak = memory_mb()
        write_json(
            Path(self.get_trial_dir(trial.trial_id)) / TRIAL_FILE,
            {
                "seconds": round(seconds, 2),
                "rss_mb": current,
                "peak_rss_mb": peak,
                "trial_peak_rss_mb": self._ftk_trial_peak,
                "worker": self.tuner_id,
                "path": self._ftk_path,
            },
        )
        done = self.oracle.get_trial(trial.trial_id)
        score = "failed" if done.score is None else f"{done.score:.4f}"
        number = trial_number(trial.trial_id)
        logger.info(
            "Trial %d: %s = %s in %.1f s (memory %.0f MB, peak %.0f MB)",
            number,
            self.oracle.objective.name,
            score,
            seconds,
            current,
            peak,
        )
        if done.status in ("FAILED", "INVALID") and done.message:
            logger.warning("Trial %d failed: %s", number, last_line(done.message))


class Tuner(_FtkTrials, keras_tuner.Tuner):
    pass


class HyperbandTuner(_FtkTrials, keras_tuner.Hyperband):
    def __init__(self, oracle, hypermodel, **kwargs):
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


def last_line(message: str | None) -> str | None:
    """The last line of a trial's message (KerasTuner stores the whole traceback)."""
    lines = (message or "").strip().splitlines()
    return lines[-1] if lines else None


def make_tuner(config: Config, space: dict, hypermodel, directory: Path, path: str, verbose=2):
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    oracle = _oracle(config, space, objective(config), hp)
    cls = HyperbandTuner if config.tune.algorithm == "hyperband" else Tuner
    tuner = cls(
        oracle,
        hypermodel,
        directory=str(directory.parent),
        project_name=directory.name,
        overwrite=False,
    )
    tuner._ftk_path = path
    tuner._ftk_verbose = verbose
    tuner._ftk_max_trials = config.tune.max_trials
    return tuner


def prepare(config: Config, load_data=None, features: bool = True):
    """Check the space and the search directory, load the data and the preset, and (for a
    head-only search) cache the backbone's features. Returns what `run_search` needs."""
    from ftk.runs.model import load_task

    space = search_space(config)
    check_space(config, space)
    directory = tune_dir(config)
    check_same_search(config, directory)
    task, splits, info = load_task(config, load_data)
    if not len(splits.validation):
        raise ConfigError(
            f"tune.objective={config.tune.objective!r} is measured on the validation split, and "
            "this data has none. Set data.validation_split > 0 or data.validation_path."
        )
    cached, why = uses_cached_features(config, space)
    logger.info(
        "Search %s: %s (%s), up to %d trials%s; %s",
        directory,
        config.tune.algorithm,
        ", ".join(space),
        config.tune.max_trials,
        f" or {config.tune.max_minutes:g} minutes" if config.tune.max_minutes else "",
        f"cached features: {why}" if cached else f"full trials, each in its own process ({why})",
    )
    prepared = {
        "space": space,
        "directory": directory,
        "task": task,
        "splits": splits,
        "info": info,
        "cached": cached,
    }
    if not cached and role() in (None, "chief"):  # what trial processes read; written once
        from ftk.tuning.trial import write_inputs

        write_inputs(directory, config, splits)
    if cached and features:
        from ftk.tuning.hypermodels import cache_features

        prepared["features"], prepared["head"] = cache_features(
            config, task, info, splits, directory / "features"
        )
    return prepared


def run_search(config: Config, prepared: dict, verbose="auto") -> None:
    """Run the trials this process owns (all of them, or a distributed role's share)."""
    from ftk.tuning.hypermodels import HeadHyperModel, _SpaceHyperModel

    space, directory = prepared["space"], prepared["directory"]
    quiet = verbose in (0, 2)  # `--quiet` runs fit with verbose=2: a search then prints nothing
    fit_verbose = 0 if quiet else 2
    path = "cached" if prepared["cached"] else "full"
    if role() == "chief":  # serves the oracle; trains nothing
        hypermodel = _SpaceHyperModel(config, space)
    elif prepared["cached"]:
        hypermodel = HeadHyperModel(
            config, space, prepared["features"], prepared["head"], fit_verbose
        )
    else:  # each trial builds a RecipeHyperModel in its own process (ftk.tuning.trial)
        hypermodel = _SpaceHyperModel(config, space)
    tuner = make_tuner(config, space, hypermodel, directory, path, fit_verbose)
    try:
        tuner.search(verbose=0 if quiet else 1)
    except RuntimeError as e:
        if "consecutive failures" not in str(e):
            raise
        failed = [t for t in tuner.oracle.trials.values() if t.status == "FAILED" and t.message]
        reason = last_line(failed[-1].message) if failed else "see the log above"
        raise FtkError(
            f"The search stopped: {tuner.oracle.max_consecutive_failed_trials} trials in a row "
            f"failed. The last one: {reason}"
        ) from None
