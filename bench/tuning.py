"""Row 6: seconds per trial of a head-only search with cached features against full forward
passes, the same grid on both paths (`tune.cache_features = true / false`), through ftk's own
`tune(config, search_only=True)` on the baked text project.

Per-trial seconds are read back from each trial's `ftk_trial.json` (what ftk records: from the
trial's start to its end in the search process; a full trial includes its own process's start).
The one-time cost of the cached path (the backbone over the training and validation examples)
is the search's wall time minus its trials.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.common import WORK, emit, log, set_backend, text_config

GRID = "[1e-3, 1e-2, 3e-2, 1e-1]"


def search(path: str, run_dir: Path, args) -> tuple[list[dict], float]:
    from ftk.tuning.command import tune

    overrides = [
        f"run.run_dir={run_dir}",
        "model.trainable=head",
        "export.onnx=false",
        f"data.max_train_examples={args.train_examples}",
        f"data.validation_split={args.validation_split}",
        "tune.algorithm=grid",
        f'tune.space={{"train.learning_rate" = {GRID}}}',
        f"tune.max_trials={args.trials}",
        f"tune.epochs={args.epochs}",
        f"tune.cache_features={'true' if path == 'cached' else 'false'}",
        f"tune.name={path}",
    ]
    config = text_config("tensorflow", overrides)
    began = time.perf_counter()
    result = tune(config, search_only=True, verbose=0)["search"]
    wall = time.perf_counter() - began
    directory = Path(result["directory"])
    trials = []
    for trial_file in sorted(directory.glob("trial_*/ftk_trial.json")):
        record = json.loads(trial_file.read_text())
        trial = json.loads((trial_file.parent / "trial.json").read_text())
        trials.append(
            {
                "trial": trial_file.parent.name,
                "seconds": record["seconds"],
                "path": record["path"],
                "learning_rate": trial["hyperparameters"]["values"].get("train.learning_rate"),
                "score": trial.get("score"),
            }
        )
    return trials, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-examples", type=int, default=160)
    parser.add_argument("--validation-split", type=float, default=0.05)
    args = parser.parse_args()
    set_backend("tensorflow")
    run_dir = WORK / "tune" / time.strftime("%Y%m%d-%H%M%S")
    walls = {}
    for path in ("cached", "full"):
        log(f"search on the {path} path")
        trials, walls[path] = search(path, run_dir, args)
        for t in trials:
            if t["path"] != path:
                raise RuntimeError(f"{t['trial']} ran on the {t['path']} path, not {path}")
        for i, t in enumerate(trials):
            emit(rep=i, **t)
        emit(summary=True, path=path, wall_s=walls[path], trials=len(trials))
    emit(summary=True, run_dir=str(run_dir))


if __name__ == "__main__":
    main()
