"""KServe `InferenceService` manifests for an ftk export, and (`ftk.export.kserve.server`) a
KServe Python model server for its SavedModel.

`write_manifests(folder, model_name)` writes one manifest per way of serving the export:

- `inferenceservice-tensorflow.yaml`: the SavedModel on KServe's TensorFlow runtime (TF
  Serving), `storageUri` = the model folder holding the numbered `<version>/` folders;
- `inferenceservice-onnx.yaml`: `<version>/onnx/` on the ONNX runtime (Triton), token ids in;
- `inferenceservice-openvino.yaml`: `<version>/openvino/` on an OpenVINO Model Server runtime,
  only when `version_dir` is given and holds `openvino/`;
- `inferenceservice-python.yaml`: a container running `python -m ftk.export.kserve.server`
  (raw text or image bytes in, V1 and V2 protocols).

Each file carries `GENERATED_MARK` on its first line; a file without it is the user's and is
never replaced. Plain `yaml.safe_dump`, no templating; nothing here imports kserve.

```python
write_manifests(Path("serving/kserve"), "bbc_news", version_dir=Path("saved_models/bbc_news/3"))
```
"""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path

import yaml

from ftk.export.kit import GENERATED_MARK, _ours
from ftk.files import write_atomic

logger = logging.getLogger("ftk")

API_VERSION = "serving.kserve.io/v1beta1"
DEFAULT_IMAGE = "ftk-kserve:latest"
TF_SERVING_VERSION = "2.20.0"  # the first tensorflow/serving tag with TF Text >= 2.16
HTTP_PORT = 8080
RESOURCES = {
    "requests": {"cpu": "1", "memory": "2Gi"},
    "limits": {"cpu": "2", "memory": "4Gi"},
}
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

TENSORFLOW_NOTE = """\
The SavedModel export on KServe's TensorFlow runtime (TF Serving). storageUri is the model
folder holding the numbered version folders (1/, 2/, ...): TF Serving serves the highest and
ignores the onnx/, openvino/ and preset/ folders inside each. The URL's model name is this
InferenceService's name: POST /v1/models/{isvc}:predict {{"instances": ["some text"]}}.
The exported graph tokenizes with TF Text ops, so the runtime image must be a
tensorflow/serving build with TF Text >= 2.16 ops linked in (tensorflow/serving#2267); an older
image fails to load the model with "Op type not registered". runtimeVersion (the
tensorflow/serving image tag) is therefore {tf_serving}, the first release built with it
(tags 2.16.1 to 2.19.1 carry TF Text 2.12.1); a newer tag works too, or set
spec.predictor.model.image to a full image of your own."""

ONNX_NOTE = """\
onnx/model.onnx on KServe's ONNX runtime (Triton, Open Inference Protocol v2). The ONNX model
takes token ids (the tokenizer's outputs: token ids, segment ids, padding mask) for text tasks,
pixels for image tasks, not raw text: tokenize with the export's onnx/preprocessor/ (keras-hub)
first. Triton reads a model repository (<model>/<n>/model.onnx); if your runtime does not find
the model here, copy model.onnx to <repo>/{isvc}/1/model.onnx and point storageUri at <repo>."""

OPENVINO_NOTE = """\
openvino/ on an OpenVINO Model Server ServingRuntime (modelFormat openvino_ir; not one of
KServe's default runtimes: install one, e.g. Open Data Hub's kserve-ovms). The folder holds
text_model.xml/.bin (raw strings in; the server needs the openvino-tokenizers extension) and
model.xml/.bin (token ids in). OpenVINO Model Server loads a model from numbered version
folders: copy the pair you serve to <repo>/1/ and point storageUri at <repo> if it does not
load from here."""

PYTHON_NOTE = """\
The SavedModel on KServe's Python model server (ftk.export.kserve.server): raw text or image
bytes in, V1 ({{"instances": [...]}}) and Open Inference Protocol v2 (BYTES inputs) out.
KServe downloads STORAGE_URI (the model folder with its numbered versions) into /mnt/models;
the server loads the highest version. The image must hold Python with ftk and its [kserve]
extra (kserve itself installed with pip --no-deps); replace {image} with yours.
Endpoints: /v1/models/{name}:predict, /v2/models/{name}/infer, /v2/models/{name}/ready."""


