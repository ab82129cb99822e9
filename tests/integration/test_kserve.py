"""KServe: the InferenceService manifests (`ftk.export.kserve.write_manifests`), and KServe's
Python model server (`python -m ftk.export.kserve.server`) on a real export, started on
127.0.0.1 and answering V1 and V2 requests with the Keras model's probabilities."""

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import save_length_model, write_tiny_config

from ftk.config import load_config
from ftk.export.kit import GENERATED_MARK
from ftk.export.kserve import API_VERSION, write_manifests
from ftk.runs import pipeline as runner

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def exported(tiny_preset, tiny_csv, tmp_path_factory):
    """A finished run on the tiny preset with a SavedModel export (no ONNX, no preset), in a
    folder with `serving/` as a baked project has (its exports write the manifests there)."""
    tmp = tmp_path_factory.mktemp("kserve_run")
    (tmp / "serving").mkdir()
    path = write_tiny_config(tmp, tiny_preset, tiny_csv, "onnx = false", "preset = false")
    summary = runner.run(load_config(path), verbose=0)
    return Path(summary["run_dir"]), Path(summary["export"]["version_dir"])


def test_a_baked_project_export_writes_the_manifests(exported):
    import yaml

    _, version_dir = exported
    folder = version_dir.parents[2] / "serving" / "kserve"
    tf_serving = yaml.safe_load((folder / "inferenceservice-tensorflow.yaml").read_text())
    assert tf_serving["kind"] == "InferenceService"
    assert tf_serving["spec"]["predictor"]["model"]["modelFormat"]["name"] == "tensorflow"
    assert (folder / "inferenceservice-python.yaml").is_file()
    assert not (folder / "inferenceservice-onnx.yaml").exists()  # this export has no ONNX


def _http(url: str, body: dict | None = None, timeout: float = 60.0) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _start_server(model_dir: Path, name: str, logs: Path):
    """The server in a subprocess on 127.0.0.1 (a free port); returns (process, base URL)."""
    out, err = logs / "server.out", logs / "server.err"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "ftk.export.kserve.server", "--model_dir", str(model_dir)]
    command += ["--model_name", name, "--http_port", "0", "--host", "127.0.0.1"]
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT, env=env)
    return proc, out, err


