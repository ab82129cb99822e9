"""ONNX building blocks for the raw-string model: constants, onnxruntime-extensions nodes, RE2
character classes, padding, and joining ragged strings back into one string per row."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

CONTRIB = "ai.onnx.contrib"  # onnxruntime-extensions' custom-op domain
INT64_MAX = np.iinfo(np.int64).max


def const(name: str, values, dtype=np.int64) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(values, dtype), name)
    )


def sconst(name: str, value: str, vector: bool = False) -> onnx.NodeProto:
    """A string constant: a scalar (ortx takes patterns/separators as scalars) or `[1]`."""
    t = helper.make_tensor(name, TensorProto.STRING, [1] if vector else [], [value.encode()])
    return helper.make_node("Constant", [], [name], value=t)


def node(op: str, inputs: list[str], outputs: list[str], **attrs) -> onnx.NodeProto:
    """An ortx node (domain ai.onnx.contrib)."""
    return helper.make_node(op, inputs, outputs, domain=CONTRIB, **attrs)


def char_class(chars) -> str:
    """An RE2 character-class body for `chars`, as \\x{..} ranges."""
    cps = sorted({ord(c) for c in chars})
    out, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
        i = j + 1
    return "".join(out)


def outer_constants() -> list[onnx.NodeProto]:
    """Constants shared by the outer graph and the Loop body (a name may be defined once
    across all scopes)."""
    return [
        const("zero", 0),
        const("one", 1),
        const("zero1", [0]),
        const("one1", [1]),
        const("minus1", [-1]),
        const("axes0", [0]),
        const("axes1", [1]),
        const("end", [INT64_MAX]),
        const("axis0", 0),
        sconst("empty", ""),
        sconst("empty1", "", True),
        sconst("space", " "),
    ]


def pad_nodes(name: str, length: str, out: str) -> list[onnx.NodeProto]:
    """Pad the 1-D int64 `name` at the end with 0 up to `length` (a [1] int64 tensor)."""
    return [
        helper.make_node("Shape", [name], [f"{name}_n"]),
        helper.make_node("Sub", [length, f"{name}_n"], [f"{name}_missing"]),
        helper.make_node("Concat", ["zero1", f"{name}_missing"], [f"{name}_pads"], axis=0),
        helper.make_node("Pad", [name, f"{name}_pads"], [out], mode="constant"),
    ]


def join_rows(values: str, splits: str, rows: str, out: str) -> list[onnx.NodeProto]:
    """Ragged -> a string per row, batched: `values` [T] with row splits `splits` [M+1]
    (`rows`: [1] holding M) -> `out` [M], each row's values concatenated.  Scatters the
    values into an [M, widest] grid of "" and joins along axis 1."""
    p = out + "_"
    return [
        helper.make_node("Shape", [values], [p + "T"]),
        helper.make_node("Squeeze", [p + "T"], [p + "Ts"]),
        helper.make_node("Range", ["zero", p + "Ts", "one"], [p + "k"]),
        # the row of each value: how many row starts (splits[1:M]) are at or before it
        helper.make_node("Slice", [splits, "one1", "minus1", "axes0"], [p + "inner"]),
        helper.make_node("Add", [p + "T", "one1"], [p + "T1"]),
        helper.make_node(
            "ConstantOfShape",
            [p + "T1"],
            [p + "marks0"],
            value=helper.make_tensor("v", TensorProto.INT64, [1], [0]),
        ),
        helper.make_node("Shape", [p + "inner"], [p + "ni"]),
        helper.make_node(
            "ConstantOfShape",
            [p + "ni"],
            [p + "ones"],
            value=helper.make_tensor("v", TensorProto.INT64, [1], [1]),
        ),
        helper.make_node(
            "ScatterElements",
            [p + "marks0", p + "inner", p + "ones"],
            [p + "marks"],
            axis=0,
            reduction="add",
        ),
        helper.make_node("CumSum", [p + "marks", "zero"], [p + "cum"]),
        helper.make_node("Slice", [p + "cum", "zero1", p + "T", "axes0"], [p + "row"]),
        helper.make_node("Gather", [splits, p + "row"], [p + "start"]),
        helper.make_node("Sub", [p + "k", p + "start"], [p + "col"]),
        helper.make_node("Unsqueeze", [p + "row", "axes1"], [p + "row2"]),
        helper.make_node("Unsqueeze", [p + "col", "axes1"], [p + "col2"]),
        helper.make_node("Concat", [p + "row2", p + "col2"], [p + "idx"], axis=1),
        # grid width: the longest row, at least 1
        helper.make_node("Slice", [splits, "one1", "end", "axes0"], [p + "hi"]),
        helper.make_node("Slice", [splits, "zero1", "minus1", "axes0"], [p + "lo"]),
        helper.make_node("Sub", [p + "hi", p + "lo"], [p + "lens"]),
        helper.make_node("Concat", ["one1", p + "lens"], [p + "lens1"], axis=0),
        helper.make_node("ReduceMax", [p + "lens1"], [p + "width"], keepdims=1),
        helper.make_node("Concat", [rows, p + "width"], [p + "shape"], axis=0),
        helper.make_node("Expand", ["empty", p + "shape"], [p + "grid0"]),
        helper.make_node("ScatterND", [p + "grid0", p + "idx", values], [p + "grid"]),
        node("StringJoin", [p + "grid", "empty", "one"], [out]),
    ]
