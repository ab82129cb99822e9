"""Ask TF Serving's REST API for predictions (standard library only).

Usage: python predict_rest.py INPUT ... [--url http://HOST:8501]
INPUT is a text, or an image file when the model takes image bytes (sent as {"b64": ...}).
Signature serving_default: one string input -> probabilities, class_id, class_name.
"""

import base64
import json
import sys
import urllib.request
from pathlib import Path

MODEL = "my_model"
INPUT = "text"
BINARY = INPUT.endswith("_bytes")


def predict(args: list[str], url: str = "http://localhost:8501") -> list[dict]:
    if BINARY:
        instances = [{"b64": base64.b64encode(Path(a).read_bytes()).decode()} for a in args]
    else:
        instances = list(args)
    body = json.dumps({"instances": instances}).encode()
    request = urllib.request.Request(
        f"{url}/v1/models/{MODEL}:predict", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["predictions"]


def main(argv: list[str]) -> None:
    url = "http://localhost:8501"
    if "--url" in argv:
        i = argv.index("--url")
        url, argv = argv[i + 1], argv[:i] + argv[i + 2 :]
    for arg, p in zip(argv, predict(argv, url), strict=True):
        if "class_name" in p:  # a classifier
            print(f"{p['class_name']}\t{max(p['probabilities']):.4f}\t{arg}")
        else:  # any other task: its outputs as they came
            print(f"{json.dumps(p, ensure_ascii=False)}\t{arg}")


if __name__ == "__main__":
    main(sys.argv[1:])
