"""Recipes: phase plans, frozen weights stay bit-identical, gradual unfreezing on schedule,
regularization and config checks (the recipes in whole runs:
tests/integration/test_recipe_runs.py)."""

import keras
import numpy as np
import pytest
from helpers import examples, h5_arrays, write_tiny_config

from ftk.config import load_config, replace, update_config_file
from ftk.data.text import to_dataset
from ftk.errors import ConfigError
from ftk.models.text import build_text_classifier
from ftk.presets.resolve import resolve_preset
from ftk.tasks.classification.losses import SparseCrossentropy
from ftk.training.fit import set_l2
from ftk.training.recipes import Phase, plan_phases, train_phases


def config_for(tmp_path, tiny_preset, tiny_csv, *overrides):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    return load_config(path, ['export.export_dir=""', "recipe.name=two_phase", *overrides])


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
    data = examples(20)
    run_dir = tmp_path / "run"
    out = train_phases(model, to_dataset(data, 8, 100, 0), None, run_dir, config, len(data), 0)
    assert [p["name"] for p in out["phases"]] == ["head", "finetune"]
    head_trainable = out["phases"][0]["trainable_parameters"]
    assert head_trainable == 16 * 3 + 3 < out["phases"][1]["trainable_parameters"]

    after_head = h5_arrays(run_dir / "phases" / "0-head.weights.h5")
    after_all = h5_arrays(run_dir / "phases" / "1-finetune.weights.h5")
    pretrained = h5_arrays(run_dir / "pretrained.weights.h5")  # saved before phase 2
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
        wa, wb = (h5_arrays(run_dir / "phases" / f) for f in (a, b))
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
