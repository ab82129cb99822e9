"""The causal-LM task end to end on a tiny random Llama that uses SmolLM2's real tokenizer and
chat template (a Hugging Face directory, as the offline preset is): JSON-lines data, LoRA
training, held-out perplexity before and after, and an export whose SavedModel writes exactly
the tokens Keras' `generate` writes (directly, REST, gRPC, warm-up), with a preset directory
that reloads to the same logits. The real 135M model: tests/system/test_gguf_conversion.py."""

import json

import numpy as np
import pytest

from ftk.convert.gguf_llama import gguf_path, hf_tokenizer

TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def save_tiny_llama(path, seed: int = 0):
    from gguf import GGUFReader
    from safetensors.numpy import save_file

    reader = GGUFReader(str(gguf_path()))
    meta = {
        k: f.contents() for k, f in reader.fields.items() if k.startswith(("tokenizer.", "llama."))
    }
    tokenizer, tokenizer_config = hf_tokenizer(meta)
    vocab = len(tokenizer["model"]["vocab"])
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        **TINY,
    }
    rng = np.random.default_rng(seed)
    h, f, heads, kv = 32, 64, 4, 2
    d = h // heads

    def w(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    weights = {
        "model.embed_tokens.weight": w(vocab, h),
        "model.norm.weight": np.ones(h, np.float32),
    }
    for i in range(2):
        p = f"model.layers.{i}."
        weights.update(
            {
                p + "input_layernorm.weight": np.ones(h, np.float32),
                p + "post_attention_layernorm.weight": np.ones(h, np.float32),
                p + "self_attn.q_proj.weight": w(heads * d, h),
                p + "self_attn.k_proj.weight": w(kv * d, h),
                p + "self_attn.v_proj.weight": w(kv * d, h),
                p + "self_attn.o_proj.weight": w(h, heads * d),
                p + "mlp.gate_proj.weight": w(f, h),
                p + "mlp.up_proj.weight": w(f, h),
                p + "mlp.down_proj.weight": w(h, f),
            }
        )
    path.mkdir(parents=True)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    for name, content in (
        ("config.json", config),
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", tokenizer_config),
    ):
        (path / name).write_text(json.dumps(content), encoding="utf-8")
    return path


def conversations(n: int) -> list[dict]:
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
    return [
        {"prompt": f"What colour is item {i}?", "response": f"Item {i} is {colours[i % 8]}."}
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    preset = save_tiny_llama(root / "tiny_llama")
    data = root / "chat.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in conversations(60)) + "\n", encoding="utf-8")
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
    version = project / "saved_models" / "causal_lm" / "1"
    assert (version / "adapter" / "adapter.weights.h5").is_file()
    generation = json.loads((version / "assets.extra" / "generation.json").read_text())
    assert generation["sampler"] == "greedy" and generation["max_new_tokens"] == 6
    report = (run_dir / "report.md").read_text()
    assert "## Generations" in report and "perplexity" in report
