"""`Task`: everything a kind of fine-tuning owns, behind one class the shared run calls.

A task is a `Task` subclass registered with `@register_task` (`ftk.tasks.registry`). The run
(`ftk.runs.pipeline.run`), the config loader, cross-validation, the search, the exports and
the report call only the methods below; nothing outside `ftk/tasks/` asks which task it is.

What a task owns, in the order a run uses it:

- **config**: `name` (the `run.task` value), `template` (its `templates/<template>/` folder),
  `only_keys` (keys no other task reads; setting them under another task is an error),
  `defaults` (its defaults where they differ from the schema's), `validate` (its checks);
- **data**: `load_data` (the default reader of `[data]`), `dataset` (batches for Keras),
  `fold_ids` (cross-validation folds);
- **model**: `build_model` on a resolved preset, `prepare_model` (seeding a new head),
  `freezes_batchnorm`, `loss` and `metrics` (what `compile` gets), `cpu_compute` (the kind of
  model, which decides whether bfloat16 pays on a CPU);
- **evaluation**: `predict` (the outputs the exports are verified against), `calibrate`
  (choices made on the validation split, such as thresholds), `evaluate` (the test
  metrics), `measure` (anything else, before and after training), `headline_metrics`
  (what a run's summary shows), `objectives` (what `train.monitor`, a search and WiSE-FT
  may select by, each with its direction), `epoch_metrics` (validation metrics that are no
  Keras compile metric, measured at each epoch's end when one is chosen);
- **export**: `signature` (the served `serving_default`), `write_export` (artifacts and the
  verification reference into a staging folder), `publishes_preset` and `preset_dataset` (the
  keras-hub preset, `ftk.export.preset`), `text_litert` and `tensor_head` (a raw-text LiteRT
  model, `ftk.export.litert_text`), `serving_inputs` (the warm-up requests' inputs),
  `verify_export` (every artifact against the Keras outputs), `measure_int8`;
- **report**: `report_sections`;
- **search**: `feature_cache_refusal` (why the cached-feature fast path does not apply).

Keras is imported inside methods only, so the registry (and the config loader that reads
`only_keys` and `defaults`) stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from ftk.config.schema import Config
    from ftk.data.splits import Examples, Splits

Fail = Callable[[str, str], None]  # fail("section.key", "what is expected") raises ConfigError


class Task:
    """The base of every task. Subclasses set the class attributes and override the methods
    that raise `NotImplementedError`."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    template: ClassVar[str] = ""
    only_keys: ClassVar[tuple[str, ...]] = ()
    # Keys of the schema this task does not read (setting them under it is an error).
    unused_keys: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # tune.objective values this task offers, each "max" or "min"; the first is its default.
    objectives: ClassVar[Mapping[str, str]] = {"val_loss": "min"}
    # The validation metric WiSE-FT's alpha is chosen by (a key of `objectives`, no `val_`)
    # when `train.monitor` is "auto".
    interpolation_metric: ClassVar[str] = "loss"
    # What `epoch_metrics` returns (names without `val_`; each `val_<name>` is in `objectives`).
    epoch_metric_names: ClassVar[tuple[str, ...]] = ()
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    metric_titles: ClassVar[Mapping[str, str]] = {}  # how a metric is written for people
    signature: ClassVar[Mapping[str, Any]] = {}
    # The kind of model, for `runtime.precision = "auto"` on CPUs (`ftk.runtime.cpu.MEASURED`
    # says where bfloat16 trains it faster): "text_encoder", "convnet", "decoder", ...
    cpu_compute: ClassVar[str] = "model"
    # Whether an export publishes `<version>/preset/` (a keras-hub task preset, checked on
    # load; `export.preset`): needs `preset_dataset`.
    publishes_preset: ClassVar[bool] = False
    # Whether `export.litert` builds a raw-text LiteRT model around the Keras model and
    # `tensor_head` (`ftk.export.litert_text`); image tasks write their own.
    text_litert: ClassVar[bool] = False

    # -- config ---------------------------------------------------------------------------
    def validate(self, config: Config, fail: Fail) -> None:
        """Checks of this task's own keys (the shared ones are checked by `ftk.config`)."""

    def direction(self, objective: str) -> str:
        """Whether `objective` (one of `objectives`, or its name without `val_`) is better
        higher ("max") or lower ("min")."""
        key = objective if objective in self.objectives else f"val_{objective}"
        return self.objectives[key]

    # -- data -----------------------------------------------------------------------------
    def load_data(self, config: Config) -> Splits:
        """The default reader of `[data]` (a project's `data.py` may replace it)."""
        raise NotImplementedError

    def dataset(self, examples: Examples, config: Config, training: bool):
        """A batched `tf.data.Dataset` of `(inputs, targets)`; shuffled (and augmented) only
        when `training`."""
        raise NotImplementedError

    def fold_ids(self, examples: Examples, k: int, seed: int) -> np.ndarray:
        """A fold id in `[0, k)` for each example (cross-validation); seeded, round-robin."""
        import numpy as np

        ids = np.arange(len(examples)) % k
        np.random.default_rng(seed).shuffle(ids)
        return ids

    # -- model ----------------------------------------------------------------------------
    def build_model(self, info, config: Config, label_names: list[str]):
        """The keras-hub task model on the resolved preset `info`
        (`ftk.presets.resolve.PresetInfo`)."""
        raise NotImplementedError

    def prepare_model(self, model, config: Config) -> None:
        """Called once on a freshly built model, before LoRA is enabled (e.g. seed a head)."""

    def freezes_batchnorm(self, config: Config) -> bool:
        """Whether BatchNorm layers stay in inference mode while the backbone trains."""
        return False

    def loss(self, config: Config):
        raise NotImplementedError

    def metrics(self, config: Config) -> list:
        return []

    # -- evaluation -----------------------------------------------------------------------
    def predict(self, model, dataset) -> np.ndarray:
        """Float32 outputs of `model` on the inputs of a `(inputs, targets)` dataset: what the
        test metrics are computed from and the exports are verified against."""
        raise NotImplementedError

    def calibrate(self, model, splits: Splits, config: Config) -> dict:
        """Choices made on the validation split after training, before the test evaluation
        (multi-label: a probability threshold per label). Saved in the run (`calibration.json`)
        and given to `evaluate` and `write_export`; `{}` = nothing to choose."""
        return {}

    def evaluate(
        self,
        examples: Examples,
        outputs: np.ndarray,
        label_names: list[str],
        calibration: Mapping[str, Any] | None = None,
    ) -> dict:
        """The test metrics (`metrics.json`) of `outputs` against the examples' targets, with
        the run's `calibration` (None in cross-validation folds, which have no validation
        split)."""
        raise NotImplementedError

    def measure(self, model, splits: Splits, config: Config, when: str) -> dict:
        """Measurements of `model` beyond the test metrics, taken `when` = `"before"` training
        (the pretrained model, just built) and `"after"` (the model that is evaluated and
        exported), recorded in `metrics.json` under that key; `{}` records nothing."""
        return {}

    def epoch_metrics(self, model, dataset, examples: Examples, config: Config) -> dict:
        """`{name: value}` for `epoch_metric_names`, measured on `examples` (the validation
        split) and `dataset` (its batches, as `dataset(examples, config, False)` makes them):
        metrics Keras cannot accumulate batch by batch. `ftk.training.epoch_metrics` writes
        them into each epoch's logs as `val_<name>` when `train.monitor` or `tune.objective`
        names one, and WiSE-FT scores α by them."""
        return {}

    def metric_title(self, name: str) -> str:
        """`name` as a person reads it ("macro_f1" -> "macro-F1")."""
        return self.metric_titles.get(name, name.replace("_", " "))

    def headline(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """`{"test_<name>": value}` for `headline_metrics`: the run summary's numbers."""
        return {f"test_{name}": metrics[name] for name in self.headline_metrics}

    # -- export ---------------------------------------------------------------------------
    def write_export(
        self,
        model,
        label_names: list[str],
        config: Config,
        staging: Path,
        inputs,
        outputs,
        calibration: Mapping[str, Any] | None = None,
    ) -> None:
        """The SavedModel (and ONNX, ...) plus the verification reference, in `staging`;
        `calibration` is what `calibrate` chose for the run."""
        raise NotImplementedError

    def tensor_head(self, outputs) -> dict:
        """TF ops: the Keras model's outputs for token ids -> the outputs of the exported
        tensor model (`onnx/model.onnx`'s), for the text artifacts built around the Keras model
        (`export.litert` on text)."""
        raise NotImplementedError

    def preset_dataset(self, inputs: list):
        """A `tf.data.Dataset` of `(x,)` batches of the Keras model's raw inputs for `inputs`
        (the verification reference's), for the keras-hub preset an export publishes when
        `publishes_preset` (`ftk.export.preset`)."""
        raise NotImplementedError

    def serving_inputs(self, version_dir: Path) -> dict:
        """The recorded verification inputs as `serving_default` takes them (for the TF
        Serving warm-up requests), e.g. `{"text": object array of bytes}`."""
        raise NotImplementedError

    def verify_export(self, version_dir: Path) -> dict:
        """Check every artifact in `version_dir` against the recorded Keras outputs, in its own
        runtime; returns `{"<artifact>_max_abs_diff": ..., "examples": n}` and raises
        `VerificationError` on a mismatch."""
        raise NotImplementedError

    def measure_int8(self, version_dir: Path, onnx_path: Path, test: dict) -> dict:
        """`export.onnx_int8`: quantize the ONNX model and measure what it costs on the test
        split (`test_split.json`)."""
        from ftk.errors import ConfigError

        raise ConfigError(f"`export.onnx_int8` is not available for run.task={self.name!r}.")

    def verification_summary(self, export: dict) -> str:
        """One line on how the SavedModel matched Keras (the run summary prints it)."""
        return f"max |diff| vs Keras {export['savedmodel_max_abs_diff']:.2e}"

    # -- report ---------------------------------------------------------------------------
    def report_sections(self, doc, run) -> None:
        """Add this task's sections (test metrics and what follows) to the run report.

        `doc` is an `ftk.report.document.Doc`; `run` an `ftk.report.document.RunFacts`."""

    # -- search ---------------------------------------------------------------------------
    def feature_cache_refusal(self, config: Config) -> str | None:
        """Why the search's cached-feature path cannot serve this config (None: it can)."""
        return f"the cached-feature path is not available for {self.name}"
