"""ONNX export of a keras-hub causal LM's forward pass: `token_ids` and `padding_mask` (int32,
`[batch, sequence]`, both dynamic) in, `logits` (float32, `[batch, sequence, vocabulary]`) out,
the weights as ONNX external data in one file beside the graph (`model.onnx.data`).

**Runs under the torch Keras backend** (`KERAS_BACKEND=torch`): the model is exported with
`torch.onnx.export`. Under TensorFlow, tf2onnx's graph optimizer needed more than 9 GB for the
135M-parameter SmolLM2 (see `docs/results/2026-12-03-lm-onnx.md`); the torch exporters need
2.3-2.7 GB (dynamo) or 4.1-4.2 GB (TorchScript). A process on another backend runs the CLI in a
subprocess, under a memory cap it sets itself:

    prlimit --as=9000000000 python -m ftk.export.lm_onnx smollm2_135m_instruct out/model.onnx

Two routes, chosen by what is installed:

- `"dynamo"` (preferred): `torch.onnx.export(dynamo=True)`; needs `onnxscript`, which ftk does
  not yet depend on. Graph and weights are written as they come.
- `"torchscript"`: `torch.onnx.export(dynamo=False)`, the exporter Keras' own
  `model.export(format="onnx")` uses when shapes are dynamic. Its graph has `Transpose` nodes
  with negative axes in `perm`, which onnxruntime rejects: they are made positive here, and the
  weights are moved to external data. The tied token embedding is stored twice (+113 MB for
  SmolLM2).

Tokenisation and generation stay outside ONNX. On SmolLM2-135M-Instruct both routes gave logits
within 8.3e-5 of Keras (torch backend) on two text prompts, up to 1.75e-4 on random token ids:
float32 round-off (see `DEFAULT_TOLERANCE`). Positions where `padding_mask` is 0 differ more (up to
5e-4) and are not compared: their logits are meaningless.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

INPUTS = ("token_ids", "padding_mask")
OUTPUT = "logits"
TORCHSCRIPT_OPSET = 18
# The CLI's default bound on |ONNX - Keras| logits: float32 round-off alone reaches 1e-4 at
# SmolLM2's logit scale (|logits| up to ~35): 0.5-1.75e-4 here, and Keras' own TensorFlow and
# torch backends differ by 9.7e-5 on the same weights.
DEFAULT_TOLERANCE = 1e-3


def data_path(path: Path) -> Path:
    """The external-data file of the ONNX model at `path`."""
    return path.with_name(path.name + ".data")


def _route() -> str:
    return "dynamo" if importlib.util.find_spec("onnxscript") is not None else "torchscript"


def _forward_module(model):
    """A `torch.nn.Module` taking `(token_ids, padding_mask)` positionally: the keras-hub
    `CausalLM` (a functional model whose call returns the logits)."""
    import torch

    class Forward(torch.nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm

        def forward(self, token_ids, padding_mask):
            return self.lm({"token_ids": token_ids, "padding_mask": padding_mask})

    # Keras' torch layers list their variables as torch parameters once, when built; loading
    # a preset's weights afterwards replaces some variables' tensors, and the TorchScript tracer
    # then fails on a weight it cannot find among the parameters ("Cannot insert a Tensor that
    # requires grad as a constant"). List them again.
    if hasattr(model, "_track_variables"):
        model._track_variables()
    return Forward(model).eval()


def _export_dynamo(module, args, path: Path) -> None:
    import torch

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    axes = {0: batch, 1: sequence}
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_shapes={name: axes for name in INPUTS},
            report=False,
            verbose=False,
        )
    program.optimize()
    program.save(str(path), external_data=True)


def _export_torchscript(module, args, path: Path) -> None:
    import onnx
    import torch

    axes = {0: "batch", 1: "sequence"}
    tmp = path.with_name(f".{path.name}.single")
    try:
        torch.onnx.export(
            module,
            args,
            str(tmp),
            dynamo=False,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes={**{name: axes for name in INPUTS}, OUTPUT: axes},
            opset_version=TORCHSCRIPT_OPSET,
            do_constant_folding=True,
        )
        proto = onnx.load_model(str(tmp))
        fix_negative_perms(proto)
        onnx.save_model(
            proto,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_path(path).name,
            size_threshold=1024,
        )
    finally:
        tmp.unlink(missing_ok=True)


def fix_negative_perms(proto) -> int:
    """Make negative axes in `Transpose` `perm` attributes positive (ONNX forbids them; the
    TorchScript exporter writes them for Keras' torch backend). Returns how many nodes."""
    fixed = 0
    for node in proto.graph.node:
        if node.op_type != "Transpose":
            continue
        for attribute in node.attribute:
            if attribute.name == "perm" and any(axis < 0 for axis in attribute.ints):
                rank = len(attribute.ints)
                axes = [axis % rank for axis in attribute.ints]
                del attribute.ints[:]
                attribute.ints.extend(axes)
                fixed += 1
    return fixed


def write_lm_onnx(model, path: Path, sample: dict) -> dict:
    """Export the forward pass of the keras-hub `CausalLM` `model` to `path` (an `.onnx` file;
    its weights go to `<path>.data` beside it). `sample` is a batch (`token_ids`,
    `padding_mask`; batch and sequence above 1) traced to build the graph. Torch backend only.

    Returns facts about the export: route, opset, paths, sizes in bytes and seconds.
    """
    import keras
    import torch

    if keras.backend.backend() != "torch":
        raise RuntimeError(
            "write_lm_onnx runs under the torch Keras backend (KERAS_BACKEND=torch), not "
            f"{keras.backend.backend()!r}: run `python -m ftk.export.lm_onnx` in a subprocess."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, data_path(path)):
        old.unlink(missing_ok=True)
    args = tuple(torch.from_numpy(np.asarray(sample[name], np.int32)) for name in INPUTS)
    route = _route()
    started = time.perf_counter()
    export = _export_dynamo if route == "dynamo" else _export_torchscript
    export(_forward_module(model), args, path)
    seconds = time.perf_counter() - started
    return {
        "route": route,
        "torch": torch.__version__,
        "opset": _opset(path),
        "path": str(path),
        "data_path": str(data_path(path)),
        "graph_bytes": path.stat().st_size,
        "data_bytes": data_path(path).stat().st_size,
        "seconds": round(seconds, 1),
    }


def _opset(path: Path) -> int:
    import onnx

    proto = onnx.load_model(str(path), load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def verify_lm_onnx(path: Path, inputs: dict, expected_logits: np.ndarray) -> float:
    """Run the ONNX model at `path` (external data beside it) with onnxruntime on `inputs`
    and return the largest absolute difference from `expected_logits` (Keras' logits), over
    the positions where `padding_mask` is nonzero (all positions without a mask). Any backend.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dtypes = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}
    feed = {
        arg.name: np.asarray(inputs[arg.name]).astype(dtypes[arg.type])
        for arg in session.get_inputs()
    }
    logits = session.run([OUTPUT], feed)[0]
    expected = np.asarray(expected_logits, np.float32)
    if logits.shape != expected.shape:
        raise ValueError(f"ONNX logits have shape {logits.shape}, Keras' {expected.shape}.")
    mask = inputs.get("padding_mask")
    keep = np.ones(expected.shape[:2], bool) if mask is None else np.asarray(mask).astype(bool)
    if not keep.any():
        raise ValueError("`padding_mask` has no nonzero position to compare.")
    return float(np.max(np.abs(logits[keep] - expected[keep])))


def sample_batch(vocabulary_size: int, batch: int = 2, sequence: int = 24, seed: int = 0) -> dict:
    """A fixed batch of random token ids; the second row is padded after half its length."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, vocabulary_size, size=(batch, sequence), dtype=np.int32)
    padding_mask = np.ones((batch, sequence), np.int32)
    if batch > 1:
        padding_mask[1, sequence // 2 :] = 0
        token_ids[1, sequence // 2 :] = 0
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def main(argv: list[str] | None = None) -> int:
    """`python -m ftk.export.lm_onnx PRESET OUTPUT`: export a preset's causal LM to ONNX and
    verify it against Keras; prints the facts as JSON. Sets the torch backend itself."""
    parser = argparse.ArgumentParser(prog="python -m ftk.export.lm_onnx", description=__doc__)
    parser.add_argument("preset", help="a `model.preset` value or a preset directory")
    parser.add_argument("output", type=Path, help="the .onnx file to write")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    args = parser.parse_args(argv)

    from ftk.runtime.backend import set_backend

    set_backend("torch")
    import keras

    from ftk.config.schema import ModelConfig
    from ftk.presets.resolve import resolve_preset
    from ftk.tasks.causal_lm.model import build_causal_lm

    model = build_causal_lm(resolve_preset(args.preset), ModelConfig(dropout=0.0))
    sample = sample_batch(model.backbone.vocabulary_size)
    expected = keras.ops.convert_to_numpy(model(sample))
    facts = write_lm_onnx(model, args.output, sample)
    del model
    facts["max_abs_diff"] = verify_lm_onnx(args.output, sample, expected)
    facts["tolerance"] = args.tolerance
    print(json.dumps(facts, indent=2))
    if facts["max_abs_diff"] > args.tolerance:
        print(
            f"ONNX logits are {facts['max_abs_diff']:.3g} from Keras' (tolerance "
            f"{args.tolerance:g}).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
