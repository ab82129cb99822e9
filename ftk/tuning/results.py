"""The results of a search, read back from its directory (so the chief, a single process or the
launcher can write them alike):

- `trials.csv` and `trials.md`: one row per trial (values, objective, validation accuracy and
  loss at the best epoch, seconds, memory, worker, cached or full path; `trials.csv` also
  names the trial's directory). Trials are numbered from 1, as KerasTuner's "Trial 1 Complete"
  lines number them (`ftk.tuning.search.trial_number`: directory `trial_0` is trial 1);
- `trials.png`: the objective against the learning rate (or the first numeric key), coloured by
  the regularization key searched (weight decay, L2, dropout or label smoothing);
- `best.json` and `best_config.toml`: the best trial's values, and the whole config with them
  (`python train.py --config <dir>/best_config.toml` trains it).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from statistics import median

from ftk.config import Config, replace, to_toml, with_absolute_paths
from ftk.errors import ConfigError
from ftk.files import read_json, write_atomic, write_json
from ftk.tasks.registry import get_task
from ftk.tuning.space import by_section, values_of

logger = logging.getLogger("ftk")

REGULARIZATION_KEYS = ("train.weight_decay", "train.l2", "model.dropout", "train.label_smoothing")
BEST_CONFIG = "best_config.toml"


def read_trials(directory: Path, space: dict, metrics: list[str]) -> list[dict]:
    """Every trial of the search in `directory`, in trial order, with `metrics` (and their
    training counterparts) at each trial's best epoch. `trial` is the trial's number (from 1),
    `trial_dir` its directory's name."""
    from keras_tuner.engine.trial import Trial

    from ftk.tuning.search import TRIAL_FILE, last_line, trial_number

    records = []
    for path in sorted(Path(directory).glob("trial_*/trial.json")):
        trial = Trial.load(str(path))
        extra_path = path.parent / TRIAL_FILE
        extra = read_json(extra_path) if extra_path.exists() else {}
        measured = {}
        for name in [*metrics, *(m.removeprefix("val_") for m in metrics)]:
            if trial.metrics.exists(name):
                history = trial.metrics.get_history(name)
                at_best = [o for o in history if o.step == trial.best_step] or history[-1:]
                measured[name] = float(at_best[0].value[0]) if at_best else None
        values = trial.hyperparameters.values
        records.append(
            {
                "trial": trial_number(trial.trial_id),
                "trial_dir": path.parent.name,
                "status": trial.status,
                **values_of(values, space),
                "score": None if trial.score is None else float(trial.score),
                **measured,
                "best_epoch": None if trial.score is None else int(trial.best_step) + 1,
                "epochs": values.get("tuner/epochs"),
                "seconds": extra.get("seconds"),
                "peak_rss_mb": extra.get("peak_rss_mb"),
                "trial_peak_rss_mb": extra.get("trial_peak_rss_mb"),
                "worker": extra.get("worker"),
                "path": extra.get("path"),
                "message": last_line(trial.message),
            }
        )
    return sorted(records, key=lambda r: r["trial"])


def best_trial(records: list[dict], objective: str, task) -> dict:
    done = [r for r in records if r["status"] == "COMPLETED" and r["score"] is not None]
    if not done:
        raise ConfigError(
            "No trial of the search completed; see the trials table and the log for why."
        )
    sign = -1 if task.direction(objective) == "max" else 1
    return min(done, key=lambda r: (sign * r["score"], r["trial"]))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_tables(
    records: list[dict],
    space: dict,
    directory: Path,
    best: dict | None,
    baseline: dict | None = None,
    metrics: tuple[str, ...] = ("val_loss",),
) -> None:
    columns = [
        "trial",
        "status",
        *space,
        "score",
        *metrics,
        "best_epoch",
        "seconds",
        "peak_rss_mb",
        "trial_peak_rss_mb",
        "worker",
        "path",
    ]
    buffer = io.StringIO()
    csv_columns = [*columns, "trial_dir", "message"]
    writer = csv.DictWriter(buffer, csv_columns, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _cell(record.get(k)) for k in csv_columns})
    write_atomic(directory / "trials.csv", buffer.getvalue())
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for record in records:
        cells = [_cell(record.get(k)) for k in columns]
        cells[0] += " (best)" if record is best else ""
        cells[0] += " (baseline)" if record is baseline else ""
        lines.append("| " + " | ".join(cells) + " |")
    write_atomic(directory / "trials.md", "\n".join(lines) + "\n")


