"""One full-path trial in its own process: `python -m ftk.tuning.trial <search dir> <trial id>`.

TensorFlow keeps memory of every model a process has trained: after `fit`, about the size of
the model's weights stays allocated in the runtime even once the Python objects are gone and
`keras.backend.clear_session()` has run (tensorflow/tensorflow#61791, keras-team/keras#17458;
measured here with Keras 3.15 / TF 2.21: +130 MB per MiniLM-L6 trial, and +64 MB per fit of a
plain Dense model with 64 MB of frozen weights). So a search that builds and trains the
backbone in every trial runs each trial in a fresh process, and the search process stays flat.
Head-only trials on cached features train a small head in-process.

The search process writes what a trial needs once (`write_inputs`): the resolved config (paths
made absolute) and the training and validation examples as JSON. The trial process reads them,
takes its values from KerasTuner's `trial.json`, builds and trains the model with
`RecipeHyperModel` (the same code as an in-process trial), and writes `history.json`.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from ftk.errors import FtkError

logger = logging.getLogger("ftk")

INPUTS = "trial_inputs"
HISTORY = "history.json"
LOG = "trial.log"


def write_inputs(directory: Path, config, splits) -> None:
    """The config and the examples a trial process reads (written atomically)."""
    from ftk.config import to_toml, with_absolute_paths
    from ftk.files import write_atomic, write_json

    folder = Path(directory) / INPUTS
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "config.toml", to_toml(with_absolute_paths(config)))
    write_json(
        folder / "data.json",
        {
            "label_names": splits.label_names,
            "fingerprint": splits.fingerprint,
            **{name: _examples_json(getattr(splits, name)) for name in ("train", "validation")},
        },
    )


def run_isolated(
    directory: Path,
    trial_id: str,
    *,
    epochs: int | None,
    initial_epoch: int,
    load: str | None,
    save: str | None,
    verbose,
):
    """Run the trial in a child process; returns a Keras `History` of its epochs."""
    import keras

    trial_dir = Path(directory) / f"trial_{trial_id}"
    command = [sys.executable, "-m", "ftk.tuning.trial", str(directory), str(trial_id)]
    command += ["--initial-epoch", str(initial_epoch), "--verbose", str(verbose)]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if load:
        command += ["--load", load]
    if save:
        command += ["--save", save]
    (trial_dir / HISTORY).unlink(missing_ok=True)
    with (trial_dir / LOG).open("ab") as log:
        done = subprocess.run(command, stdout=None if verbose else log, stderr=log, check=False)
    if done.returncode != 0:
        lines = (trial_dir / LOG).read_text(errors="replace").strip().splitlines()
        raise RuntimeError(
            f"The trial process exited with code {done.returncode}: "
            f"{lines[-1] if lines else 'no output'} (log: {trial_dir / LOG})"
        )
    result = json.loads((trial_dir / HISTORY).read_text())
    history = keras.callbacks.History()
    history.history = result["history"]
    history.ftk_peak_rss_mb = result["peak_rss_mb"]
    return history


def _examples_json(examples) -> dict:
    """The fields of an `Examples` (or a task's subclass of it, e.g. conversations), and its
    class, as JSON."""
    import dataclasses

    fields = {f.name: getattr(examples, f.name) for f in dataclasses.fields(examples)}
    fields["labels"] = fields["labels"].astype(int).tolist()
    kind = type(examples)
    return {"class": f"{kind.__module__}:{kind.__qualname__}", **fields}


def _examples(part: dict):
    """`_examples_json` read back; the class must be ftk's own."""
    import importlib

    import numpy as np

    module, _, name = part.pop("class", "ftk.data.splits:Examples").partition(":")
    if module != "ftk" and not module.startswith("ftk."):
        raise ValueError(f"Refusing to build examples of class {module}:{name}")
    kind = getattr(importlib.import_module(module), name)
    return kind(**{**part, "labels": np.asarray(part["labels"], np.int32)})


def main(argv: list[str] | None = None) -> int:
    import argparse
    from types import SimpleNamespace

    parser = argparse.ArgumentParser(prog="python -m ftk.tuning.trial")
    parser.add_argument("directory", type=Path)
    parser.add_argument("trial_id")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--initial-epoch", type=int, default=0)
    parser.add_argument("--load")
    parser.add_argument("--save")
    parser.add_argument("--verbose", default="2")
    args = parser.parse_args(argv)

    from ftk.config import load_config
    from ftk.runtime.backend import set_backend

    config = load_config(args.directory / INPUTS / "config.toml")
    set_backend(config.runtime.backend)  # before keras is imported
    import keras_tuner

    from ftk.files import write_json
    from ftk.presets.resolve import resolve_preset
    from ftk.tasks import get_task
    from ftk.tuning.hypermodels import RecipeHyperModel
    from ftk.tuning.measure import memory_mb, objective
    from ftk.tuning.space import declare, search_space

    data = json.loads((args.directory / INPUTS / "data.json").read_text())
    splits = SimpleNamespace(
        train=_examples(data["train"]),
        validation=_examples(data["validation"]),
        label_names=data["label_names"],
    )
    space = search_space(config)
    trial = json.loads((args.directory / f"trial_{args.trial_id}" / "trial.json").read_text())
    hp = keras_tuner.HyperParameters()
    declare(hp, space)
    hp.values.update(trial["hyperparameters"]["values"])
    task = get_task(config.run.task)
    info = resolve_preset(config.model.preset, config.base_dir)
    verbose = int(args.verbose) if args.verbose.isdigit() else args.verbose
    hypermodel = RecipeHyperModel(config, space, task, info, splits, verbose)
    model = hypermodel.build(hp)
    callbacks = []
    if args.load:  # Hyperband continues an earlier trial from its best epoch
        from ftk.training.fit import load_weights

        load_weights(model, args.load)
    if args.save:
        from keras_tuner.src.engine.tuner_utils import SaveBestEpoch

        callbacks.append(SaveBestEpoch(objective(config), args.save))
    history = hypermodel.fit(
        hp, model, callbacks=callbacks, epochs=args.epochs, initial_epoch=args.initial_epoch
    )
    write_json(
        args.directory / f"trial_{args.trial_id}" / HISTORY,
        {
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "peak_rss_mb": memory_mb()[1],
        },
    )
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="ftk: %(message)s")
    try:
        sys.exit(main())
    except FtkError as e:
        print(f"ftk: error: {e}", file=sys.stderr)
        sys.exit(2)