def k8s_name(model_name: str) -> str:
    """`model_name` as a Kubernetes resource name (DNS-1035: lowercase letters, digits, `-`)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    if not _DNS_1035.match(name) or len(name) > 50:
        raise ValueError(
            f"Cannot name an InferenceService after the model name {model_name!r} (as {name!r}): "
            "expected a name that starts with a letter and, with '_' read as '-', holds only "
            "lowercase letters, digits and '-', at most 50 characters."
        )
    return name


def _resources() -> dict:
    return {key: dict(value) for key, value in RESOURCES.items()}


def _service(name: str, predictor: dict) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "ftk"}},
        "spec": {"predictor": predictor},
    }


def _model(fmt: str, uri: str, protocol: str, runtime_version: str | None = None) -> dict:
    model = {"modelFormat": {"name": fmt}, "protocolVersion": protocol}
    if runtime_version:
        model["runtimeVersion"] = runtime_version
    return {"model": {**model, "storageUri": uri, "resources": _resources()}}


def _python_predictor(model_name: str, uri: str, image: str) -> dict:
    return {
        "containers": [
            {
                "name": "kserve-container",
                "image": image,
                "command": ["python", "-m", "ftk.export.kserve.server"],
                "args": [
                    "--model_dir",
                    "/mnt/models",
                    "--model_name",
                    model_name,
                    "--http_port",
                    str(HTTP_PORT),
                    "--host",
                    "0.0.0.0",
                ],
                "env": [{"name": "STORAGE_URI", "value": uri}],
                "ports": [{"containerPort": HTTP_PORT, "protocol": "TCP"}],
                "resources": _resources(),
                "readinessProbe": {
                    "httpGet": {"path": f"/v2/models/{model_name}/ready", "port": HTTP_PORT},
                    "initialDelaySeconds": 10,
                    "periodSeconds": 5,
                    "timeoutSeconds": 2,
                    "failureThreshold": 60,
                },
            }
        ]
    }


def write_manifests(
    folder: Path,
    model_name: str,
    storage_uri: str | None = None,
    version_dir: Path | None = None,
    image: str = DEFAULT_IMAGE,
) -> list[Path]:
    """Write the InferenceService manifests into `folder`; returns the paths written.

    `storage_uri` is where the cluster finds the model folder (the one holding `<version>/`
    folders; default `pvc://models/<model_name>`). `version_dir` (a local `<version>/` folder of
    the export) names the version the ONNX and OpenVINO manifests point at (default `1`): the
    ONNX manifest is left out when it has no `onnx/model.onnx`, the OpenVINO one unless it has
    `openvino/`. `image` is the container image of the Python server's manifest.
    """
    name = k8s_name(model_name)
    uri = (storage_uri or f"pvc://models/{model_name}").rstrip("/")
    version = "1"
    if version_dir is not None:
        version_dir = Path(version_dir)
        if not version_dir.is_dir() or not version_dir.name.isdigit():
            raise FileNotFoundError(
                f"version_dir should be an export's version folder (saved_models/<model>/<n>/), "
                f"got {str(version_dir)!r}"
                + ("" if version_dir.is_dir() else ", which does not exist")
                + "."
            )
        version = version_dir.name
    tensorflow = _model("tensorflow", uri, "v1", TF_SERVING_VERSION)
    documents = {"tensorflow": (TENSORFLOW_NOTE, _service(name, tensorflow))}
    if version_dir is None or (version_dir / "onnx" / "model.onnx").is_file():
        onnx = _model("onnx", f"{uri}/{version}/onnx", "v2")
        documents["onnx"] = (ONNX_NOTE, _service(f"{name}-onnx", onnx))
    if version_dir is not None and (version_dir / "openvino").is_dir():
        openvino = _model("openvino_ir", f"{uri}/{version}/openvino", "v2")
        documents["openvino"] = (OPENVINO_NOTE, _service(f"{name}-openvino", openvino))
    python = _python_predictor(model_name, uri, image)
    documents["python"] = (PYTHON_NOTE, _service(f"{name}-python", python))

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mark = (
        f"# {GENERATED_MARK} for {model_name}; ftk rewrites this file unless you delete this line."
    )
    written = []
    for kind, (note, document) in documents.items():
        path = folder / f"inferenceservice-{kind}.yaml"
        if not _ours(path):
            logger.warning("Left %s as it is (no ftk mark); not regenerated.", path)
            continue
        isvc = document["metadata"]["name"]
        comments = note.format(
            isvc=isvc, name=model_name, image=image, tf_serving=TF_SERVING_VERSION
        )
        lines = textwrap.wrap(" ".join(comments.split()), 96)
        header = "\n".join([mark, *(f"# {line}" for line in lines)])
        body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        write_atomic(path, f"{header}\n{body}")
        written.append(path)
    return written
