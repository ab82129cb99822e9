"""The causal-LM task end to end on a tiny random Llama that uses SmolLM2's real tokenizer and
chat template (a Hugging Face directory, as the offline preset is): JSON-lines data, LoRA
training, held-out perplexity before and after, and an export whose SavedModel writes exactly
the tokens Keras' `generate` writes (directly, REST, gRPC, warm-up), with a preset directory
that reloads to the same logits. The real 135M model: tests/system/test_gguf_conversion.py."""

import json

import pytest
from helpers import lm_conversations, save_tiny_llama


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    preset = save_tiny_llama(root / "tiny_llama")
    data = root / "chat.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in lm_conversations(60)) + "\n", encoding="utf-8")
    (root / "config.toml").write_text(
        f"""
[run]
task = "causal_lm"
run_dir = "{root / "runs"}"
quiet = true
[model]
preset = "{preset}"
sequence_length = 64
lora_rank = 4
[data]
path = "{data}"
validation_split = 0.1
test_split = 0.15
[train]
epochs = 2
batch_size = 8
learning_rate = 1e-2
[generate]
max_new_tokens = 6
samples = 2
[export]
export_dir = "{root / "saved_models"}"
verify_examples = 3
onnx = true
""",
        encoding="utf-8",
    )
    return root


def test_train_evaluate_export_verify(project):
    from ftk.cli.main import train_main

    assert train_main(["--config", str(project / "config.toml")]) == 0
    (run_dir,) = (project / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["perplexity"] < metrics["before"]["perplexity"]  # it learned the answers
    assert len(metrics["after"]["samples"]) == 2 and 0.0 <= metrics["after"]["rouge_l"] <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text())
    export = summary["export"]
    for where in ("savedmodel", "rest_row", "rest_columnar", "grpc"):
        assert export[f"{where}_exact"] + export[f"{where}_near_tie"] == 3, where
    assert export["preset_max_abs_diff"] <= 1e-4
    assert export["onnx_max_abs_diff"] <= 1e-4  # a tiny model: small logits
    version = project / "saved_models" / "causal_lm" / "1"
    assert (version / "adapter" / "adapter.weights.h5").is_file()
    card = (version / "README.md").read_text()  # the model card, filled from the provenance
    assert "| perplexity |" in card and "keras-hub preset directory" in card
    generation = json.loads((version / "assets.extra" / "generation.json").read_text())
    assert generation["sampler"] == "greedy" and generation["max_new_tokens"] == 6
    report = (run_dir / "report.md").read_text()
    assert "## Generations" in report and "perplexity" in report


def test_wise_ft_scales_the_adapter_and_search_picks_by_validation_loss(project):
    """WiSE-FT on a LoRA run is the adapter scaled by alpha: the curve's ends are the pretrained
    model (alpha 0) and the fine-tuned one (alpha 1). The search tries learning rate and LoRA
    rank by validation loss."""
    from ftk.config import load_config
    from ftk.tuning.command import tune

    overrides = [
        f"run.run_dir={project / 'runs-more'}",
        "export.export_dir=",
        "export.onnx=false",
        "generate.samples=0",
        "train.epochs=1",
        "recipe.interpolate=true",
        "recipe.interpolation_points=3",
    ]
    from ftk.cli.main import train_main

    argv = ["--config", str(project / "config.toml")]
    assert train_main([*argv, *(a for o in overrides for a in ("--set", o))]) == 0
    (run_dir,) = (project / "runs-more").iterdir()
    curve = json.loads((run_dir / "interpolation.json").read_text())["curve"]
    assert [p["alpha"] for p in curve] == [0.0, 0.5, 1.0]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert curve[0]["loss"] > curve[-1]["loss"]  # training helped on validation too
    assert metrics["before"]["loss"] > metrics["loss"]
    config = load_config(
        project / "config.toml",
        overrides=[
            f"run.run_dir={project / 'runs-tune'}",
            "export.export_dir=",
            "generate.samples=0",
            "train.epochs=1",
            "tune.algorithm=grid",
            "tune.max_trials=2",
            'tune.space={"train.learning_rate" = [1e-4, 1e-2]}',
        ],
    )
    search = tune(config, search_only=True, verbose=0)["search"]
    assert search["objective"] == "val_loss"
    assert search["best"]["values"]["train.learning_rate"] == 1e-2  # it learns; 1e-4 barely