def _wait_ready(proc, out: Path, err: Path, name: str, deadline: float) -> str:
    def failure(what: str) -> str:
        return f"{what}\n--- stdout\n{out.read_text()}\n--- stderr (end)\n{err.read_text()[-3000:]}"

    base = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, failure(f"the server exited with {proc.returncode}")
        if base is None:
            lines = [ln for ln in out.read_text().splitlines() if ln.startswith("Listening on ")]
            base = lines[0].split()[-1] if lines else None
        if base is not None:
            try:
                if _http(f"{base}/v2/models/{name}/ready", timeout=2)[0] == 200:
                    return base
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)
    raise AssertionError(failure(f"the server was not ready within {READY_TIMEOUT:.0f} s"))


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def test_kserve_server_answers_v1_and_v2_like_keras(exported, tmp_path):
    run_dir, version_dir = exported
    reference = json.loads((run_dir / "verify_reference.json").read_text())
    texts = reference["inputs"]
    expected = np.asarray(reference["probabilities"], dtype=np.float32)
    labels = (version_dir / "assets.extra" / "labels.txt").read_text().split()
    expected_names = [labels[i] for i in expected.argmax(-1)]
    name = "tiny"

    # The model folder: the server takes its highest version (the only one here).
    proc, out, err = _start_server(version_dir.parent, name, tmp_path)
    try:
        base = _wait_ready(proc, out, err, name, time.monotonic() + READY_TIMEOUT)
        assert f"Loaded {version_dir}" in out.read_text()

        status, v1 = _http(f"{base}/v1/models/{name}:predict", {"instances": texts})
        assert status == 200, v1
        rows = v1["predictions"]
        assert len(rows) == len(texts)
        got = np.asarray([row["probabilities"] for row in rows], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-4)
        assert [row["class_name"] for row in rows] == expected_names

        request = {
            "id": "request-1",
            "inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}],
        }
        status, v2 = _http(f"{base}/v2/models/{name}/infer", request)
        assert status == 200, v2
        assert v2["id"] == "request-1" and v2["model_name"] == name
        outputs = {o["name"]: o for o in v2["outputs"]}
        probabilities = outputs["probabilities"]
        assert probabilities["datatype"] == "FP32"
        assert probabilities["shape"] == [len(texts), len(labels)]
        got = np.asarray(probabilities["data"], dtype=np.float32).reshape(probabilities["shape"])
        np.testing.assert_allclose(got, expected, atol=1e-4)
        assert outputs["class_name"]["datatype"] == "BYTES"
        assert outputs["class_name"]["data"] == expected_names

        status, metadata = _http(f"{base}/v2/models/{name}")
        assert status == 200
        assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        assert {o["name"] for o in metadata["outputs"]} == set(outputs)

        wrong = {"inputs": [{"name": "txt", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
        status, error = _http(f"{base}/v2/models/{name}/infer", wrong)
        assert status == 400 and "['text']" in error["error"], error
    finally:
        _stop(proc)


def test_predictor_takes_image_bytes_as_b64_in_v1_and_v2(tmp_path):
    """An `image_bytes` signature (here one that scores the bytes' length), called in process:
    V1 `{"b64": ...}` values and V2 BYTES as base64 strings reach the graph as the raw bytes."""
    from kserve import InferInput, InferRequest
    from kserve.errors import InvalidInput

    from ftk.export.kserve.server import SavedModelPredictor

    save_length_model(tmp_path / "1", "image_bytes")
    model = SavedModelPredictor("images", tmp_path / "1")
    assert model.load() and model.ready
    assert model.get_input_types() == [{"name": "image_bytes", "datatype": "BYTES", "shape": [-1]}]
    images = [b"\x89PNG\r\n\x1a\n\x00\xff", b"\xff\xd8\xff"]
    encoded = [base64.b64encode(b).decode("ascii") for b in images]
    expected = [[n / (n + 1), 1 / (n + 1)] for n in map(len, images)]

    v1 = asyncio.run(model.predict({"instances": [{"b64": e} for e in encoded]}))
    got = [row["probabilities"] for row in v1["predictions"]]
    np.testing.assert_allclose(got, expected, rtol=1e-6)

    tensor = InferInput(name="image_bytes", shape=[2], datatype="BYTES", data=encoded)
    v2 = asyncio.run(model.predict(InferRequest("images", infer_inputs=[tensor], request_id="r")))
    outputs = {o.name: o for o in v2.outputs}
    np.testing.assert_allclose(outputs["probabilities"].as_numpy(), expected, rtol=1e-6)
    assert outputs["class_id"].datatype == "INT32" and outputs["class_name"].datatype == "BYTES"

    bad = InferInput(name="image_bytes", shape=[1], datatype="BYTES", data=["not base64!"])
    with pytest.raises(InvalidInput, match="base64"):
        asyncio.run(model.predict(InferRequest("images", infer_inputs=[bad])))


def test_server_finds_the_version_and_says_what_it_expects(tmp_path):
    from ftk.export.kserve.server import resolve_version_dir

    for version in ("1", "2", "10", "notes"):
        (tmp_path / "model" / version).mkdir(parents=True)
        (tmp_path / "model" / version / "saved_model.pb").touch()
    (tmp_path / "model" / "11").mkdir()  # an unfinished version: no saved_model.pb
    assert resolve_version_dir(tmp_path / "model") == tmp_path / "model" / "10"
    assert resolve_version_dir(tmp_path / "model" / "2") == tmp_path / "model" / "2"
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="Received '.*nowhere', which does not exist"):
        resolve_version_dir(missing)
    with pytest.raises(FileNotFoundError, match="holds no saved_model.pb"):
        resolve_version_dir(tmp_path / "model" / "11")


def test_manifests(tmp_path):
    version = tmp_path / "saved_models" / "film_genres" / "3"
    (version / "onnx").mkdir(parents=True)
    (version / "onnx" / "model.onnx").touch()
    (version / "openvino").mkdir()
    folder = tmp_path / "serving" / "kserve"
    uri = "s3://bucket/models/film_genres/"
    paths = write_manifests(folder, "film_genres", storage_uri=uri, version_dir=version)
    kinds = [p.name.removeprefix("inferenceservice-").removesuffix(".yaml") for p in paths]
    assert kinds == ["tensorflow", "onnx", "openvino", "python"]
    docs = {}
    for kind, path in zip(kinds, paths, strict=True):
        text = path.read_text()
        assert GENERATED_MARK in text.splitlines()[0]
        docs[kind] = yaml.safe_load(text)
        assert docs[kind]["apiVersion"] == API_VERSION == "serving.kserve.io/v1beta1"
        assert docs[kind]["kind"] == "InferenceService"
    names = [docs[k]["metadata"]["name"] for k in kinds]
    assert names == [
        "film-genres",
        "film-genres-onnx",
        "film-genres-openvino",
        "film-genres-python",
    ]

    model = {k: docs[k]["spec"]["predictor"].get("model") for k in kinds}
    assert model["tensorflow"]["modelFormat"] == {"name": "tensorflow"}
    assert model["tensorflow"]["storageUri"] == "s3://bucket/models/film_genres"
    assert model["tensorflow"]["runtimeVersion"] == "2.20.0"  # TF Text >= 2.16 inside
    assert model["onnx"]["modelFormat"] == {"name": "onnx"}
    assert model["onnx"]["storageUri"] == "s3://bucket/models/film_genres/3/onnx"
    assert model["onnx"]["protocolVersion"] == "v2"
    assert model["openvino"]["modelFormat"] == {"name": "openvino_ir"}
    assert model["openvino"]["storageUri"] == "s3://bucket/models/film_genres/3/openvino"
    tensorflow_text = paths[0].read_text()
    assert "tensorflow/serving#2267" in tensorflow_text and "runtimeVersion" in tensorflow_text
    assert "token ids" in paths[1].read_text()

    (container,) = docs["python"]["spec"]["predictor"]["containers"]
    command = container["command"] + container["args"]
    assert command[:3] == ["python", "-m", "ftk.export.kserve.server"]
    assert command[command.index("--model_dir") + 1] == "/mnt/models"
    assert command[command.index("--model_name") + 1] == "film_genres"
    assert container["env"] == [{"name": "STORAGE_URI", "value": "s3://bucket/models/film_genres"}]
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": "/v2/models/film_genres/ready", "port": 8080}
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert set(container["resources"]) == {"requests", "limits"}

    # A manifest the user edited (mark removed) is left alone; the others are rewritten.
    user = "# my own\napiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
    paths[1].write_text(user)
    again = write_manifests(folder, "film_genres", storage_uri=uri, version_dir=version)
    assert paths[1] not in again and len(again) == 3
    assert paths[1].read_text() == user

    # Without ONNX and OpenVINO in the version: the TF Serving and Python manifests only.
    plain = tmp_path / "saved_models" / "news" / "1"
    plain.mkdir(parents=True)
    written = write_manifests(tmp_path / "plain", "news", version_dir=plain)
    assert [p.name for p in written] == [
        "inferenceservice-tensorflow.yaml",
        "inferenceservice-python.yaml",
    ]
    tf_doc = yaml.safe_load(written[0].read_text())
    assert tf_doc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/news"

    with pytest.raises(ValueError, match="'9 lives!'"):
        write_manifests(tmp_path / "bad", "9 lives!")
    with pytest.raises(FileNotFoundError, match="version folder"):
        write_manifests(tmp_path / "bad", "news", version_dir=tmp_path / "missing" / "1")
