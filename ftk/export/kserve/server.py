"""KServe's Python model server for an ftk SavedModel export (raw text or image bytes in).

    python -m ftk.export.kserve.server --model_dir saved_models/bbc_news --model_name bbc_news

`--model_dir` is a version folder (`<model>/<n>/`) or a model folder (its highest numbered
version is served). Only the REST server runs (no gRPC), bound to `--host` (127.0.0.1 unless
given; 0.0.0.0 in a container) and `--http_port` (0: a free port); the address is printed as
`Listening on http://HOST:PORT` once the socket is bound. The protocols:

- V1: `POST /v1/models/NAME:predict` with `{"instances": [...]}` (plain strings for a
  one-input model, else objects keyed by input name; image bytes as `{"b64": ...}`) or
  `{"inputs": ...}`, read and answered by TF Serving's REST rules (`ftk.export.serving`);
- V2 (Open Inference Protocol): `POST /v2/models/NAME/infer` with one BYTES input per signature
  input, named as in the signature (`text`, `text_pair`, `image_bytes`: JSON strings, base64
  for `image_bytes`); one output per signature output, shape kept.

kserve 0.21.0 pins protobuf<7; ftk installs it with `pip install --no-deps` (see the docs).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import socket
import sys
import uuid
from pathlib import Path

import numpy as np

# kserve.model_server parses sys.argv when imported: give it an empty command line (its
# defaults), since every setting it needs is passed explicitly below.
_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse
    from kserve.errors import InvalidInput
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer
    from kserve.utils.numpy_codec import from_np_dtype
finally:
    sys.argv = _argv

from ftk.export import serving  # noqa: E402

SIGNATURE = "serving_default"


def resolve_version_dir(model_dir: str | Path) -> Path:
    """The version folder to serve: `model_dir` itself when it holds `saved_model.pb`, else its
    highest numbered subfolder that does."""
    path = Path(model_dir)
    if (path / "saved_model.pb").is_file():
        return path
    versions = []
    if path.is_dir():
        versions = [
            int(p.name)
            for p in path.iterdir()
            if p.name.isdigit() and (p / "saved_model.pb").is_file()
        ]
    if not versions:
        state = "holds no saved_model.pb" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"--model_dir should be an ftk export: a version folder holding saved_model.pb, or "
            f"a model folder with numbered version folders (1/, 2/, ...). Received "
            f"{str(model_dir)!r}, which {state}"
            + (" (nor does any numbered subfolder)." if path.is_dir() else ".")
        )
    return path / str(max(versions))


def _spec_type(name: str, spec) -> dict:
    dims = [-1 if d is None else d for d in spec.shape.as_list()]
    return {
        "name": name,
        "datatype": from_np_dtype(np.dtype(spec.dtype.as_numpy_dtype)),
        "shape": dims,
    }


class SavedModelPredictor(kserve.Model):
    """`serving_default` of an ftk SavedModel behind KServe's V1 and V2 protocols."""

    def __init__(self, name: str, version_dir: str | Path):
        super().__init__(name)
        self.version_dir = Path(version_dir)
        self.inputs: dict = {}
        self.outputs: dict = {}

    def load(self) -> bool:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the ops the export's tokenizer uses)

        self._tf = tf
        self._loaded = tf.saved_model.load(str(self.version_dir))  # keeps the signature alive
        self._fn = self._loaded.signatures[SIGNATURE]
        self.inputs = dict(self._fn.structured_input_signature[1])
        self.outputs = dict(self._fn.structured_outputs)
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict]:
        return [_spec_type(name, spec) for name, spec in sorted(self.inputs.items())]

    def get_output_types(self) -> list[dict]:
        return [_spec_type(name, spec) for name, spec in sorted(self.outputs.items())]

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        outputs = self._fn(
            **{k: tf.constant(v, dtype=self.inputs[k].dtype) for k, v in inputs.items()}
        )
        return {k: v.numpy() for k, v in outputs.items()}

    async def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            outputs = await asyncio.to_thread(self._run, self._v2_inputs(payload))
            return self._v2_response(payload, outputs)
        if not isinstance(payload, dict):
            raise InvalidInput(
                "Expected a JSON object; send it with Content-Type: application/json."
            )
        try:
            inputs = serving.parse_rest_request(payload, self.inputs)
        except serving.RestRequestError as e:
            raise InvalidInput(str(e)) from None
        outputs = await asyncio.to_thread(self._run, inputs)
        return serving.rest_response(outputs, row="instances" in payload)

    def _v2_inputs(self, request: InferRequest) -> dict[str, np.ndarray]:
        given = {tensor.name: tensor for tensor in request.inputs}
        if set(given) != set(self.inputs):
            raise InvalidInput(
                f"Model {self.name!r} takes the inputs {sorted(self.inputs)}; the request has "
                f"{sorted(given)}."
            )
        arrays = {}
        for name, spec in self.inputs.items():
            tensor = given[name]
            if spec.dtype.name == "string":
                if tensor.datatype != "BYTES":
                    raise InvalidInput(f"Input {name!r} must be BYTES, got {tensor.datatype}.")
                raw = tensor.as_numpy()
                values = [self._bytes(name, v) for v in raw.ravel().tolist()]
                array = np.array(values, dtype=object).reshape(raw.shape)
            else:
                array = tensor.as_numpy().astype(spec.dtype.as_numpy_dtype)
            if spec.shape.rank is not None and array.ndim != spec.shape.rank:
                raise InvalidInput(
                    f"Input {name!r} has shape {list(array.shape)}; the signature takes "
                    f"{_spec_type(name, spec)['shape']}."
                )
            arrays[name] = array
        return arrays

    @staticmethod
    def _bytes(name: str, value) -> bytes:
        if isinstance(value, bytes):
            return value
        if name.endswith("_bytes"):  # binary data in JSON: base64, as TF Serving's {"b64": ...}
            try:
                return base64.b64decode(str(value), validate=True)
            except binascii.Error:
                raise InvalidInput(f"Input {name!r} takes base64 strings in JSON.") from None
        return str(value).encode("utf-8")

    def _v2_response(self, request: InferRequest, outputs: dict) -> InferResponse:
        infer_outputs = []
        for name, value in outputs.items():
            value = np.asarray(value)
            out = InferOutput(
                name=name, shape=list(value.shape), datatype=from_np_dtype(value.dtype)
            )
            out.set_data_from_numpy(value, binary_data=False)
            infer_outputs.append(out)
        return InferResponse(
            response_id=request.id or str(uuid.uuid4()),
            model_name=self.name,
            infer_outputs=infer_outputs,
        )


def serve(model: SavedModelPredictor, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve `model` (loaded) over REST on `host:port` until SIGINT/SIGTERM."""
    server = kserve.ModelServer(http_port=port, enable_grpc=False, workers=1)
    server.register_model(model)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        http_port=port,
        grace_period=10,
    )
    rest.config.host = host  # RESTServer hard-codes 0.0.0.0; the socket below is what binds
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"Listening on http://{shown}:{bound}", flush=True)
    rest.run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftk.export.kserve.server",
        description="Serve an ftk SavedModel export with KServe's Python model server.",
    )
    parser.add_argument("--model_dir", required=True, help="a version folder or a model folder")
    parser.add_argument("--model_name", required=True, help="the name in the endpoints' paths")
    parser.add_argument("--http_port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface")
    args = parser.parse_args(argv)
    try:
        version_dir = resolve_version_dir(args.model_dir)
    except FileNotFoundError as e:
        parser.error(str(e))
    model = SavedModelPredictor(args.model_name, version_dir)
    model.load()
    print(f"Loaded {version_dir} as {args.model_name!r}", flush=True)
    serve(model, args.host, args.http_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
