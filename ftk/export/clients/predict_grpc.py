"""Ask TF Serving's gRPC API for predictions (a PredictRequest, as TF Serving's own clients do).

Usage: python predict_grpc.py INPUT ... [--target HOST:8500]
INPUT is a text, or an image file when the model takes image bytes.
Needs tensorflow-serving-api and grpcio (ftk installs both).
"""

import sys
from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

MODEL = "my_model"
INPUT = "text"
BINARY = INPUT.endswith("_bytes")


def predict(args: list[str], target: str = "localhost:8500") -> dict:
    values = [Path(a).read_bytes() for a in args] if BINARY else [a.encode() for a in args]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "serving_default"
    request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=30)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def main(argv: list[str]) -> None:
    target = "localhost:8500"
    if "--target" in argv:
        i = argv.index("--target")
        target, argv = argv[i + 1], argv[:i] + argv[i + 2 :]
    out = predict(argv, target)
    if "class_name" not in out:  # not a classifier: every output as it came, per input
        for i, arg in enumerate(argv):
            print({name: value[i].tolist() for name, value in out.items()}, arg, sep="\t")
        return
    for arg, name, p in zip(argv, out["class_name"], out["probabilities"], strict=True):
        print(f"{name.decode()}\t{p.max():.4f}\t{arg}")


if __name__ == "__main__":
    main(sys.argv[1:])
