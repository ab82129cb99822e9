"""Fine-tuning recipes: the phases a run trains in, and running them with crash-resume.

`recipe.name` picks the recipe (`train.epochs` counts every epoch of every phase):

- `"single"`: one phase, `model.trainable` at `train.learning_rate`.
- `"two_phase"` (default): the head alone for `recipe.head_epochs` at
  `recipe.head_learning_rate` (backbone frozen), then `model.trainable` (all, the top k
  blocks, or LoRA adapters) at `train.learning_rate` for the remaining epochs.
- `"gradual"` (ULMFiT's gradual unfreezing): the head alone for `recipe.head_epochs`, then one
  more block every `recipe.unfreeze_every` epochs, from the top, until `model.trainable` is
  reached (`"all"` unfreezes the embeddings last).

Each phase recompiles the model (a fresh optimizer for the new set of trainable weights) with
the learning-rate schedule `train.schedule` over that phase's steps, and the per-group rate
multipliers `recipe.lr_*` (`ftk.training.optimizers`).

A finished phase leaves `phases/<i>-<name>.weights.h5`; `--resume` skips finished phases and
continues the interrupted one from its last epoch (`backup/<i>-<name>/`).

Example:

>>> plan_phases(config, num_blocks=6)
[Phase(name='head', trainable='head', epochs=1, learning_rate=0.01),
 Phase(name='finetune', trainable='all', epochs=2, learning_rate=5e-05)]
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ftk.config import Config
from ftk.errors import ConfigError
from ftk.runs.files import RunFiles
from ftk.tasks.registry import get_task

logger = logging.getLogger("ftk")

LORA = "lora"


@dataclass(frozen=True)
class Phase:
    """One `fit` call: which weights train (a `model.trainable` policy, or `"lora"`), for how
    many epochs, at what peak learning rate."""

    name: str
    trainable: str
    epochs: int
    learning_rate: float

    @property
    def trains_backbone(self) -> bool:
        return self.trainable != "head"


def _finetune_trainable(config: Config) -> str:
    return LORA if config.model.lora_rank else config.model.trainable


def plan_phases(config: Config, num_blocks: int) -> list[Phase]:
    """The phases of `config`'s recipe for a backbone with `num_blocks` blocks."""
    train, recipe = config.train, config.recipe
    target = _finetune_trainable(config)
    finetune = Phase("finetune", target, train.epochs, train.learning_rate)
    if recipe.name == "single" or target == "head" or recipe.head_epochs == 0:
        return [finetune]
    head = Phase("head", "head", recipe.head_epochs, recipe.head_learning_rate)
    remaining = train.epochs - recipe.head_epochs
    if recipe.name == "two_phase":
        return [head, Phase("finetune", target, remaining, train.learning_rate)]
    # gradual: last_n:1, last_n:2, ... up to the target (all = every block, then the embeddings).
    if num_blocks < 1:
        raise ConfigError(
            "`recipe.name='gradual'` unfreezes the backbone block by block, but ftk finds no "
            "blocks in this backbone. Use recipe.name='two_phase'."
        )
    stages = [f"last_n:{k}" for k in range(1, num_blocks + 1)] + ["all"]
    if target.startswith("last_n:"):
        stages = stages[: int(target.split(":")[1])]
    phases = [head]
    for i, trainable in enumerate(stages):
        last = i == len(stages) - 1
        epochs = remaining if last else min(recipe.unfreeze_every, remaining)
        if epochs <= 0:
            break
        phases.append(Phase(f"unfreeze{i + 1}", trainable, epochs, train.learning_rate))
        remaining -= epochs
    if phases[-1].trainable != stages[-1]:
        logger.warning(
            "recipe 'gradual' reaches only %s within train.epochs=%d (target %s); raise "
            "train.epochs or lower recipe.unfreeze_every.",
            phases[-1].trainable,
            train.epochs,
            target,
        )
    if remaining > 0:  # the last stage was reached early: it keeps training
        last = phases[-1]
        phases[-1] = Phase(last.name, last.trainable, last.epochs + remaining, last.learning_rate)
    return phases


def steps_per_epoch(config: Config, num_train: int) -> int:
    return config.train.steps_per_epoch or max(1, math.ceil(num_train / config.train.batch_size))


def phase_schedule(config: Config, phase: Phase, steps: int):
    """The learning rate (float or Keras schedule) of a phase `steps` optimizer steps long."""
    from ftk.training.schedules import learning_rate_schedule

    train = config.train
    warmup = train.warmup_steps or round(train.warmup_epochs * steps / phase.epochs)
    if warmup and warmup >= steps:
        raise ConfigError(
            f"The warmup ({warmup} steps) is as long as the {phase.name!r} phase ({steps} steps: "
            f"{phase.epochs} epoch(s)). Lower train.warmup_steps / train.warmup_epochs."
        )
    return learning_rate_schedule(
        train.schedule, phase.learning_rate, steps, warmup, train.decay_to
    )


def set_trainable(model, trainable: str, config: Config) -> dict[str, int]:
    """Apply a phase's `trainable` (a policy, or `"lora"`); returns parameter counts."""
    from ftk.models.trainable import TrainablePolicy, apply_trainable_policy, count_parameters

    if trainable == LORA:
        from ftk.models.lora import lora_trainable

        lora_trainable(model)
        return count_parameters(model)
    freeze_batchnorm = get_task(config.run.task).freezes_batchnorm(config)
    return apply_trainable_policy(model, TrainablePolicy.parse(trainable), freeze_batchnorm)


