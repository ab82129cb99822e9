"""What TF Serving will do with an export, checked without a server.

- `parse_rest_request` turns a REST `:predict` body into the signature's input tensors by TF
  Serving's JSON rules (row `{"instances": [...]}` or columnar `{"inputs": ...}`, `{"b64": ...}`
  for binary strings) and refuses what TF Serving refuses (a missing or unknown input, a value of
  the wrong type, a ragged batch); `rest_response` renders outputs as TF Serving does.
- `predict_request` / `grpc_round_trip` build a `tensorflow_serving.apis.PredictRequest`,
  serialise it, parse it back and call the signature with its tensors.
- `graph_ops` lists the ops a SavedModel needs and `check_ops` fails on any op that neither core
  TensorFlow nor tensorflow-text (linked into TF Serving's own build) provides.
- `write_warmup` writes `assets.extra/tf_serving_warmup_requests`, which TF Serving replays when it
  loads a version, so the first real request does not pay for graph set-up.

Example:

```python
inputs = parse_rest_request({"instances": ["Shares rose."]}, signature_inputs(loaded))
outputs = loaded.signatures["serving_default"](**inputs)
rest_response(outputs, row=True)   # {"predictions": [{"probabilities": [...], ...}]}
```
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from ftk.errors import VerificationError

WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_EXAMPLES = 4
DEFAULT_SIGNATURE = "serving_default"


class RestRequestError(ValueError):
    """A request body that TF Serving would answer with an error (HTTP 400)."""


# --------------------------------------------------------------------------------------------
# REST (JSON) rules
# --------------------------------------------------------------------------------------------


def signature_inputs(loaded, signature: str = DEFAULT_SIGNATURE) -> dict:
    """`{input name: tf.TensorSpec}` of a loaded SavedModel's signature."""
    return dict(loaded.signatures[signature].structured_input_signature[1])


def _scalar(value, dtype, where: str):
    import tensorflow as tf

    if dtype == tf.string:
        if isinstance(value, dict):
            if set(value) != {"b64"} or not isinstance(value["b64"], str):
                raise RestRequestError(f'{where}: a binary value must be {{"b64": "..."}}.')
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise RestRequestError(f"{where}: 'b64' is not valid base64.") from None
        if not isinstance(value, str):
            raise RestRequestError(
                f"{where}: expected a string for a DT_STRING input, got {type(value).__name__}."
            )
        return value.encode("utf-8")
    if isinstance(value, bool) and dtype != tf.bool:
        raise RestRequestError(f"{where}: expected a number for {dtype.name}, got a boolean.")
    if dtype.is_floating and isinstance(value, int | float):
        return float(value)
    if dtype.is_integer and isinstance(value, int):
        return int(value)
    if dtype == tf.bool and isinstance(value, bool):
        return value
    raise RestRequestError(f"{where}: expected {dtype.name}, got {type(value).__name__} {value!r}.")


def _to_array(value, spec, where: str) -> np.ndarray:
    """A (nested) JSON list -> an array of `spec`'s dtype; ragged lists are refused."""

    def shape_of(v, path: str) -> tuple:
        if not isinstance(v, list):
            return ()
        shapes = {shape_of(item, f"{path}[{i}]") for i, item in enumerate(v)}
        if len(shapes) > 1:
            raise RestRequestError(
                f"{where}: expecting tensors of the same shape; {path} holds lists of different "
                "lengths (a ragged batch)."
            )
        return (len(v), *(shapes.pop() if shapes else ()))

    shape = shape_of(value, "value")
    flat: list = []

    def walk(v, path: str) -> None:
        if isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]")
        else:
            flat.append(_scalar(v, spec.dtype, f"{where} {path}"))

    walk(value, "value")
    dtype = object if spec.dtype.name == "string" else spec.dtype.as_numpy_dtype
    array = np.array(flat, dtype=dtype).reshape(shape)
    expected = spec.shape
    if expected.rank is not None and (
        array.ndim != expected.rank
        or any(
            e is not None and e != a for e, a in zip(expected.as_list(), array.shape, strict=True)
        )
    ):
        raise RestRequestError(
            f"{where}: shape {list(array.shape)} does not fit the signature's "
            f"{[-1 if d is None else d for d in expected.as_list()]}."
        )
    return array


