"""Optional: the real `tensorflow_model_server` on 127.0.0.1, where one is installed.

Set `TF_SERVING_BIN` to the binary's path to run it. It cannot be installed on this project's
CI machines (no Debian/PyPI build, no Docker), so there it is skipped and reported as skipped;
the same contract is checked without a server by `ftk.export.serving` in every export.
"""

import base64
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import image_run_config

from ftk.runs import pipeline as runner
from ftk.tuning.processes import free_port

BINARY = os.environ.get("TF_SERVING_BIN", "")

pytestmark = pytest.mark.skipif(
    not (BINARY and Path(BINARY).is_file()),
    reason="TF_SERVING_BIN is not set to a tensorflow_model_server binary",
)


def test_real_tf_serving_answers_like_keras(tmp_path, resnet_preset, image_folder):
    config = image_run_config(tmp_path, resnet_preset, image_folder, "data.on_bad_images=skip")
    version = Path(runner.run(config, verbose=0)["export"]["version_dir"])
    grpc_port, rest_port = free_port(), free_port()
    server = subprocess.Popen(
        [
            BINARY,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            "--model_name=colours",
            f"--model_base_path={version.parent}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{rest_port}/v1/models/colours"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the warmup requests run before it is AVAILABLE
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if "AVAILABLE" in response.read().decode():
                        break
            except OSError:
                time.sleep(0.5)
        reference = json.loads((version / "assets.extra" / "ftk_verify.json").read_text())
        folder = version / "assets.extra" / "ftk_verify"
        instances = [
            {"b64": base64.b64encode((folder / n).read_bytes()).decode()}
            for n in reference["images"]
        ]
        body = json.dumps({"instances": instances}).encode()
        request = urllib.request.Request(f"{url}:predict", body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.loads(response.read())["predictions"]
        got = np.array([p["probabilities"] for p in predictions])
        np.testing.assert_allclose(got, reference["probabilities"], atol=1e-4)
    finally:
        server.terminate()
        server.wait(timeout=30)