def compile_phase(
    model, config: Config, phase: Phase, steps: int, learning_rate=None
) -> dict[str, int]:
    """Set the phase's trainable weights, then compile (Keras reads the flags at compile).

    `learning_rate` (a float or schedule) replaces the phase's `train.schedule` (the LR finder
    passes its sweep)."""
    from ftk.training.fit import compile_model
    from ftk.training.optimizers import discriminative_multipliers

    counts = set_trainable(model, phase.trainable, config)
    recipe = config.recipe
    rates = {g: getattr(recipe, f"lr_{g}") for g in ("embeddings", "lower", "upper", "head")}
    multipliers = (
        discriminative_multipliers(model, rates) if any(r != 1.0 for r in rates.values()) else None
    )
    if learning_rate is None:
        learning_rate = phase_schedule(config, phase, steps)
    task = get_task(config.run.task)
    compile_model(
        model, config.train, task.loss(config), task.metrics(config), learning_rate, multipliers
    )
    return counts


def _epochs_left(backup: Path, first: int, last: int) -> str:
    """`epochs 1-3`, or for a resumed phase the epochs that remain (BackupAndRestore's state)."""
    try:
        done = int(json.loads((backup / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        done = first - 1
    if done < first or done >= last:
        return f"epochs {first}-{last}"
    return f"epochs {first}-{last}, resumed after epoch {done}: epochs {done + 1}-{last} remain"


def _phase_file(run_dir: Path, index: int, phase: Phase) -> Path:
    return RunFiles(run_dir).phases / f"{index}-{phase.name}.weights.h5"


def _log_phase(run_dir: Path, index: int, phases: list, counts: dict, first: int, last: int):
    phase = phases[index]
    logger.info(
        "Phase %d/%d (%s): %s trainable of %s parameters, %s",
        index + 1,
        len(phases),
        phase.name,
        f"{counts['trainable']:,}",
        f"{counts['total']:,}",
        _epochs_left(run_dir / f"backup/{index}-{phase.name}", first, last),
    )


def _watching(config: Config, validation_ds, validation_examples) -> dict:
    """`fit`'s `monitor` (`train.monitor`) and the callbacks measuring the task's epoch
    metrics on `validation_examples` (when one is monitored or the search's objective)."""
    from ftk.training.epoch_metrics import epoch_metric_callbacks
    from ftk.training.monitor import monitor

    has_validation = validation_ds is not None
    examples = validation_examples if has_validation else None
    return {
        "monitor": monitor(config, has_validation),
        "first_callbacks": epoch_metric_callbacks(get_task(config.run.task), config, examples),
    }


def train_phases(
    model,
    train_ds,
    validation_ds,
    run_dir: Path,
    config: Config,
    num_train: int,
    verbose="auto",
    validation_examples=None,
) -> dict:
    """Run every phase of the recipe; ends with the run's best checkpoint (by `train.monitor`)
    loaded.

    Returns `{"phases": [...], "parameters": counts of the last phase, "epochs_trained": n}`.
    With `recipe.interpolate`, the weights fine-tuning starts from are saved first
    (`RunFiles.pretrained`). `validation_examples` (those of `validation_ds`) are what the
    task's epoch metrics are measured on, when `train.monitor` or `tune.objective` names one.
    """
    from ftk.models.trainable import TrainablePolicy, check_policy
    from ftk.training.fit import fit, load_best_checkpoint, load_weights, save_weights

    # Before any phase trains: a `last_n` beyond the backbone fails now, not after the head.
    blocks = check_policy(TrainablePolicy.parse(config.model.trainable), model.backbone)
    phases = plan_phases(config, len(blocks))
    steps = steps_per_epoch(config, num_train)
    RunFiles(run_dir).phases.mkdir(parents=True, exist_ok=True)
    logger.info(
        "Recipe %s: %s",
        config.recipe.name,
        ", then ".join(
            f"{p.trainable} for {p.epochs} epoch(s) at {p.learning_rate:g}" for p in phases
        ),
    )
    watching = _watching(config, validation_ds, validation_examples)
    done_epochs, trained, counts, report = 0, 0, {}, []
    for index, phase in enumerate(phases):
        path = _phase_file(run_dir, index, phase)
        end = done_epochs + phase.epochs
        if path.exists():  # finished before a crash: its end state is on disk
            counts = {}
            load_weights(model, path)
            logger.info("Phase %d (%s) already finished: loaded %s", index, phase.name, path)
        else:
            if phase.trains_backbone and config.recipe.interpolate:
                start = RunFiles(run_dir).pretrained
                if not start.exists():
                    save_weights(model, start)
            counts = compile_phase(model, config, phase, steps * phase.epochs)
            _log_phase(run_dir, index, phases, counts, done_epochs + 1, end)
            model._initial_epoch = None  # Keras never resets what BackupAndRestore set
            history = fit(
                model,
                train_ds,
                validation_ds,
                run_dir,
                config.train,
                verbose,
                initial_epoch=done_epochs,
                epochs=end,
                backup=f"backup/{index}-{phase.name}",
                load_best=False,
                **watching,
            )
            trained += len(history.history.get("loss", []))
            save_weights(model, path)
        report.append(
            {
                **asdict(phase),
                "first_epoch": done_epochs + 1,
                "last_epoch": end,
                "trainable_parameters": counts.get("trainable"),
            }
        )
        done_epochs = end
    if not counts:  # every phase was finished already (resumed after the last one)
        counts = set_trainable(model, phases[-1].trainable, config)
    load_best_checkpoint(model, run_dir, watching["monitor"])
    return {"phases": report, "parameters": counts, "epochs_trained": trained}
