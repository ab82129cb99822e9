"""`tracking.backend = "mlflow"`: a real local MLflow store (sqlite, the default URI), written by
runs on TensorFlow, JAX and PyTorch, read back through MLflow's client."""

import json

import pytest
from helpers import train_on_backend, write_tiny_config

from ftk.config import load_config
from ftk.errors import ConfigError
from ftk.runs import pipeline as runner

BACKENDS = ("tensorflow", "jax", "torch")


@pytest.fixture(scope="module")
def tracked(tiny_preset, tiny_csv, tmp_path_factory):
    """One tiny run per backend, each in its own folder, tracked into the project's store."""
    project = tmp_path_factory.mktemp("tracked")
    config = write_tiny_config(project, tiny_preset, tiny_csv)
    runs = {
        backend: train_on_backend(
            config, project / backend, backend, 'tracking.backend="mlflow"', "export.preset=false"
        )
        for backend in BACKENDS
    }
    return project, runs


def test_each_backend_logs_params_metrics_artifacts_and_the_export(tracked):
    from mlflow import MlflowClient

    project, runs = tracked
    assert (project / "mlflow.db").is_file()
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")  # export.model_name
    assert experiment.artifact_location == (project / "mlartifacts").as_uri()
    found = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["ftk.backend"] for r in found) == sorted(BACKENDS)
    for run in found:
        backend = run.data.tags["ftk.backend"]
        run_dir = runs[backend]
        assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
        assert run.data.params["runtime.backend"] == backend
        assert run.data.params["train.epochs"] == "2"
        assert run.data.params["run.task"] == "text_classification"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"])
        losses = [m.value for m in client.get_metric_history(run.info.run_id, "loss")]
        assert len(losses) == 2  # one per epoch, from history.csv
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"report.md", "metrics.json", "config.toml", "summary.json"} <= artifacts
        summary = json.loads((run_dir / "summary.json").read_text())
        assert run.data.tags["ftk.export"] == summary["export"]["version_dir"]
        local = client.download_artifacts(run.info.run_id, "metrics.json", str(run_dir / "dl"))
        assert json.loads(open(local).read()) == metrics


def test_a_failed_run_is_marked_failed(tiny_preset, tiny_csv, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    def broken(state):
        raise RuntimeError("the training broke")

    monkeypatch.setattr(runner, "train", broken)
    config = load_config(
        write_tiny_config(tmp_path, tiny_preset, tiny_csv),
        ['tracking.backend="mlflow"', 'tracking.experiment="broken"'],
    )
    with pytest.raises(RuntimeError, match="the training broke"):
        runner.run(config, verbose=0)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("broken").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.params["tracking.experiment"] == "broken"


def test_without_mlflow_the_run_fails_before_its_directory(
    tiny_preset, tiny_csv, tmp_path, monkeypatch
):
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)  # as if not installed
    config = load_config(
        write_tiny_config(tmp_path, tiny_preset, tiny_csv), ['tracking.backend="mlflow"']
    )
    with pytest.raises(ConfigError, match=r'tracking.backend = "mlflow" needs MLflow'):
        runner.run(config, verbose=0)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