def _named(value) -> bool:
    """A JSON object that names inputs (not a `{"b64": ...}` binary value)."""
    return isinstance(value, dict) and set(value) != {"b64"}


def parse_rest_request(body: dict, inputs: dict) -> dict[str, np.ndarray]:
    """The signature's input arrays for a REST `:predict` body, by TF Serving's JSON rules."""
    if not isinstance(body, dict):
        raise RestRequestError("The request body must be a JSON object.")
    unknown = set(body) - {"instances", "inputs", "signature_name"}
    if unknown:
        raise RestRequestError(f"Unknown key(s) in the request: {sorted(unknown)}.")
    if ("instances" in body) == ("inputs" in body):
        raise RestRequestError("Missing 'inputs' or 'instances' key (give exactly one).")
    names = sorted(inputs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise RestRequestError("'instances' must be a non-empty list.")
        if len(names) == 1 and not _named(instances[0]):
            columns = {names[0]: instances}
        else:
            columns = {name: [] for name in names}
            for i, instance in enumerate(instances):
                if not isinstance(instance, dict) or set(instance) != set(names):
                    got = (
                        sorted(instance) if isinstance(instance, dict) else type(instance).__name__
                    )
                    raise RestRequestError(
                        f"instances[{i}] must be an object with exactly the inputs {names}; "
                        f"got {got}."
                    )
                for name in names:
                    columns[name].append(instance[name])
    else:
        value = body["inputs"]
        if len(names) == 1 and not _named(value):
            columns = {names[0]: value}
        elif isinstance(value, dict) and set(value) == set(names):
            columns = value
        else:
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise RestRequestError(f"'inputs' must name exactly the inputs {names}; got {got}.")
    return {name: _to_array(columns[name], inputs[name], f"input '{name}'") for name in names}


def _json_value(name: str, value):
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind == "S":

        def render(v):
            if isinstance(v, list):
                return [render(x) for x in v]
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(v).decode("ascii")}
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(v).decode("ascii")}

        return render(array.tolist())
    return array.tolist()


def rest_response(outputs: dict, row: bool) -> dict:
    """TF Serving's JSON response: `{"predictions": [...]}` (row) or `{"outputs": {...}}`."""
    arrays = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in outputs.items()}
    if not row:
        values = {k: _json_value(k, a) for k, a in arrays.items()}
        return {"outputs": values if len(values) > 1 else next(iter(values.values()))}
    batch = len(next(iter(arrays.values())))
    rows = [{k: _json_value(k, a[i]) for k, a in arrays.items()} for i in range(batch)]
    if len(arrays) == 1:
        rows = [next(iter(r.values())) for r in rows]
    return {"predictions": rows}


def rest_instances(inputs: dict[str, np.ndarray]) -> list:
    """Row-format instances for input arrays. Strings go as text, except for inputs whose name
    ends in `_bytes` (and anything not UTF-8), which go as `{"b64": ...}`."""

    def encode(name: str, v):
        if isinstance(v, bytes):
            if not name.endswith("_bytes"):
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode("ascii")}
        return v.tolist() if hasattr(v, "tolist") else v

    names = sorted(inputs)
    if len(names) == 1:
        return [encode(names[0], x) for x in inputs[names[0]]]
    batch = len(inputs[names[0]])
    return [{n: encode(n, inputs[n][i]) for n in names} for i in range(batch)]


# --------------------------------------------------------------------------------------------
# gRPC
# --------------------------------------------------------------------------------------------


