"""TF Serving's request rules, checked without a server: REST JSON (row and columnar, b64),
malformed requests it would refuse, gRPC PredictRequest round trips, warmup records, ops."""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import save_length_model

from ftk.errors import VerificationError
from ftk.export import serving
from ftk.export.serving import RestRequestError, parse_rest_request, rest_response
from ftk.tasks.classification.verify import check_signatures

TEXT = {"text": tf.TensorSpec([None], tf.string, name="text")}
PIXELS = {"pixels": tf.TensorSpec([None, 2, 2, 3], tf.float32, name="pixels")}
TWO = {
    "token_ids": tf.TensorSpec([None, None], tf.int32),
    "padding_mask": tf.TensorSpec([None, None], tf.bool),
}


def test_row_and_columnar_text():
    row = parse_rest_request({"instances": ["a café", "b"]}, TEXT)
    columnar = parse_rest_request({"inputs": {"text": ["a café", "b"]}}, TEXT)
    bare = parse_rest_request(
        {"inputs": ["a café", "b"], "signature_name": "serving_default"}, TEXT
    )
    for parsed in (row, columnar, bare):
        assert parsed["text"].tolist() == ["a café".encode(), b"b"]


def test_b64_values_are_binary_strings():
    jpeg = b"\xff\xd8\xff\xe0 not utf-8 \x80"
    body = {"instances": [{"b64": base64.b64encode(jpeg).decode()}]}
    parsed = parse_rest_request(json.loads(json.dumps(body)), {"image_bytes": TEXT["text"]})
    assert parsed["image_bytes"].tolist() == [jpeg]


def test_several_named_inputs_row_format():
    body = {"instances": [{"token_ids": [1, 2], "padding_mask": [True, False]}] * 2}
    parsed = parse_rest_request(body, TWO)
    assert parsed["token_ids"].dtype == np.int32 and parsed["token_ids"].shape == (2, 2)
    assert parsed["padding_mask"].dtype == bool


def test_pixels_take_ints_and_floats():
    image = [[[0, 1.5, 255]] * 2] * 2
    parsed = parse_rest_request({"instances": [image]}, PIXELS)
    assert parsed["pixels"].dtype == np.float32 and parsed["pixels"].shape == (1, 2, 2, 3)


@pytest.mark.parametrize(
    ("body", "specs", "match"),
    [
        ({"instances": ["a"], "inputs": ["a"]}, TEXT, "Missing 'inputs' or 'instances'"),
        ({"examples": ["a"]}, TEXT, r"Unknown key\(s\).*examples"),
        ({}, TEXT, "Missing 'inputs' or 'instances'"),
        ({"instances": []}, TEXT, "non-empty list"),
        ({"instances": [3]}, TEXT, "expected a string for a DT_STRING input, got int"),
        ({"instances": [{"b64": "***"}]}, TEXT, "not valid base64"),
        ({"instances": [{"b64": "AA==", "x": 1}]}, TEXT, "exactly the inputs"),
        ({"instances": [{"txt": "a"}]}, TEXT, r"exactly the inputs \['text'\]; got \['txt'\]"),
        ({"inputs": {"txt": ["a"]}}, TEXT, r"'inputs' must name exactly the inputs"),
        ({"instances": [[[[0, 0, "red"]] * 2] * 2]}, PIXELS, "expected float32, got str"),
        ({"instances": [[[[0, 0, True]] * 2] * 2]}, PIXELS, "got a boolean"),
        ({"instances": [[[[0, 0, 0]] * 2, [[0, 0]]]]}, PIXELS, "ragged batch"),
        ({"instances": [[[0, 0, 0]] * 2]}, PIXELS, r"shape \[1, 2, 3\] does not fit"),
        ({"instances": [[["a"]]]}, TEXT, r"does not fit the signature's \[-1\]"),
        (
            {"instances": [{"token_ids": [1, 2], "padding_mask": [True]}, {"token_ids": [1]}]},
            TWO,
            "exactly the inputs",
        ),
    ],
)
def test_malformed_requests_are_refused(body, specs, match):
    with pytest.raises(RestRequestError, match=match):
        parse_rest_request(body, specs)


def test_response_formats():
    outputs = {
        "probabilities": tf.constant([[0.25, 0.75]]),
        "class_id": tf.constant([1]),
        "class_name": tf.constant(["sport"]),
        "thumbnail_bytes": tf.constant([b"\x89PNG"]),
    }
    row = json.loads(json.dumps(rest_response(outputs, row=True)))
    assert row["predictions"][0]["class_name"] == "sport"
    assert row["predictions"][0]["probabilities"] == [0.25, 0.75]
    assert row["predictions"][0]["thumbnail_bytes"] == {
        "b64": base64.b64encode(b"\x89PNG").decode()
    }
    columnar = rest_response(outputs, row=False)
    assert columnar["outputs"]["class_id"] == [1]
    assert rest_response({"y": tf.constant([1.0, 2.0])}, row=True) == {"predictions": [1.0, 2.0]}


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory):
    """A SavedModel with a string signature `text` that scores each string's length."""
    path = tmp_path_factory.mktemp("echo") / "echo" / "1"
    save_length_model(path, "text")
    return path


def test_grpc_round_trip_and_warmup(echo_model):
    loaded = tf.saved_model.load(str(echo_model))
    inputs = {"text": np.array([b"abc", b""], dtype=object)}
    request = serving.predict_request("echo", inputs)
    assert request.model_spec.name == "echo" and request.inputs["text"].dtype == tf.string
    outputs = serving.grpc_round_trip(loaded, request)
    np.testing.assert_allclose(outputs["probabilities"], [[0.75, 0.25], [0.0, 1.0]])
    assert outputs["class_name"].tolist() == [b"long", b"short"]

    assert serving.write_warmup(echo_model, "echo", inputs) == 2
    requests = serving.read_warmup(echo_model)
    assert [r.inputs["text"].tensor_shape.dim[0].size for r in requests] == [1, 1]
    again = serving.grpc_round_trip(loaded, requests[1])
    assert again["class_name"].tolist() == [b"short"]


def test_ops_are_core_or_refused(echo_model, monkeypatch):
    report = serving.check_ops(echo_model)
    assert "StringLength" in report["core"] and report["tensorflow_text"] == []
    monkeypatch.setattr(serving, "graph_ops", lambda path: {"StringLength", "MyCustomOp"})
    with pytest.raises(VerificationError, match=r"TF Serving does not provide: \['MyCustomOp'\]"):
        serving.check_ops(echo_model)


def test_signature_contract(echo_model):
    loaded = tf.saved_model.load(str(echo_model))
    check_signatures(loaded, num_classes=2, binary=False)
    with pytest.raises(VerificationError, match=r"outputs .*float32 \[-1, 3\]"):
        check_signatures(loaded, num_classes=3, binary=False)
    with pytest.raises(VerificationError, match=r"Signatures are \['serving_default'\]"):
        check_signatures(loaded, num_classes=2, binary=True)
