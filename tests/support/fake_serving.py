"""Stand-ins for TF Serving in tests (no tensorflow_model_server binary installs here): a REST
server and a gRPC server that answer model metadata and Predict calls from one SavedModel,
mapping requests and answers as TF Serving documents them (REST rows `{"instances": [...]}`
answered as `{"predictions": [...]}`, columns `{"inputs": {...}}` as `{"outputs": {...}}`,
`{"b64": ...}` for `*_bytes` inputs, strings answered as text; gRPC TensorProtos)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
from concurrent import futures
from pathlib import Path

import grpc
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)


class Model:
    """A SavedModel's signatures as TF Serving reports and runs them."""

    def __init__(self, saved_model: Path):
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((saved_model / "saved_model.pb").read_bytes())
        self.signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in proto.meta_graphs[0].signature_def.items():
            if not name.startswith("__"):
                self.signature_map.signature_def[name].CopyFrom(signature)
        self.loaded = tf.saved_model.load(str(saved_model))

    def run(self, signature: str, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.loaded.signatures[signature](**inputs)


def decode_b64(value):
    if isinstance(value, dict):
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [decode_b64(item) for item in value]
    return value


def plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def columns_of_rows(rows: list, specs: dict) -> dict[str, list]:
    """TF Serving's row format as columns: with one input each row is its value (a
    `{"b64": ...}` object included), otherwise an object of named values."""
    if len(specs) == 1 and not (isinstance(rows[0], dict) and set(rows[0]) != {"b64"}):
        rows = [{next(iter(specs)): row} for row in rows]
    return {name: [row[name] for row in rows] for name in specs}


def rest_handler(model: Model, model_name: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if not self.path.startswith(f"/v1/models/{model_name}") or not self.path.endswith(
                "/metadata"
            ):
                return self.answer(404, {"error": f"Servable not found for request: {self.path}"})
            metadata = json_format.MessageToDict(model.signature_map)
            self.answer(200, {"metadata": {"signature_def": metadata}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            signature = body.get("signature_name", "serving_default")
            specs = model.loaded.signatures[signature].structured_input_signature[1]
            try:
                columns = (
                    columns_of_rows(body["instances"], specs)
                    if "instances" in body
                    else body["inputs"]
                )
                inputs = {
                    name: tf.constant(decode_b64(columns[name]), dtype=spec.dtype)
                    for name, spec in specs.items()
                }
                outputs = model.run(signature, inputs)
            except (KeyError, ValueError, tf.errors.InvalidArgumentError) as error:
                return self.answer(400, {"error": str(error).splitlines()[0]})
            answer = {name: plain(value.numpy().tolist()) for name, value in outputs.items()}
            single = len(answer) == 1  # one output is answered as its value, as TF Serving does
            if "instances" in body:
                columns = zip(*answer.values(), strict=True)
                rows = [dict(zip(answer, row, strict=True)) for row in columns]
                predictions = next(iter(answer.values())) if single else rows
                return self.answer(200, {"predictions": predictions})
            self.answer(200, {"outputs": next(iter(answer.values())) if single else answer})

    return Handler


class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: Model):
        self.model = model

    def GetModelMetadata(self, request, context):
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=request.model_spec)
        response.metadata["signature_def"].Pack(self.model.signature_map)
        return response

    def Predict(self, request, context):
        signature = request.model_spec.signature_name or "serving_default"
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            outputs = self.model.run(signature, inputs)
        except (TypeError, tf.errors.InvalidArgumentError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error).splitlines()[0])
        response = predict_pb2.PredictResponse(model_spec=request.model_spec)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response


@contextlib.contextmanager
def serving(saved_model: Path, model_name: str, protocol: str):
    """Yields the HOST:PORT of a fake TF Serving (REST or gRPC) answering `saved_model`."""
    model = Model(saved_model)
    if protocol == "rest":
        server = http.server.ThreadingHTTPServer(("localhost", 0), rest_handler(model, model_name))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"localhost:{server.server_address[1]}"
        finally:
            server.shutdown()
    else:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(model), server)
        port = server.add_insecure_port("localhost:0")
        server.start()
        try:
            yield f"localhost:{port}"
        finally:
            server.stop(grace=None)
