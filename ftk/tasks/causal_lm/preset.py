"""The keras-hub preset directory of a fine-tuned causal LM (`<version>/preset/`): written with
keras-hub's `save_to_preset`, with what keras-hub 0.32 leaves out written back, and loaded on any
backend with `load_preset`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from ftk.files import read_json, write_json

TOKENIZER_FIX = "ftk_tokenizer.json"


def save_preset(model, prep, path: Path) -> None:
    """The merged model and its tokenizer as a keras-hub preset directory. keras-hub 0.32
    leaves settings out of what it writes (keras-hub #3098: `tie_word_embeddings`; the
    tokenizer's start, end and other special tokens): the first two are written back, and all
    of the tokenizer's special tokens go to `ftk_tokenizer.json`, which `load_preset` reads."""
    model.preprocessor = prep
    try:
        model.save_to_preset(str(path))
    finally:
        model.preprocessor = None
    t = prep.tokenizer
    tokens = {k: v for k, v in (("bos_token", t.start_token), ("eos_token", t.end_token)) if v}
    write_json(
        path / TOKENIZER_FIX,
        {**tokens, "special_tokens": sorted(set(t.special_tokens) - set(tokens.values()))},
    )
    embedding = getattr(model.backbone, "token_embedding", None)
    tied = (
        {"tie_word_embeddings": bool(embedding.tie_weights)}
        if hasattr(embedding, "tie_weights")
        else {}
    )
    for name in ("config.json", "task.json", "preprocessor.json", "tokenizer.json"):
        file = path / name
        if file.is_file():
            saved = json.loads(file.read_text(encoding="utf-8"))
            _fill_configs(saved, "Backbone", tied)
            _fill_configs(saved, "Tokenizer", tokens)
            file.write_text(json.dumps(saved, indent=4), encoding="utf-8")


def load_preset(path: Path):
    """A preset directory written by `save_preset`, loaded with keras-hub on any backend:
    `CausalLM.from_preset` for the model, and its tokenizer rebuilt with the special tokens
    keras-hub 0.32 does not save (its `from_preset` alone stops at a Llama 3 tokenizer's
    missing `<|start_header_id|>`)."""
    import keras
    import keras_hub

    path = Path(path)
    lm = keras_hub.models.CausalLM.from_preset(str(path), preprocessor=None)
    fix = read_json(path / TOKENIZER_FIX)
    saved = read_json(path / "tokenizer.json")
    cls = keras.saving.get_registered_object(saved["registered_name"])
    kwargs = {"bos_token": fix["bos_token"], "eos_token": fix["eos_token"]}
    if "misc_special_tokens" in inspect.signature(cls).parameters:
        kwargs["misc_special_tokens"] = set(fix["special_tokens"])
    tokenizer = cls(
        vocabulary=str(path / "assets" / "tokenizer" / "vocabulary.json"),
        merges=str(path / "assets" / "tokenizer" / "merges.txt"),
        **kwargs,
    )
    lm.preprocessor = lm.preprocessor_cls(tokenizer=tokenizer)
    return lm


def _fill_configs(node, suffix: str, values: dict) -> None:
    """Put `values` into the config of every object whose class name ends with `suffix` in a
    saved keras-hub config tree (keeping what is there)."""
    if isinstance(node, dict):
        if str(node.get("class_name", "")).endswith(suffix) and "config" in node:
            for key, value in values.items():
                node["config"].setdefault(key, value)
        for value in node.values():
            _fill_configs(value, suffix, values)
    elif isinstance(node, list):
        for value in node:
            _fill_configs(value, suffix, values)
