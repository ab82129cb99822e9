"""Experiment tracking behind one key, `tracking.backend` (`ftk.config.schema.TrackingConfig`).

With `mlflow`, every run is an MLflow run, opened before training (a run that fails is marked
`FAILED`) and completed when the run ends:

- params: the resolved config, one `section.key` each;
- metrics: every epoch of `history.csv` (all phases, step = the epoch's row), and the test
  metrics as `test_<name>`;
- artifacts: `report.md`, `report.html`, the report's plots, `metrics.json`, `config.toml`,
  `summary.json`;
- tags: the task, the Keras backend, the preset, the run directory and the published export.

The default store is local (`sqlite:///<project>/mlflow.db`, artifacts in
`<project>/mlartifacts/`); `mlflow ui --backend-store-uri sqlite:///mlflow.db` shows it.
Only MLflow's client is used (no global MLflow state), on the chief process only. A tracking
failure after training is logged, never raised: the run and its export stand.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from ftk.config import Config, to_dict
from ftk.errors import ConfigError
from ftk.files import read_json

logger = logging.getLogger("ftk")

DATABASE = "mlflow.db"
ARTIFACTS = "mlartifacts"
ARTIFACT_FILES = ("report.md", "report.html", "metrics.json", "config.toml", "summary.json")
PARAM_LIMIT = 6000  # MLflow's longest param value
BATCH = 100  # params per log_batch call (MLflow's limit); metrics: 1000


class Tracker:
    """`tracking.backend = "none"`: nothing is tracked."""

    run_id: str | None = None

    def fail(self) -> None:
        """The run stopped with an error."""

    def finish(self, run_dir: Path, summary: dict) -> None:
        """The run ended: log what it measured and wrote."""


def open_tracker(config: Config, run_dir: Path, backend: str) -> Tracker:
    """The tracker of `config.tracking`, its run opened for `run_dir` (trained on Keras'
    `backend`)."""
    if config.tracking.backend == "none":
        return Tracker()
    return MlflowTracker(config, Path(run_dir), backend)


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """`{"train": {"epochs": 3}}` -> `{"train.epochs": "3"}` (nested tables dotted too)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:PARAM_LIMIT]
    return out


def numbers(values: dict, prefix: str) -> dict[str, float]:
    """The finite numbers among `values`' top-level entries (booleans left out)."""
    return {
        f"{prefix}{k}": float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def history(path: Path) -> list[dict[str, float]]:
    """`history.csv`'s epochs (every phase's, a resumed run's repeated epoch once; the
    report's reader) as finite metric values, without the epoch number."""
    from ftk.report.document import read_history

    return [
        {k: v for k, v in row.items() if k != "epoch" and math.isfinite(v)}
        for row in read_history(path)
    ]


def check_installed(config: Config) -> None:
    """Fail now, naming the key, if `tracking.backend`'s package is missing."""
    if config.tracking.backend == "mlflow":
        _mlflow()


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            'tracking.backend = "mlflow" needs MLflow: pip install "ftk[tracking]" (or set '
            'tracking.backend = "none").'
        ) from None
    return mlflow


class MlflowTracker(Tracker):
    """One MLflow run per ftk run."""

    def __init__(self, config: Config, run_dir: Path, backend: str):
        mlflow = _mlflow()
        from mlflow.entities import Param

        project = Path(config.base_dir).resolve()
        self.uri = config.tracking.uri or f"sqlite:///{project / DATABASE}"
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        name = config.tracking.experiment or config.export.model_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = None if config.tracking.uri else (project / ARTIFACTS).as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        tags = {
            "ftk.task": config.run.task,
            "ftk.backend": backend,
            "ftk.preset": config.model.preset,
            "ftk.run_dir": str(run_dir.resolve()),
        }
        run = self.client.create_run(experiment_id, run_name=run_dir.name, tags=tags)
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in flatten(to_dict(config)).items()]
        for start in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[start : start + BATCH])
        logger.info("MLflow: run %s in experiment %r at %s", self.run_id, name, self.uri)

    def fail(self) -> None:
        try:
            self.client.set_terminated(self.run_id, "FAILED")
        except Exception as e:  # noqa: BLE001 (the run's own error is what matters)
            logger.warning("MLflow: could not mark run %s failed (%s)", self.run_id, e)

    def finish(self, run_dir: Path, summary: dict) -> None:
        try:
            self._log(Path(run_dir), summary)
            self.client.set_terminated(self.run_id, "FINISHED")
        except Exception as e:  # noqa: BLE001 (tracking must never cost a finished run)
            logger.warning(
                "MLflow: logging run %s failed (%s: %s); the run and its export stand.",
                self.run_id,
                type(e).__name__,
                e,
            )

    def _log(self, run_dir: Path, summary: dict) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(name, value, now, step)
            for step, row in enumerate(history(run_dir / "history.csv"))
            for name, value in row.items()
        ]
        tested = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
        metrics += [Metric(k, v, now, 0) for k, v in numbers(tested, "test_").items()]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])
        for name in ARTIFACT_FILES:
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        if (run_dir / "report").is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / "report"), "report")
        export = summary.get("export") or {}
        if export.get("version_dir"):
            self.client.set_tag(self.run_id, "ftk.export", export["version_dir"])
        logger.info("MLflow: logged %d metric values to run %s", len(metrics), self.run_id)
