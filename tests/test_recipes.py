"""Recipes: phase plans, frozen weights stay bit-identical, gradual unfreezing on schedule,
regularization, config checks, and the recipe keys end to end in a run."""

import json
import math
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import make_rows, tiny_config_toml

from ftk.config import load_config, replace, update_config_file
from ftk.data.splits import Examples
from ftk.data.text import to_dataset
from ftk.errors import ConfigError
from ftk.models.text import build_text_classifier
from ftk.presets.resolve import resolve_preset
from ftk.tasks.classification.losses import SparseCrossentropy
from ftk.training.fit import set_l2
from ftk.training.recipes import Phase, plan_phases, train_phases

LABELS = ["music", "sport", "tech"]


def config_for(tmp_path, tiny_preset, tiny_csv, *overrides):
    path = tmp_path / "config.toml"
    path.write_text(tiny_config_toml(tiny_preset, tiny_csv, tmp_path), encoding="utf-8")
    return load_config(path, ['export.export_dir=""', "recipe.name=two_phase", *overrides])


def examples(n_per_class=20, seed=0) -> Examples:
    rows = make_rows(n_per_class, seed)
    return Examples([t for t, _ in rows], np.array([LABELS.index(y) for _, y in rows], np.int32))


def phase_weights(path: Path) -> dict[str, np.ndarray]:
    """Every array of a Keras `.weights.h5` file by its path inside the file."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()])
                if isinstance(obj, h5py.Dataset) and "optimizer" not in name
                else None
            )
        )
    return out


def test_plans(tmp_path, tiny_preset, tiny_csv):
    config = config_for(tmp_path, tiny_preset, tiny_csv, "train.epochs=3")
    assert plan_phases(config, 6) == [
        Phase("head", "head", 1, 1e-2),
        Phase("finetune", "all", 2, 3e-3),
    ]
    single = replace(config, recipe={"name": "single"})
    assert plan_phases(single, 6) == [Phase("finetune", "all", 3, 3e-3)]
    head_only = replace(config, model={"trainable": "head"})
    assert plan_phases(head_only, 6) == [Phase("finetune", "head", 3, 3e-3)]
    gradual = replace(config, train={"epochs": 5}, recipe={"name": "gradual"})
    assert [(p.trainable, p.epochs) for p in plan_phases(gradual, 2)] == [
        ("head", 1),
        ("last_n:1", 1),
        ("last_n:2", 1),
        ("all", 2),  # the last stage keeps the remaining epochs
    ]
    to_k = replace(gradual, model={"trainable": "last_n:1"}, recipe={"unfreeze_every": 2})
    assert [(p.trainable, p.epochs) for p in plan_phases(to_k, 2)] == [
        ("head", 1),
        ("last_n:1", 4),
    ]
    lora = replace(config, model={"lora_rank": 4})
    assert plan_phases(lora, 2)[-1] == Phase("finetune", "lora", 2, 3e-3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epochs=1"], r"`recipe.head_epochs` must be fewer than train.epochs=1"),
        (["recipe.name=slow"], r"`recipe.name` must be one of single, two_phase, gradual"),
        (["train.schedule=cosin"], r"`train.schedule` must be one of constant, linear"),
        (["train.schedule=exponential"], r"`train.decay_to` must be > 0 for .*exponential"),
        (["train.warmup_steps=5", "train.warmup_epochs=0.5"], r"warmup in steps or epochs"),
        (["train.l2=0.01"], r"`train.l2` must be 0 when train.weight_decay is set"),
        (["train.label_smoothing=1.0"], r"`train.label_smoothing` must be in \[0, 1\)"),
        (["recipe.lr_lower=-1"], r"`recipe.lr_lower` must be a learning-rate multiplier"),
        (["recipe.cv_folds=1"], r"`recipe.cv_folds` must be 0 \(off\) or between 2 and 20"),
        (["recipe.keep_best_alpha=true"], r"false unless recipe.interpolate is true"),
        (["model.lora_rank=4", "model.trainable=head"], r"`model.trainable` must be 'all' when"),
    ],
)
def test_recipe_config_errors(tmp_path, tiny_preset, tiny_csv, overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_for(tmp_path, tiny_preset, tiny_csv, *overrides)


def test_two_phase_freezes_then_unfreezes(tmp_path, tiny_preset, tiny_csv):
    """After the head phase every backbone weight is bit-identical to the pretrained one and the
    head moved; after the fine-tuning phase the backbone moved too."""
    config = config_for(
        tmp_path, tiny_preset, tiny_csv, "train.epochs=2", "recipe.interpolate=true"
    )
    model = build_text_classifier(resolve_preset(str(tiny_preset)), config.model, 3)
    data = examples()
    run_dir = tmp_path / "run"
    out = train_phases(model, to_dataset(data, 8, 100, 0), None, run_dir, config, len(data), 0)
    assert [p["name"] for p in out["phases"]] == ["head", "finetune"]
    head_trainable = out["phases"][0]["trainable_parameters"]
    assert head_trainable == 16 * 3 + 3 < out["phases"][1]["trainable_parameters"]

    after_head = phase_weights(run_dir / "phases" / "0-head.weights.h5")
    after_all = phase_weights(run_dir / "phases" / "1-finetune.weights.h5")
    pretrained = phase_weights(run_dir / "pretrained.weights.h5")  # saved before phase 2
    backbone = [k for k in after_head if "backbone" in k]
    head = [k for k in after_head if "backbone" not in k]
    assert backbone and head
    for key in backbone:
        np.testing.assert_array_equal(after_head[key], pretrained[key], err_msg=key)
    assert all(not np.array_equal(after_head[k], after_all[k]) for k in head)
    moved = [k for k in backbone if not np.array_equal(after_head[k], after_all[k])]
    assert len(moved) > len(backbone) // 2
    # The pretrained file holds what fine-tuning started from: the preset's backbone.
    fresh = build_text_classifier(resolve_preset(str(tiny_preset)), config.model, 3)
    expected = [keras.ops.convert_to_numpy(w) for w in fresh.backbone.weights]
    fresh.load_weights(str(run_dir / "pretrained.weights.h5"))
    for want, got in zip(expected, fresh.backbone.weights, strict=True):
        np.testing.assert_array_equal(want, keras.ops.convert_to_numpy(got))


def test_gradual_unfreezing_follows_the_schedule(tmp_path, tiny_preset, tiny_csv):
    config = config_for(tmp_path, tiny_preset, tiny_csv, "train.epochs=4", "recipe.name=gradual")
    model = build_text_classifier(resolve_preset(str(tiny_preset)), config.model, 3)
    data = examples(10)
    run_dir = tmp_path / "run"
    out = train_phases(model, to_dataset(data, 8, 100, 0), None, run_dir, config, len(data), 0)
    phases = out["phases"]
    assert [(p["trainable"], p["first_epoch"]) for p in phases] == [
        ("head", 1),
        ("last_n:1", 2),
        ("last_n:2", 3),
        ("all", 4),
    ]
    counts = [p["trainable_parameters"] for p in phases]
    assert counts == sorted(counts) and len(set(counts)) == 4  # one more group every epoch

    def changed(a, b, part):
        wa, wb = (phase_weights(run_dir / "phases" / f) for f in (a, b))
        return any(not np.array_equal(wa[k], wb[k]) for k in wa if part in k)

    files = [f"{i}-{p['name']}.weights.h5" for i, p in enumerate(phases)]
    top, bottom = "transformer_encoder_1/", "transformer_encoder/"  # names in the .h5 file
    assert changed(files[0], files[1], top)
    assert not changed(files[0], files[1], bottom)
    assert changed(files[1], files[2], bottom)
    assert not changed(files[1], files[2], "embedding")
    assert changed(files[2], files[3], "embedding")


def test_label_smoothing_loss_matches_the_formula():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], np.float32)
    labels = np.array([0, 2])
    eps = 0.1
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = np.full((2, 3), eps / 3)
    target[np.arange(2), labels] += 1 - eps
    expected = -(target * log_p).sum(-1).mean()
    loss = SparseCrossentropy(label_smoothing=eps)(labels, logits)
    assert float(keras.ops.convert_to_numpy(loss)) == pytest.approx(expected, rel=1e-6)
    plain = SparseCrossentropy()(labels, logits)
    assert float(keras.ops.convert_to_numpy(plain)) == pytest.approx(
        -log_p[np.arange(2), labels].mean(), rel=1e-6
    )


def test_l2_penalty_counts_trainable_kernels_only(tiny_preset):
    from ftk.config import ModelConfig
    from ftk.models.trainable import TrainablePolicy, apply_trainable_policy

    model = build_text_classifier(
        resolve_preset(str(tiny_preset)), ModelConfig(sequence_length=16), 3
    )
    assert set_l2(model, 0.01) > 0
    apply_trainable_policy(model, TrainablePolicy.parse("head"))
    (penalty,) = model.losses  # the logits kernel only: the rest is frozen
    kernel = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    assert float(keras.ops.convert_to_numpy(penalty)) == pytest.approx(
        0.01 * (kernel**2).sum(), rel=1e-5
    )
    apply_trainable_policy(model, TrainablePolicy.parse("all"))
    assert len(model.losses) > 10
    set_l2(model, 0.0)
    assert model.losses == []


def test_update_config_file_keeps_comments_and_a_backup(tmp_path):
    path = tmp_path / "config.toml"
    original = (
        "# my notes\n[train]\n# the rate\nlearning_rate = 5e-5  # tuned by hand\nepochs = 3\n"
        "\n[export]\nonnx = true\n"
    )
    path.write_text(original)
    backup = update_config_file(path, "train.learning_rate", 0.0003)
    assert backup.read_text() == original
    text = path.read_text()
    assert "# my notes" in text and "# the rate" in text and "learning_rate = 0.0003\n" in text
    assert load_config(path).train.learning_rate == 0.0003
    second = update_config_file(path, "recipe.head_learning_rate", 0.01)  # a missing section
    assert second != backup and second.exists() and backup.read_text() == original
    assert load_config(path).recipe.head_learning_rate == 0.01


def run_config(tmp_path, tiny_preset, tiny_csv, *overrides):
    """The tiny project's config file, with the default recipe (`two_phase`) written into it."""
    path = tmp_path / "config.toml"
    text = tiny_config_toml(tiny_preset, tiny_csv, tmp_path).replace(
        'name = "single"', 'name = "two_phase"'
    )
    path.write_text(text, encoding="utf-8")
    return path, load_config(path, list(overrides))


