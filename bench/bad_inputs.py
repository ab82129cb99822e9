"""Bad input, measured: every mistake in the table below is made as a user would make it, in
freshly baked projects, and the error it gives is recorded with how long it took.

    python -m bench.bad_inputs                   # every case: docs/results/<date>-bad-inputs.md
    python -m bench.bad_inputs --only 'data_*'   # some cases, by name or glob
    python -m bench.bad_inputs --list            # the case names

Set-up, in a temporary folder: a text-classification project (`ftk new`, CSV data of 60 rows
over 3 labels, the offline preset `minilm_l6`) and an image-classification project (36 small
PNGs in `<label>/` folders, `efficientnet_lite0` at 64 px), both checked to load cleanly, plus
the bad files each case needs. Each project's `config.toml` is made safe first (2 epochs of 1
step, no ONNX, exports into the temporary folder), so a case that wrongly starts training ends
soon and is caught by the checks below.

Each case is one subprocess (`python train.py ...` in a project, or an `ftk` verb) with its
arguments as a list, a time limit (60 s) and the wall time from start to exit. A case passes
when it:

- exits with 2;
- prints its error on exactly one line (`ftk: error: ...`, or argparse's `<prog>: error: ...`
  for a malformed command line: one such line, nothing after it), and no traceback;
- names the field or the file in its message (each case says which substring it expects);
- takes at most 10 s;
- leaves no new run directory (in either project's `runs/`), no export version and no
  project behind.

The results go to a Markdown table and, with every message in full, a JSON file next to it.
With `--only` (and no `--out`) they go to `build/bad_inputs/` instead, so a partial run never
replaces the full table.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results"
PARTIAL = REPO / "build" / "bad_inputs"
FTK = Path(sys.executable).parent / "ftk"
TIMEOUT_S = 60
LIMIT_S = 10.0
MESSAGE_CHARS = 200
LABELS = ("politics", "sport", "tech")
# An error line: `ftk: error: ...` (ftk's own), or argparse's `<prog>: error: ...` for a
# command line it cannot parse (`train.py: error:`, `ftk presets: error:`).
ERROR_RE = re.compile(r"^(?:ftk(?: [a-z-]+)?|train\.py): error: ")
VERSIONS = (
    "ftk",
    "keras",
    "keras-hub",
    "tensorflow",
    "tensorflow-text",
    "tensorflow-datasets",
    "cookiecutter",
    "pillow",
)


@dataclass(frozen=True)
class Case:
    """One mistake: what is wrong, the command (`train.py ...` or `ftk ...`), where it runs
    (`text`, `image`: that project's folder; `root`: the temporary folder), the substrings of
    which the error line must hold one (the field or the file), and the stage it should be
    caught in."""

    name: str
    wrong: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]
    where: str = "text"
    stage: str = "config"
    skip: str = ""  # a reason not to run it (shown in the table)


@dataclass
class Result:
    name: str
    wrong: str
    stage: str
    where: str
    command: str
    argv: list[str]
    expect: list[str]
    skipped: str = ""
    exit_code: int | str | None = None
    seconds: float | None = None
    error_line: str = ""
    error_lines: int = 0
    continued: list[str] = field(default_factory=list)
    other_lines: list[str] = field(default_factory=list)
    traceback: bool = False
    left_behind: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return not self.skipped and all(self.checks.values())

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, passed in self.checks.items() if not passed]


# --------------------------------------------------------------------------------------------
# The projects and the files the cases use
# --------------------------------------------------------------------------------------------


class Ctx:
    """Paths of one bench run (all under a fresh temporary folder `root`)."""

    def __init__(self, root: Path):
        self.root = root
        self.text = root / "bi_text"
        self.image = root / "bi_image"
        self.fx = root / "fixtures"
        self.models = root / "saved_models"
        self.new_out = root / "new_out"
        self.env = _env(root)


def _env(root: Path) -> dict[str, str]:
    """The environment of every subprocess: the user's, with cookiecutter's replay and clone
    folders kept inside `root`."""
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    config = root / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {root / 'cc-home' / 'cookiecutters'}\n"
        f"replay_dir: {root / 'cc-home' / 'replay'}\n"
    )
    env["COOKIECUTTER_CONFIG"] = str(config)
    return env


def _write_csv(path: Path, rows, header=("text", "label")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def _text_rows(n: int = 60) -> list[tuple[str, str]]:
    words = {
        "politics": "minister vote parliament election policy",
        "sport": "match goal team season league",
        "tech": "software chip phone network startup",
    }
    return [
        (f"Report {i}: the {words[label]} story, part {i * 7}.", label)
        for i in range(n)
        for label in [LABELS[i % 3]]
    ]


def _write_pngs(folder: Path, labels=LABELS, per_label: int = 12, size: int = 32) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, label in enumerate(labels):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            pixels[..., k] = 255  # one colour channel per class
            Image.fromarray(pixels, "RGB").save(folder / label / f"{i:03d}.png")


def _run_quiet(argv: list[str], cwd: Path, env: dict) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"set-up failed: {' '.join(argv)}\n{done.stdout}\n{done.stderr}")


def _make_safe(config: Path, export_dir: Path) -> None:
    """A case that wrongly starts training must end soon: 2 epochs of 1 step, no ONNX, a few
    verification examples, exports into the bench's folder."""
    from ftk.config.toml import update_config_file

    for key, value in (
        ("train.epochs", 2),
        ("train.steps_per_epoch", 1),
        ("export.export_dir", str(export_dir)),
        ("export.onnx", False),
        ("export.verify_examples", 4),
        ("tune.max_trials", 1),
    ):
        update_config_file(config, key, value)
    for backup in config.parent.glob(f"{config.name}.*.bak"):
        backup.unlink()


def bake_projects(ctx: Ctx) -> dict:
    """The two projects (as a user bakes them, with `ftk new`) and their valid data; returns
    what their data loads to (checked here, so each case fails for its own mistake only)."""
    _run_quiet(
        [
            str(FTK),
            "new",
            "text-classification",
            "-o",
            str(ctx.root),
            "--no-input",
            "--set",
            "project_name=BI Text",
            "--set",
            "format=csv",
            "--set",
            "path=data/train.csv",
        ],
        ctx.root,
        ctx.env,
    )
    _write_csv(ctx.text / "data" / "train.csv", _text_rows())
    _run_quiet(
        [
            str(FTK),
            "new",
            "image-classification",
            "-o",
            str(ctx.root),
            "--no-input",
            "--set",
            "project_name=BI Image",
            "--set",
            "path=images",
            "--set",
            "image_size=64",
        ],
        ctx.root,
        ctx.env,
    )
    _write_pngs(ctx.image / "images")
    ctx.models.mkdir()
    ctx.new_out.mkdir()
    for project in (ctx.text, ctx.image):
        _make_safe(project / "config.toml", ctx.models)
    return check_projects(ctx)


def check_projects(ctx: Ctx) -> dict:
    """Load both projects' config and data in this process (no Keras): they must be valid."""
    from ftk.config import load_config
    from ftk.errors import FtkError
    from ftk.presets.resolve import resolve_preset
    from ftk.tasks.registry import get_task

    loaded = {}
    for name, project in (("text", ctx.text), ("image", ctx.image)):
        config = load_config(project / "config.toml")
        splits = get_task(config.run.task).load_data(config)
        counts = {k: sum(v.values()) for k, v in splits.counts().items()}
        try:
            preset = f"resolves to {resolve_preset(config.model.preset, config.base_dir).source}"
        except FtkError as e:  # recorded: every case that gets as far as the preset sees it
            preset = f"**does not resolve**: {e}"
            print(f"warning: the {name} project's preset does not resolve: {e}", file=sys.stderr)
        loaded[name] = {
            "task": config.run.task,
            "preset": config.model.preset,
            "preset_status": preset,
            "data": config.data.path,
            "examples": counts,
            "labels": splits.label_names,
            "summary": (
                f"{config.run.task}, data.path={config.data.path!r}: {counts['train']} train / "
                f"{counts['validation']} validation / {counts['test']} test examples of "
                f"{', '.join(splits.label_names)} (loaded cleanly); model.preset="
                f"{config.model.preset!r} {preset}"
            ),
        }
    return loaded


def _fake_run(ctx: Ctx, name: str, kind: str, weights: bool) -> Path:
    """A run directory as `train.py` writes it before its first batch (resolved config.toml,
    run.json, labels.json), with `model.weights.h5` when `weights` (a run that finished
    training but not its export); `kind` is run.json's kind (`train`, `lr_find`)."""
    from ftk.config import load_config
    from ftk.files import write_json
    from ftk.runs.dirs import save_run_config
    from ftk.runs.files import RunFiles

    run_dir = ctx.fx / "runs" / name
    run_dir.mkdir(parents=True)
    config = load_config(ctx.text / "config.toml")
    save_run_config(run_dir, config, {"task": config.run.task, "kind": kind})
    files = RunFiles(run_dir)
    write_json(files.labels, list(LABELS))
    if weights:
        files.weights.write_bytes(b"")
    if kind == "lr_find":
        files.lr_find.write_text("{}\n")
    return run_dir


def write_fixtures(ctx: Ctx) -> None:
    """The bad files: configs, CSVs, folders, images, presets, run directories."""
    fx = ctx.fx
    rows = _text_rows()
    # Config files.
    configs = fx / "configs"
    configs.mkdir(parents=True)
    (configs / "broken.toml").write_text('[train]\nepochs = 2\nschedule = "cosine\n')
    (configs / "unknown_section.toml").write_text("[trainer]\nepochs = 2\n")
    (configs / "unknown_key.toml").write_text('[model]\npreset_name = "minilm_l6"\n')
    (configs / "not_a_table.toml").write_text("train = 3\n")
    latin1 = (ctx.text / "config.toml").read_text(encoding="utf-8")
    latin1 = latin1.replace("# Seed for", "# Graine (réglée) for", 1)
    (configs / "latin1.toml").write_bytes(latin1.encode("latin-1"))
    # Text data.
    text = fx / "text"
    text.mkdir()
    (text / "empty.csv").write_text("")
    (text / "header_only.csv").write_text("text,label\n")
    _write_csv(text / "no_text_column.csv", rows, header=("body", "label"))
    _write_csv(text / "single_label.csv", [(t, "sport") for t, _ in rows])
    _write_csv(text / "tiny.csv", rows[:3])
    _write_csv(
        text / "conflict.csv", [*rows, (rows[0][0], "tech" if rows[0][1] != "tech" else "sport")]
    )
    _write_csv(text / "empty_text.csv", [*rows[:30], ("   ", "sport"), *rows[30:]])
    _write_csv(text / "empty_label.csv", [*rows[:30], ("A story with no label.", " "), *rows[30:]])
    with (text / "short_row.csv").open("w", encoding="utf-8") as f:
        f.write("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows[:20]))
        f.write("a row with no label column\n")
    latin = "text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows)
    latin += '"Prices rose to \xa3300 in the caf\xe9.",tech\n'
    (text / "latin1.csv").write_bytes(latin.encode("latin-1"))
    _write_csv(text / "validation_unknown_label.csv", [("A weather story about rain.", "weather")])
    (text / "empty_dir").mkdir()
    folder = text / "latin1_folder"
    for i, (t, label) in enumerate(rows):
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{i:03d}.txt").write_text(t, encoding="utf-8")
    (folder / "tech" / "latin1.txt").write_bytes("Caf\xe9 prices".encode("latin-1"))
    (text / "tfds_empty_dir").mkdir()
    # Images.
    images = fx / "images"
    good = images / "good"
    _write_pngs(good)
    for name in ("corrupt", "truncated", "empty_class"):
        shutil.copytree(good, images / name)
    (images / "corrupt" / "sport" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    png = (good / "tech" / "000.png").read_bytes()
    (images / "truncated" / "tech" / "cut.png").write_bytes(png[: len(png) // 2])
    (images / "empty_class" / "weather").mkdir()
    (images / "empty_class" / "weather" / "notes.txt").write_text("to do: add pictures\n")
    (images / "no_classes").mkdir()
    _write_pngs(images / "single", labels=("sport",))
    listed = [(f"good/{label}/{i:03d}.png", label) for label in LABELS for i in range(12)]
    _write_csv(
        images / "missing_file.csv", [*listed, ("good/sport/999.png", "sport")], ("path", "label")
    )
    _write_csv(images / "no_path_column.csv", listed, ("file", "label"))
    # Presets.
    presets = fx / "presets"
    (presets / "no_config").mkdir(parents=True)
    (presets / "no_config" / "model.weights.h5").write_bytes(b"")
    (presets / "no_class_name").mkdir()
    (presets / "no_class_name" / "config.json").write_text('{"hidden_size": 384}\n')
    (presets / "bad_json").mkdir()
    (presets / "bad_json" / "config.json").write_text('{"class_name": "BertBackbone",\n')
    # Export destinations.
    (fx / "a_file").write_text("not a folder\n")
    (fx / "read_only").mkdir()
    os.chmod(fx / "read_only", 0o555)
    # Run directories.
    _fake_run(ctx, "trained_not_exported", "train", weights=True)
    _fake_run(ctx, "lr_find", "lr_find", weights=False)
    _fake_run(ctx, "no_weights", "train", weights=False)
    (fx / "not_a_run").mkdir()
    (fx / "not_a_run" / "notes.txt").write_text("hello\n")


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


def build_cases(ctx: Ctx) -> list[Case]:
    """Every case, in table order. `T` is `python train.py` in the text project, `I` in the
    image project, `F` an `ftk` verb in the temporary folder; `set_` lists `--set` values."""
    fx = str(ctx.fx)
    txt, img, runs = f"{fx}/text", f"{fx}/images", f"{fx}/runs"
    trained, not_a_run = f"{runs}/trained_not_exported", f"{fx}/not_a_run"
    root_skip = "running as root: chmod 555 does not stop root from writing"
    read_only_skip = root_skip if os.geteuid() == 0 else ""
    cases: list[Case] = []

    def add(stage, name, wrong, where, argv, expect, skip=""):
        expect = (expect,) if isinstance(expect, str) else tuple(expect)
        cases.append(Case(name, wrong, tuple(argv), expect, where, stage, skip))

    def T(*args):  # noqa: N802  (python train.py in the text project)
        return ("text", ["train.py", *args])

    def I(*args):  # noqa: E743, N802  (python train.py in the image project)
        return ("image", ["train.py", *args])

    def F(*args):  # noqa: N802  (an ftk verb, in the temporary folder)
        return ("root", ["ftk", *args])

    def set_(*values):
        return [a for v in values for a in ("--set", v)]

    # fmt: off
    table = [
        # -- The config file ---------------------------------------------------------------
        ("config", "config_missing", "--config names a file that does not exist",
         T("--config", "nope.toml"), "nope.toml"),
        ("config", "config_invalid_toml", "the config file is not TOML (an unclosed string)",
         T("--config", f"{fx}/configs/broken.toml"), "broken.toml"),
        ("config", "config_not_utf8", "the config file saved as Latin-1 (an accented comment)",
         T("--config", f"{fx}/configs/latin1.toml"), "latin1.toml"),
        ("config", "config_unknown_section", "the config file has a [trainer] section",
         T("--config", f"{fx}/configs/unknown_section.toml"), "trainer"),
        ("config", "config_unknown_key_file", "the config file has model.preset_name (a typo)",
         T("--config", f"{fx}/configs/unknown_key.toml"), "model.preset_name"),
        ("config", "config_section_not_table", "the config file has `train = 3`, not [train]",
         T("--config", f"{fx}/configs/not_a_table.toml"), "train"),
        ("config", "ftk_train_no_config", "`ftk train` outside a project (no ./config.toml)",
         F("train"), "config.toml"),
        # -- --set syntax and keys ---------------------------------------------------------
        ("config", "set_no_equals", "--set without '='",
         T("--set", "train.epochs"), "train.epochs"),
        ("config", "set_no_section", "--set of a key without its section",
         T(*set_("epochs=2")), "epochs=2"),
        ("config", "set_unknown_section", "--set into an unknown section",
         T(*set_("trainer.epochs=2")), "trainer"),
        ("config", "set_unknown_key", "train.epoch (a typo of train.epochs)",
         T(*set_("train.epoch=2")), "train.epoch"),
        ("config", "set_other_task_key", "an image key in a text project",
         T(*set_("model.image_size=96")), "model.image_size"),
        ("config", "set_unknown_task", "run.task names no task",
         T(*set_("run.task=translation")), "run.task"),
        # -- Types -------------------------------------------------------------------------
        ("config", "type_epochs_word", "train.epochs=two",
         T(*set_("train.epochs=two")), "train.epochs"),
        ("config", "type_epochs_float", "train.epochs=2.5",
         T(*set_("train.epochs=2.5")), "train.epochs"),
        ("config", "type_learning_rate_word", "train.learning_rate=fast",
         T(*set_("train.learning_rate=fast")), "train.learning_rate"),
        ("config", "type_onnx_yes", "export.onnx=yes (not a boolean)",
         T(*set_("export.onnx=yes")), "export.onnx"),
        ("config", "type_labels_string", "data.labels=sport (a string, not a list)",
         T(*set_("data.labels=sport")), "data.labels"),
    ]
    # One key out of its range or choices: (name, the --set value); the key must be named.
    for name, value in [
        ("train_epochs_zero", "train.epochs=0"),
        ("train_batch_size_negative", "train.batch_size=-1"),
        ("train_learning_rate_zero", "train.learning_rate=0"),
        ("train_learning_rate_big", "train.learning_rate=3"),
        ("train_weight_decay_negative", "train.weight_decay=-0.1"),
        ("train_label_smoothing_one", "train.label_smoothing=1"),
        ("train_schedule_bogus", "train.schedule=bogus"),
        ("data_validation_split_big", "data.validation_split=1.5"),
        ("data_max_train_negative", "data.max_train_examples=-1"),
        ("data_format_bogus", "data.format=parquet"),
        ("data_decode_errors_bogus", "data.decode_errors=ignore"),
        ("data_conflicting_bogus", "data.conflicting_labels=first"),
        ("data_path_empty", "data.path="),
        ("model_preset_empty", "model.preset="),
        ("model_trainable_bogus", "model.trainable=bogus"),
        ("model_trainable_last_n_zero", "model.trainable=last_n:0"),
        ("model_dropout_one", "model.dropout=1"),
        ("model_sequence_length_small", "model.sequence_length=4"),
        ("model_lora_rank_negative", "model.lora_rank=-4"),
        ("recipe_name_bogus", "recipe.name=bogus"),
        ("recipe_cv_folds_one", "recipe.cv_folds=1"),
        ("recipe_lr_head_big", "recipe.lr_head=11"),
        ("recipe_interpolation_points_one", "recipe.interpolation_points=1"),
        ("runtime_backend_bogus", "runtime.backend=bogus"),
        ("runtime_precision_bogus", "runtime.precision=float8"),
        ("runtime_cpu_devices_big", "runtime.cpu_devices=65"),
        ("run_seed_negative", "run.seed=-1"),
        ("run_report_mistakes_big", "run.report_mistakes=1000"),
        ("export_model_name_slash", "export.model_name=team/model"),
        ("export_tolerance_negative", "export.tolerance=-1e-4"),
        ("export_verify_examples_zero", "export.verify_examples=0"),
        ("tune_algorithm_bogus", "tune.algorithm=annealing"),
        ("tune_max_trials_zero", "tune.max_trials=0"),
        ("tune_objective_bogus", "tune.objective=f1"),
        ("tune_name_slash", "tune.name=../other"),
    ]:
        wrong = value if not value.endswith("=") else f"{value[:-1]} is empty"
        table.append(("config", name, wrong, T(*set_(value)), value.split("=")[0]))
    table += [
        ("config", "tune_space_not_searchable", "tune.space searches model.preset",
         T(*set_('tune.space={"model.preset" = ["minilm_l6", "bert_tiny_en_uncased"]}')),
         "model.preset"),
        ("config", "tune_space_min_above_max", "a tune.space range with min > max",
         T(*set_('tune.space={"train.learning_rate" = {min = 1e-3, max = 1e-5}}')),
         "train.learning_rate"),
        # -- Keys that contradict each other -----------------------------------------------
        ("config", "split_sum_too_big", "validation_split + test_split = 0.9",
         T(*set_("data.validation_split=0.4", "data.test_split=0.5")), "data.test_split"),
        ("config", "labels_single", "data.labels lists one name",
         T(*set_('data.labels=["sport"]')), "data.labels"),
        ("config", "labels_duplicate", "data.labels lists a name twice",
         T(*set_('data.labels=["sport", "tech", "sport"]')), "data.labels"),
        ("config", "distribution_backend_mismatch", "runtime.distribution=mirrored on torch",
         T(*set_("runtime.backend=torch", "runtime.distribution=mirrored")),
         "runtime.distribution"),
        ("config", "head_epochs_all_epochs", "recipe.head_epochs = train.epochs (two_phase)",
         T(*set_("recipe.head_epochs=2")), "recipe.head_epochs"),
        ("config", "warmup_steps_and_epochs", "train.warmup_steps and warmup_epochs both set",
         T(*set_("train.warmup_steps=10", "train.warmup_epochs=0.5")), "train.warmup_epochs"),
        ("config", "exponential_decay_to_zero", "train.schedule=exponential with decay_to=0",
         T(*set_("train.schedule=exponential")), "train.decay_to"),
        ("config", "l2_and_weight_decay", "train.l2 with train.weight_decay",
         T(*set_("train.l2=0.01")), "train.l2"),
        ("config", "lora_with_head", "model.lora_rank=8 with model.trainable=head",
         T(*set_("model.lora_rank=8", "model.trainable=head")), "model.trainable"),
        ("config", "lora_with_gradual", "model.lora_rank=8 with recipe.name=gradual",
         T(*set_("model.lora_rank=8", "recipe.name=gradual")), "recipe.name"),
        ("config", "interpolate_with_head", "recipe.interpolate with model.trainable=head",
         T(*set_("recipe.interpolate=true", "model.trainable=head")), "recipe.interpolate"),
        ("config", "keep_best_alpha_alone", "recipe.keep_best_alpha without interpolate",
         T(*set_("recipe.keep_best_alpha=true")), "recipe.keep_best_alpha"),
        ("config", "int8_without_onnx", "export.onnx_int8 with export.onnx=false",
         T(*set_("export.onnx_int8=true")), "export.onnx_int8"),
        # -- The command line --------------------------------------------------------------
        ("cli", "cli_apply_alone", "--apply without --lr-find or --tune",
         T("--apply"), "--apply"),
        ("cli", "cli_lr_find_and_tune", "--lr-find with --tune",
         T("--lr-find", "--tune"), "--lr-find"),
        ("cli", "cli_workers_without_tune", "--workers without --tune",
         T("--workers", "2"), "--workers"),
        ("cli", "cli_search_only_without_tune", "--search-only without --tune",
         T("--search-only"), "--search-only"),
        ("cli", "cli_tune_and_resume", "--tune with --resume",
         T("--tune", "--resume", trained), "--resume"),
        ("cli", "cli_unknown_argument", "an argument train.py does not take (--epochs)",
         T("--epochs", "3"), "--epochs"),
        ("cli", "cli_lr_find_bad_phase", "--lr-find with an unknown phase",
         T("--lr-find", "body"), "--lr-find"),
        ("cli", "cli_lr_find_steps_few", "--lr-find-steps 5 (fewer than 10)",
         T("--lr-find", "--lr-find-steps", "5"), "--lr-find-steps"),
        ("cli", "resume_not_a_run", "--resume of a folder that is not a run",
         T("--resume", not_a_run), "not_a_run"),
        ("cli", "resume_missing", "--resume of a folder that does not exist",
         T("--resume", f"{runs}/20261203-000000"), "20261203-000000"),
        ("cli", "resume_lr_find_run", "--resume of an --lr-find run directory",
         T("--resume", f"{runs}/lr_find"), "lr_find"),
        ("cli", "resume_trained_run", "--resume of a run that trained but did not export",
         T("--resume", trained), "trained_not_exported"),
        ("cli", "ftk_no_command", "`ftk` without a command", F(), "COMMAND"),
        ("cli", "export_not_a_run", "`ftk export` of a folder that is not a run",
         F("export", not_a_run), "not_a_run"),
        ("cli", "export_no_weights", "`ftk export` of a run that never finished training",
         F("export", f"{runs}/no_weights"), "no_weights"),
        ("cli", "export_set_other_section", "`ftk export --set train.epochs=2`",
         F("export", "--set", "train.epochs=2", trained), "train.epochs"),
        ("cli", "export_set_bad_value", "`ftk export --set export.model_name=team/model`",
         F("export", "--set", "export.model_name=team/model", trained), "export.model_name"),
        ("cli", "verify_missing", "`ftk verify` of a folder that does not exist",
         F("verify", f"{ctx.models}/bi_text/7"), "bi_text/7"),
        ("cli", "verify_not_an_export", "`ftk verify` of a folder that is not an export",
         F("verify", not_a_run), "not_a_run"),
        ("cli", "report_not_a_run", "`ftk report` of a folder that is not a run",
         F("report", not_a_run), "not_a_run"),
        ("cli", "report_mistakes_big", "`ftk report --mistakes 500`",
         F("report", trained, "--mistakes", "500"), "--mistakes"),
        ("cli", "new_unknown_template", "`ftk new` of an unknown template",
         F("new", "audio-classification", "-o", str(ctx.new_out), "--no-input"),
         "audio-classification"),
        ("cli", "new_unknown_question", "`ftk new --set` of a question the template lacks",
         F("new", "text-classification", "-o", str(ctx.new_out), "--no-input",
           *set_("epochs=3")), "epochs"),
        ("cli", "new_bad_answer", "`ftk new --set trainable=some` (the hook refuses it)",
         F("new", "text-classification", "-o", str(ctx.new_out), "--no-input",
           *set_("trainable=some")), "trainable"),
        ("cli", "new_project_exists", "`ftk new` onto an existing project folder",
         F("new", "text-classification", "-o", str(ctx.root), "--no-input",
           *set_("project_name=BI Text")), "bi_text"),
        ("cli", "presets_pull_no_name", "`ftk presets pull` without a name",
         F("presets", "pull"), "NAME"),
        ("preset", "presets_pull_typo", "`ftk presets pull minilm_l12` (a typo)",
         F("presets", "pull", "minilm_l12", "--dest", f"{ctx.new_out}/p1"), "minilm_l12"),
        ("preset", "presets_pull_offline", "`ftk presets pull` of an online preset, offline",
         F("presets", "pull", "bert_tiny_en_uncased", "--dest", f"{ctx.new_out}/p2"),
         "bert_tiny_en_uncased"),
        ("preset", "presets_pull_dest_exists", "`ftk presets pull --dest` an existing folder",
         F("presets", "pull", "minilm_l6", "--dest", not_a_run), "not_a_run"),
        # -- Data (text) -------------------------------------------------------------------
        ("data", "data_path_missing", "data.path names no file",
         T(*set_(f"data.path={txt}/nope.csv")), "nope.csv"),
        ("data", "data_empty_csv", "an empty CSV file (0 bytes)",
         T(*set_(f"data.path={txt}/empty.csv")), "empty.csv"),
        ("data", "data_header_only", "a CSV with only its header row",
         T(*set_(f"data.path={txt}/header_only.csv")), ("header_only.csv", "data.path")),
        ("data", "data_no_text_column", "the CSV has no `text` column",
         T(*set_(f"data.path={txt}/no_text_column.csv")), "data.text_column"),
        ("data", "data_no_label_column", "data.label_column names no column",
         T(*set_("data.label_column=category")), "data.label_column"),
        ("data", "data_single_label", "every row has the same label",
         T(*set_(f"data.path={txt}/single_label.csv")), ("single_label.csv", "data.path")),
        ("data", "data_labels_absent", "data.labels lists a label without examples",
         T(*set_('data.labels=["politics", "sport", "tech", "weather"]')), "data.labels"),
        ("data", "data_label_not_listed", "a label in the data is not in data.labels",
         T(*set_('data.labels=["politics", "sport"]')), ("data.labels", "train.csv")),
        ("data", "data_not_utf8", "a Latin-1 row in the CSV (decode_errors = strict)",
         T(*set_(f"data.path={txt}/latin1.csv")), "latin1.csv"),
        ("data", "data_not_utf8_folder", "a Latin-1 .txt file in a folder dataset",
         T(*set_("data.format=folder", f"data.path={txt}/latin1_folder")), "latin1.txt"),
        ("data", "data_conflicting_labels", "the same text under two labels (default: error)",
         T(*set_(f"data.path={txt}/conflict.csv")), "conflict.csv"),
        ("data", "data_too_few", "3 rows over 3 labels: too few for the splits",
         T(*set_(f"data.path={txt}/tiny.csv")),
         ("tiny.csv", "data.validation_split", "data.test_split")),
        ("data", "data_empty_text", "a row whose text is blank",
         T(*set_(f"data.path={txt}/empty_text.csv")), "empty_text.csv"),
        ("data", "data_empty_label", "a row whose label is blank",
         T(*set_(f"data.path={txt}/empty_label.csv")), "empty_label.csv"),
        ("data", "data_short_row", "a row with fewer columns than the header",
         T(*set_(f"data.path={txt}/short_row.csv")), "short_row.csv"),
        ("data", "data_csv_is_folder", "data.format=csv with a folder as data.path",
         T(*set_(f"data.path={txt}/empty_dir")), "empty_dir"),
        ("data", "data_folder_is_file", "data.format=folder with a CSV file as data.path",
         T(*set_("data.format=folder", f"data.path={txt}/empty.csv")), ("data.path", "empty.csv")),
        ("data", "data_folder_no_classes", "a folder dataset without class folders",
         T(*set_("data.format=folder", f"data.path={txt}/empty_dir")), "empty_dir"),
        ("data", "data_example_unknown", "data.path=example:imdb (no such example)",
         T(*set_("data.format=folder", "data.path=example:imdb")), "example:imdb"),
        ("data", "data_validation_unknown_label", "data.validation_path has an unknown label",
         T(*set_(f"data.validation_path={txt}/validation_unknown_label.csv")),
         ("weather", "validation_unknown_label.csv")),
        ("data", "data_test_path_missing", "data.test_path names no file",
         T(*set_(f"data.test_path={txt}/test_missing.csv")), "test_missing.csv"),
        ("data", "tfds_unknown_name", "data.format=tfds with an unknown catalog name",
         T(*set_("data.format=tfds", "data.path=imdb_reviewz")), ("imdb_reviewz", "data.path")),
        ("data", "tfds_not_prepared_offline", "a TFDS name not prepared here, no network",
         T(*set_("data.format=tfds", "data.path=ag_news_subset")),
         ("ag_news_subset", "data.path")),
        ("data", "tfds_not_a_dataset_dir", "data.format=tfds with a folder that is no dataset",
         T(*set_("data.format=tfds", f"data.path={txt}/tfds_empty_dir")), "tfds_empty_dir"),
        # -- Presets and the model ---------------------------------------------------------
        ("preset", "preset_typo", "model.preset=minilm_l12 (a typo)",
         T(*set_("model.preset=minilm_l12")), "minilm_l12"),
        ("preset", "preset_missing_dir", "model.preset names a folder that does not exist",
         T(*set_("model.preset=./presets/minilm")), "presets/minilm"),
        ("preset", "preset_no_config", "a preset folder without config.json",
         T(*set_(f"model.preset={fx}/presets/no_config")), ("no_config", "config.json")),
        ("preset", "preset_no_class_name", "a preset config.json without class_name",
         T(*set_(f"model.preset={fx}/presets/no_class_name")), "no_class_name"),
        ("preset", "preset_bad_json", "a preset config.json that is not JSON",
         T(*set_(f"model.preset={fx}/presets/bad_json")), "bad_json"),
        ("preset", "preset_online_offline", "an online keras-hub preset, with no network",
         T(*set_("model.preset=bert_tiny_en_uncased")), "bert_tiny_en_uncased"),
        ("preset", "preset_hf_offline", "an hf:// preset, with no network",
         T(*set_("model.preset=hf://sentence-transformers/all-MiniLM-L6-v2")), "hf://"),
        ("model", "warmup_longer_than_phase", "train.warmup_steps=1000: longer than a phase",
         T(*set_("train.warmup_steps=1000")), "train.warmup_steps"),
        ("model", "trainable_too_many_blocks", "model.trainable=last_n:12 on 6-layer MiniLM",
         T(*set_("model.trainable=last_n:12")), "model.trainable"),
        # -- The export destination --------------------------------------------------------
        ("export", "export_dir_is_file", "export.export_dir is a file",
         T(*set_(f"export.export_dir={fx}/a_file")), "export.export_dir"),
        ("export", "export_dir_under_file", "export.export_dir is inside a file",
         T(*set_(f"export.export_dir={fx}/a_file/models")), "export.export_dir"),
        ("export", "export_dir_read_only", "export.export_dir is read-only (chmod 555)",
         T(*set_(f"export.export_dir={fx}/read_only")), "export.export_dir", read_only_skip),
        ("export", "export_dir_proc", "export.export_dir under /proc (no one can write)",
         T(*set_("export.export_dir=/proc/ftk-models")), "export.export_dir"),
        ("export", "export_rerun_to_file", "`ftk export RUN --set export.export_dir=` a file",
         F("export", trained, "--set", f"export.export_dir={fx}/a_file"), "export.export_dir"),
        # -- Images ------------------------------------------------------------------------
        ("data", "image_corrupt_png", "a corrupt PNG in a class folder",
         I(*set_(f"data.path={img}/corrupt")), "broken.png"),
        ("data", "image_truncated_png", "a truncated PNG in a class folder",
         I(*set_(f"data.path={img}/truncated")), "cut.png"),
        ("data", "image_class_without_images", "a class folder holding only notes.txt",
         I(*set_(f"data.path={img}/empty_class")), "weather"),
        ("data", "image_no_class_folders", "an image folder without class folders",
         I(*set_(f"data.path={img}/no_classes")), "no_classes"),
        ("data", "image_single_class", "one class folder only",
         I(*set_(f"data.path={img}/single")), ("single", "data.path")),
        ("data", "image_csv_missing_file", "an image CSV listing a file that does not exist",
         I(*set_("data.format=csv", f"data.path={img}/missing_file.csv")), "999.png"),
        ("data", "image_csv_no_path_column", "an image CSV without the `path` column",
         I(*set_("data.format=csv", f"data.path={img}/no_path_column.csv")),
         "data.image_column"),
        ("data", "image_path_missing", "data.path names no folder",
         I(*set_(f"data.path={img}/nope")), "nope"),
        ("config", "image_size_small", "model.image_size=16",
         I(*set_("model.image_size=16")), "model.image_size"),
        ("config", "image_rotation_big", "augment.rotation=0.9",
         I(*set_("augment.rotation=0.9")), "augment.rotation"),
        ("config", "image_on_bad_images_bogus", "data.on_bad_images=ignore",
         I(*set_("data.on_bad_images=ignore")), "data.on_bad_images"),
        ("config", "image_text_key", "a text key in an image project",
         I(*set_("data.decode_errors=replace")), "data.decode_errors"),
        ("preset", "image_preset_offline", "an online image preset, with no network",
         I(*set_("model.preset=resnet_50_imagenet")), "resnet_50_imagenet"),
        ("model", "image_trainable_too_many_blocks", "model.trainable=last_n:40 (16 blocks)",
         I(*set_("model.trainable=last_n:40")), "model.trainable"),
    ]
    # fmt: on
    for stage, name, wrong, (where, argv), expect, *skip in table:
        add(stage, name, wrong, where, argv, expect, *skip)
    return cases


# --------------------------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------------------------


def _snapshot(ctx: Ctx) -> set[str]:
    """What a failed command must not add: run directories, export versions, projects."""
    found = set()
    for base in (ctx.text / "runs", ctx.image / "runs", ctx.models, ctx.new_out):
        if base.is_dir():
            for path in base.iterdir():
                found.add(str(path))
                if path.is_dir() and base in (ctx.models, ctx.text / "runs", ctx.image / "runs"):
                    found.update(str(p) for p in path.iterdir())
    for project in (ctx.text, ctx.image):
        found.update(str(p) for p in project.glob("saved_models*"))
    found.update(str(p) for p in ctx.root.iterdir())
    return found


def _remove(paths: list[str]) -> None:
    for path in sorted(paths, key=len, reverse=True):
        p = Path(path)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


def _display(ctx: Ctx, argv: tuple[str, ...]) -> str:
    head = ["python", "train.py"] if argv[0] == "train.py" else ["ftk"]
    shown = [_short(ctx, a) for a in argv[1:]]
    out = []
    for a in head + shown:
        out.append(a if re.fullmatch(r"[\w./:=@,+$-]+", a) else "'" + a.replace("'", "'\\''") + "'")
    return " ".join(out)


def _short(ctx: Ctx, text: str) -> str:
    return text.replace(str(ctx.root), "$TMP")


def run_case(ctx: Ctx, case: Case, timeout: int) -> Result:
    cwd = {"text": ctx.text, "image": ctx.image, "root": ctx.root}[case.where]
    argv = (
        [sys.executable, *case.argv] if case.argv[0] == "train.py" else [str(FTK), *case.argv[1:]]
    )
    result = Result(
        name=case.name,
        wrong=case.wrong,
        stage=case.stage,
        where=case.where,
        command=_display(ctx, case.argv),
        argv=[_short(ctx, a) for a in case.argv],
        expect=list(case.expect),
    )
    if case.skip:
        result.skipped = case.skip
        return result
    before = _snapshot(ctx)
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=ctx.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        result.exit_code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        result.exit_code = "timeout"
    result.seconds = round(time.perf_counter() - started, 2)
    result.stdout, result.stderr = stdout, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if ERROR_RE.match(line)]
    result.error_lines = len(errors)
    result.error_line = lines[errors[-1]] if errors else ""
    # Lines printed after the error line: the same message going on over several lines.
    result.continued = lines[errors[-1] + 1 :] if errors else []
    message = " ".join([result.error_line, *result.continued])
    # Anything that is neither an error line nor one of ftk's own `ftk: ...` log lines.
    before_error = lines[: errors[-1]] if errors else lines
    result.other_lines = [
        line
        for line in before_error + stdout.splitlines()
        if line.strip() and not line.startswith("ftk")
    ]
    result.traceback = "Traceback" in stdout or "Traceback" in stderr
    added = sorted(_snapshot(ctx) - before)
    result.left_behind = [_short(ctx, p) for p in added]
    _remove(added)  # the next case starts from the same state
    result.checks = {
        "exit 2": result.exit_code == 2,
        "one line": result.error_lines == 1 and not result.continued,
        "no traceback": not result.traceback,
        "names field/file": any(e in message for e in case.expect),
        f"<= {LIMIT_S:g} s": result.seconds <= LIMIT_S,
        "nothing written": not added,
    }
    return result


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def machine(ctx: Ctx | None = None) -> dict:
    def versions() -> dict:
        out = {"python": platform.python_version()}
        for name in VERSIONS:
            try:
                out[name] = version(name)
            except PackageNotFoundError:
                pass
        return out

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "system": f"{platform.system()} {platform.release()}",
        "euid": os.geteuid(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "git": {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))},
        "versions": versions(),
    }


def import_floor(ctx: Ctx) -> float:
    """Seconds a fresh `python -c 'import tensorflow'` takes here: every case caught after
    the backend starts (data, presets, exports) pays at least this."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        env={**ctx.env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        check=False,
    )
    return round(time.perf_counter() - started, 2)


def _cell(text: str, limit: int | None = None) -> str:
    text = " ".join(text.split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    """`text` as an inline code span that may itself hold backticks."""
    return f"`` {text} ``" if text else ""


def summary(results: list[Result]) -> dict:
    ran = [r for r in results if not r.skipped]
    seconds = [r.seconds for r in ran]
    failed: dict[str, list[str]] = {}
    for r in ran:
        for check in r.failed_checks:
            failed.setdefault(check, []).append(r.name)
    return {
        "cases": len(results),
        "ran": len(ran),
        "skipped": len(results) - len(ran),
        "passed": sum(r.ok for r in ran),
        "one_line": sum(r.checks.get("one line", False) for r in ran),
        "max_seconds": max(seconds) if seconds else None,
        "median_seconds": round(statistics.median(seconds), 2) if seconds else None,
        "over_limit": sum(s > LIMIT_S for s in seconds),
        "failed": failed,
    }


def write_markdown(path: Path, ctx: Ctx, info: dict, results: list[Result], totals: dict) -> None:
    v = info["machine"]["versions"]
    m = info["machine"]
    dirty = " (with uncommitted changes)" if m["git"]["dirty"] else ""
    lines = [
        f"# Bad input, measured: {m['date'][:10]}",
        "",
        "Every case below is a mistake made as a user would make it, in freshly baked "
        "projects, run as its own process (`python train.py ...` in the project, or an `ftk` "
        "verb). Made by `python -m bench.bad_inputs` (bench/bad_inputs.py, which says how); "
        f"every message in full is in [{path.with_suffix('.json').name}]"
        f"({path.with_suffix('.json').name}).",
        "",
        f"**{totals['ran']} cases run** ({totals['skipped']} skipped), **{totals['passed']} pass "
        f"every check**; {totals['one_line']} print their error on exactly one line. Time from "
        f"start to exit: median **{totals['median_seconds']} s**, max "
        f"**{totals['max_seconds']} s**; {totals['over_limit']} over {LIMIT_S:g} s.",
        "",
        "| | |",
        "| --- | --- |",
        f"| date | {m['date']} |",
        f"| machine | {m['machine']}, {m['cpu'] or 'CPU'}, {m['cores']} cores "
        f"({m['usable_cores']} usable), {m['system']} |",
        f"| load average | {' '.join(map(str, m['load_average']))} before, "
        f"{' '.join(map(str, info['load_after']))} after (other jobs shared the machine) |",
        f"| `import tensorflow` | {info['import_floor_s']} s in a fresh process here: the floor "
        "of every case caught after the backend starts |",
        f"| commit | {m['git']['commit'][:12]}{dirty} |",
        "| versions | " + ", ".join(f"{k} {val}" for k, val in v.items()) + " |",
        *(
            f"| {name} project | {_cell(_short(ctx, p['summary']))} |"
            for name, p in info["projects"].items()
        ),
        f"| wall time | {info['wall_s']} s for the whole run |",
        "",
        "Checks: **exit 2**; **one line**: exactly one error line, nothing printed after it; "
        "**no traceback**; **names field/file**: the message holds the field or file the case "
        "expects; **≤ 10 s** from start to exit; **nothing written**: no run directory, export "
        "version or project left behind. A message that goes on over more lines shows them "
        "after ⏎. `$TMP` is the bench's temporary folder.",
        "",
        "| # | case | what is wrong | command | exit | s | checks | message |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(results, 1):
        where = {"text": "text project", "image": "image project", "root": ""}[r.where]
        command = f"`{_cell(r.command, 160)}`" + (f" ({where})" if where else "")
        if r.skipped:
            lines.append(
                f"| {i} | {r.name} | {_cell(r.wrong)} | {command} | — | — | skipped | "
                f"{_cell(r.skipped)} |"
            )
            continue
        checks = "ok" if r.ok else "**" + ", ".join(r.failed_checks) + "**"
        message = " ⏎ ".join([r.error_line, *r.continued[:3]])
        message = _code(_cell(_short(ctx, message), MESSAGE_CHARS)) or "(no error line)"
        lines.append(
            f"| {i} | {r.name} | {_cell(r.wrong)} | {command} | {r.exit_code} | {r.seconds:.1f} "
            f"| {checks} | {message} |"
        )
    noisy = [r for r in results if r.other_lines and not r.skipped]
    if noisy:
        lines += [
            "",
            "Other output (lines that are neither the error line nor ftk's `ftk: ...` log lines):",
            "",
        ]
        for r in noisy:
            shown = "; ".join(_cell(_short(ctx, x), 160) for x in r.other_lines[:3])
            more = f" (+{len(r.other_lines) - 3} more)" if len(r.other_lines) > 3 else ""
            lines.append(f"- {r.name}: {_code(shown)}{more}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_json(path: Path, ctx: Ctx, info: dict, results: list[Result], totals: dict) -> None:
    records = []
    for r in results:
        record = asdict(r)
        record["ok"] = r.ok
        for key in ("error_line", "stdout", "stderr"):
            record[key] = _short(ctx, record[key])
        for key in ("other_lines", "continued"):
            record[key] = [_short(ctx, x) for x in record[key]]
        records.append(record)
    payload = {**info, "summary": totals, "cases": records}
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bad_inputs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, help="the Markdown results file (JSON beside it)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="case names or globs")
    parser.add_argument("--list", action="store_true", help="print the case names and exit")
    parser.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per case")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="ftk-bad-inputs-"))
    ctx = Ctx(root)
    try:
        if args.list:
            for case in build_cases(ctx):
                print(f"{case.name:36} {case.stage:7} {case.wrong}")
            return 0
        info = {"machine": machine(ctx)}
        print(f"baking the projects in {root} ...", file=sys.stderr, flush=True)
        info["projects"] = bake_projects(ctx)
        write_fixtures(ctx)
        cases = build_cases(ctx)
        if args.only:
            cases = [c for c in cases if any(fnmatch.fnmatch(c.name, p) for p in args.only)]
            if not cases:
                parser.error(f"no case matches {args.only} (see --list)")
        info["import_floor_s"] = import_floor(ctx)
        results = []
        for i, case in enumerate(cases, 1):
            result = run_case(ctx, case, args.timeout)
            results.append(result)
            status = "skip" if result.skipped else ("ok" if result.ok else "FAIL")
            print(
                f"[{i}/{len(cases)}] {status:4} {case.name:36} "
                f"{'' if result.skipped else f'{result.seconds:5.1f} s  exit {result.exit_code}'}"
                f"  {'' if result.ok or result.skipped else ', '.join(result.failed_checks)}",
                file=sys.stderr,
                flush=True,
            )
        info["load_after"] = [round(x, 2) for x in os.getloadavg()]
        info["wall_s"] = round(time.perf_counter() - started, 1)
        info["only"] = args.only
        totals = summary(results)
        if args.out:
            out = args.out
        elif args.only:
            out = PARTIAL / f"{time.strftime('%Y-%m-%d')}-bad-inputs-only.md"
        else:
            out = RESULTS / f"{time.strftime('%Y-%m-%d')}-bad-inputs.md"
        out = out if out.is_absolute() else Path.cwd() / out
        write_markdown(out, ctx, info, results, totals)
        write_json(out.with_suffix(".json"), ctx, info, results, totals)
        print(
            f"{totals['ran']} cases ({totals['skipped']} skipped): {totals['passed']} pass every "
            f"check; median {totals['median_seconds']} s, max {totals['max_seconds']} s\n"
            f"results: {out}",
            file=sys.stderr,
        )
        return 0 if totals["passed"] == totals["ran"] else 1
    finally:
        read_only = ctx.fx / "read_only"
        if read_only.exists():
            os.chmod(read_only, 0o755)
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