def baseline_trial(records: list[dict], config: Config) -> dict | None:
    """Trial 1, which trains the config as written (every algorithm but grid search)."""
    if config.tune.algorithm == "grid" or not records or records[0]["trial"] != 1:
        return None
    return records[0]


def plot_trials(
    records: list[dict],
    space: dict,
    objective: str,
    path: Path,
    best: dict | None = None,
    baseline: dict | None = None,
) -> str | None:
    """The objective of each completed trial against the learning rate (or the first numeric
    key searched), coloured by the searched regularization key; the best trial ringed in red,
    the untuned baseline in black. Returns the x key."""
    from ftk.plots import new_figure, save_png

    numeric = [k for k, s in space.items() if "min" in s or _all_numbers(s.get("values", []))]
    x_key = "train.learning_rate" if "train.learning_rate" in numeric else (numeric or [None])[0]
    color_key = next((k for k in REGULARIZATION_KEYS if k in numeric and k != x_key), None)
    done = [r for r in records if r["score"] is not None]
    fig = new_figure((8, 5), 100)
    ax = fig.add_subplot()
    if x_key is None or not done:
        ax.text(0.5, 0.5, "no completed trial with a numeric key", ha="center", va="center")
    else:
        xs = [r[x_key] for r in done]
        ys = [r["score"] for r in done]
        if color_key:
            points = ax.scatter(xs, ys, c=[r[color_key] for r in done], cmap="viridis", s=60)
            fig.colorbar(points, ax=ax, label=color_key)
        else:
            ax.scatter(xs, ys, s=60)
        for record, ring, label in ((best, "red", "best"), (baseline, "black", "untuned")):
            if record is not None and record["score"] is not None:
                ax.scatter(
                    [record[x_key]],
                    [record["score"]],
                    s=220,
                    facecolors="none",
                    edgecolors=ring,
                    linewidths=1.5,
                    label=f"{label} (trial {record['trial']})",
                )
        ax.legend(loc="best", fontsize=8)
        for record, x, y in zip(done, xs, ys, strict=True):
            ax.annotate(
                str(record["trial"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
        spec = space[x_key]
        if spec.get("log") or (len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 100):
            ax.set_xscale("log")
        ax.set_xlabel(x_key)
    ax.set_ylabel(objective)
    ax.set_title(f"{len(done)} completed trial(s); labels are trial numbers")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
    return x_key


def _all_numbers(values: list) -> bool:
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )


def best_config(config: Config, values: dict) -> Config:
    """The run's config with the best values and tuning off; paths made absolute."""
    sections = by_section(values)
    sections["tune"]["enabled"] = False
    return with_absolute_paths(replace(config, **sections))


def write_results(config: Config, space: dict, directory: Path) -> dict:
    """Tables, plot, `best.json` and `best_config.toml` for the search in `directory`."""
    objective = config.tune.objective
    task = get_task(config.run.task)
    metrics = tuple(task.objectives)
    records = read_trials(directory, space, list(metrics))
    baseline = baseline_trial(records, config)
    try:
        best = best_trial(records, objective, task)
    except ConfigError:
        write_tables(records, space, directory, None, baseline, metrics)
        raise
    write_tables(records, space, directory, best, baseline, metrics)
    plot_trials(records, space, objective, directory / "trials.png", best, baseline)
    values = {key: best[key] for key in space}
    tuned = best_config(config, values)
    write_atomic(directory / BEST_CONFIG, to_toml(tuned))
    seconds = [r["seconds"] for r in records if r["seconds"]]
    summary = {
        "directory": str(directory),
        "objective": objective,
        "trials": len(records),
        "completed": sum(r["status"] == "COMPLETED" for r in records),
        "best": {"trial": best["trial"], "score": best["score"], "values": values},
        "baseline": None
        if baseline is None
        else {"trial": baseline["trial"], "score": baseline["score"]},
        "best_config": str(directory / BEST_CONFIG),
        "table": str(directory / "trials.md"),
        "plot": str(directory / "trials.png"),
        "median_trial_seconds": median(seconds) if seconds else None,
    }
    write_json(directory / "best.json", summary)
    return summary