def test_cross_validation_reports_mean_and_std(tmp_path, tiny_preset, tiny_csv):
    from ftk.runs import pipeline as runner

    _, config = run_config(
        tmp_path,
        tiny_preset,
        tiny_csv,
        'export.export_dir=""',
        "recipe.cv_folds=2",
        "train.epochs=2",
        "train.steps_per_epoch=2",
    )
    summary = runner.run(config, verbose=0)
    run_dir = Path(summary["run_dir"])
    cv = json.loads((run_dir / "cv.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [0, 1]
    pooled = sum(f["held_out_examples"] for f in cv["folds"])
    counts = json.loads((run_dir / "run.json").read_text())["split_counts"]
    assert pooled == sum(counts["train"].values()) + sum(counts["validation"].values())
    accuracies = [f["accuracy"] for f in cv["folds"]]
    assert cv["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert cv["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert json.loads((run_dir / "metrics.json").read_text())["cross_validation"] == cv
    assert math.isfinite(summary["test_accuracy"])


def test_lr_find_command_plots_suggests_and_writes_only_when_asked(
    tmp_path, tiny_preset, tiny_csv, capsys
):
    from PIL import Image

    from ftk.cli.main import main as ftk_main

    path, _ = run_config(tmp_path, tiny_preset, tiny_csv)
    original = path.read_text()
    args = ["lr-find", "--config", str(path), "--lr-find-steps", "60", "--quiet"]
    assert ftk_main(args) == 0
    assert path.read_text() == original  # no --apply: the config is untouched
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "lr_find.json").read_text())
    assert result["key"] == "train.learning_rate" and result["rule"] in (
        "steepest",
        "minimum_tenth",
    )
    assert 1e-7 <= result["suggestion"] <= 1.0
    assert Image.open(run_dir / "lr_find.png").size == (800, 500)
    # Nothing trained or saved: no checkpoints, weights or exports.
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "model.weights.h5").exists()
    assert not (tmp_path / "saved_models").exists()
    assert "suggested train.learning_rate" in capsys.readouterr().out

    assert ftk_main([*args, "--apply", "--lr-find", "head"]) == 0
    (backup,) = tmp_path.glob("config.toml.*.bak")
    assert backup.read_text() == original
    applied = json.loads(sorted((tmp_path / "runs").glob("*/lr_find.json"))[-1].read_text())
    assert applied["key"] == "recipe.head_learning_rate"
    assert load_config(path).recipe.head_learning_rate == applied["suggestion"]
    assert load_config(path).train.learning_rate == 3e-3  # the other key is unchanged