def predict_request(model_name: str, inputs: dict, signature: str = DEFAULT_SIGNATURE):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` carrying `inputs`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def grpc_round_trip(loaded, request) -> dict[str, np.ndarray]:
    """Serialise `request` as a client would, parse it as the server does, run the signature,
    and return the outputs after the same trip through a serialised `PredictResponse`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    received = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    signature = loaded.signatures[received.model_spec.signature_name or DEFAULT_SIGNATURE]
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in received.inputs.items()}
    outputs = signature(**inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(received.model_spec)
    for name, tensor in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
    parsed = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    return {k: tf.make_ndarray(v) for k, v in parsed.outputs.items()}


def write_warmup(version_dir: Path, model_name: str, inputs: dict) -> int:
    """`assets.extra/tf_serving_warmup_requests`: one PredictRequest per example (at most
    `WARMUP_EXAMPLES`), as TF Serving's warmup expects (`PredictionLog` records)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    n = min(WARMUP_EXAMPLES, len(next(iter(inputs.values()))))
    path = version_dir / "assets.extra" / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(n):
            one = {k: np.asarray(v[i : i + 1]) for k, v in inputs.items()}
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=predict_request(model_name, one))
            )
            writer.write(log.SerializeToString())
    return n


def read_warmup(version_dir: Path) -> list:
    """The `PredictRequest`s in an export's warmup file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = version_dir / "assets.extra" / WARMUP_FILE
    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests


# --------------------------------------------------------------------------------------------
# Signatures (a task checks its own contract with these: `ftk.tasks.classification.verify`)
# --------------------------------------------------------------------------------------------


def spec_text(spec) -> str:
    """A `TensorSpec` as `"float32 [-1, 5]"`."""
    dims = [-1 if d is None else d for d in spec.shape.as_list()]
    return f"{spec.dtype.name} {dims}"


# --------------------------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------------------------


def graph_ops(version_dir: Path) -> set[str]:
    """Every op type in a SavedModel's graphs and functions (calls of the SavedModel's own
    functions, which appear as ops named after them, are left out)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    functions: set[str] = set()
    for graph in saved.meta_graphs:
        ops |= {node.op for node in graph.graph_def.node}
        for function in graph.graph_def.library.function:
            functions.add(function.signature.name)
            ops |= {node.op for node in function.node_def}
    return ops - functions


def check_ops(version_dir: Path) -> dict[str, list[str]]:
    """`{"core": [...], "tensorflow_text": [...]}`; raises if an op is in neither."""
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry

    ops = graph_ops(version_dir)
    core = set(dir(tf.raw_ops))
    other = ops - core
    text: list[str] = []
    if other:
        import tensorflow_text  # noqa: F401  (registers its ops)

        text = sorted(op for op in other if op_def_registry.get(op) is not None)
    missing = sorted(other - set(text))
    if missing:
        raise VerificationError(
            f"The SavedModel uses ops that TF Serving does not provide: {missing}. "
            "Only core TensorFlow and tensorflow-text ops are linked into tensorflow/serving."
        )
    return {"core": sorted(ops & core), "tensorflow_text": text}


def round_trip_json(body: dict) -> dict:
    """What the server receives: the body serialised and parsed as JSON."""
    return json.loads(json.dumps(body))


def rest_round_trips(loaded, inputs: dict) -> dict[str, dict]:
    """`serving_default` called through TF Serving's two REST request formats, each body and
    its JSON response serialised and parsed by TF Serving's rules: `{"row": columns,
    "columnar": columns}`, each `{output name: list of per-example values}`."""
    import tensorflow as tf

    specs = signature_inputs(loaded)
    signature = loaded.signatures[DEFAULT_SIGNATURE]
    out = {}
    for fmt, body in (
        ("row", {"instances": rest_instances(inputs)}),
        ("columnar", {"inputs": {k: rest_instances({k: v}) for k, v in inputs.items()}}),
    ):
        parsed = parse_rest_request(round_trip_json(body), specs)
        outputs = signature(**{k: tf.constant(v) for k, v in parsed.items()})
        response = round_trip_json(rest_response(outputs, row=fmt == "row"))
        if fmt == "row":
            rows = response["predictions"]
            out[fmt] = {k: [r[k] for r in rows] for k in rows[0]}
        else:
            out[fmt] = response["outputs"]
    return out