def test_lr_find_command_prints_a_sweep_without_a_steepest_point(
    tmp_path, tiny_preset, tiny_csv, capsys, monkeypatch
):
    """A sweep whose loss never falls has no steepest point (`null` in lr_find.json): the
    command still prints its suggestion (minimum/10) and says 'none' for the steepest."""
    from ftk.cli.main import main as ftk_main
    from ftk.runs import find_lr

    def no_descent(config, load_data, **kwargs):
        return {
            "key": "train.learning_rate",
            "suggestion": 1e-6,
            "rule": "minimum_tenth",
            "steepest": None,
            "minimum_tenth": 1e-6,
            "plot": str(tmp_path / "lr_find.png"),
        }

    monkeypatch.setattr(find_lr, "find_learning_rate", no_descent)
    path, _ = run_config(tmp_path, tiny_preset, tiny_csv)
    assert ftk_main(["lr-find", "--config", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "suggested train.learning_rate = 1e-06" in out
    assert "steepest none, minimum/10 1e-06" in out


def test_lr_find_command_errors(tmp_path, tiny_preset, tiny_csv, capsys):
    from ftk.cli.main import main as ftk_main
    from ftk.cli.main import train_main

    path, _ = run_config(tmp_path, tiny_preset, tiny_csv)
    assert train_main(["--config", str(path), "--apply"]) == 2
    assert "--apply goes with --lr-find" in capsys.readouterr().err
    assert ftk_main(["lr-find", "--config", str(path), "--lr-find-steps", "3"]) == 2
    assert "--lr-find-steps must be >= 10. Received: 3" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_lora_run_keeps_the_adapter_and_exports_merged_weights(tmp_path, tiny_preset, tiny_csv):
    """A LoRA run: fewer trainable parameters, adapter + head saved together, and an export
    without LoRA layers that verification checked against the unmerged model."""
    import keras
    import tensorflow as tf

    from ftk.runs import pipeline as runner
    from ftk.training import fit as training

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("power cut")

    standard = training.callbacks
    _, config = run_config(
        tmp_path, tiny_preset, tiny_csv, "model.lora_rank=2", "train.epochs=3", "recipe.name=single"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "callbacks", lambda *a: [*standard(*a), Crash()])
        with pytest.raises(RuntimeError, match="power cut"):
            runner.run(config, verbose=0)
    (run_dir,) = (tmp_path / "runs").iterdir()
    # Resumed from the LoRA phase's backup: Keras' weights file holds merged kernels only, and
    # the adapters must come back as real factors (not zeros, which could not learn or be saved).
    summary = runner.run(config, resume=run_dir, verbose=0)
    with h5py.File(run_dir / "adapter.weights.h5") as f:
        factors = {}
        f.visititems(
            lambda n, o: factors.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None
        )
    b = [v for n, v in factors.items() if "lora_kernel_b" in n]
    assert len(b) == 4 and all(np.abs(v).max() > 0 for v in b)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    lora_phase = metrics["phases"][-1]
    assert lora_phase["trainable"] == "lora"
    # 2 layers x (query, value) x (adapters 16 x 2 + 2 x (2 x 8), and the (2 x 8) bias, which
    # keras-hub's enable_lora leaves trainable) + the head (16 x 3 + 3).
    adapters = 2 * 2 * (16 * 2 + 2 * 16 + 16)
    assert lora_phase["trainable_parameters"] == adapters + 16 * 3 + 3
    assert (run_dir / "adapter.weights.h5").is_file()
    assert (run_dir / "adapter.weights.h5").stat().st_size < (
        run_dir / "model.weights.h5"
    ).stat().st_size
    with h5py.File(run_dir / "model.weights.h5") as f:
        names = []
        f.visit(names.append)
    assert not [n for n in names if "lora" in n]  # the exported weights are merged
    export = summary["export"]
    assert export["savedmodel_max_abs_diff"] <= 1e-4 and export["onnx_max_abs_diff"] <= 1e-4
    loaded = tf.saved_model.load(export["version_dir"])
    assert not [v.name for v in loaded.variables if "lora" in v.name]


def test_wise_ft_curve_in_a_run(tmp_path, tiny_preset, tiny_csv):
    from PIL import Image

    from ftk.runs import pipeline as runner

    _, config = run_config(
        tmp_path,
        tiny_preset,
        tiny_csv,
        'export.export_dir=""',
        "train.epochs=2",
        "recipe.interpolate=true",
        "recipe.interpolation_points=3",
        "recipe.keep_best_alpha=true",
    )
    summary = runner.run(config, verbose=0)
    run_dir = Path(summary["run_dir"])
    result = json.loads((run_dir / "interpolation.json").read_text())
    assert [p["alpha"] for p in result["curve"]] == [0.0, 0.5, 1.0]
    assert result["kept_alpha"] == result["best_alpha"]
    best = max(p["accuracy"] for p in result["curve"])
    assert [p for p in result["curve"] if p["alpha"] == result["best_alpha"]][0]["accuracy"] == best
    assert Image.open(run_dir / "interpolation.png").format == "PNG"
    assert json.loads((run_dir / "metrics.json").read_text())["interpolation"] == result
