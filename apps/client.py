"""rnn-suite-client: asks a running TF Serving for an app's answers, over REST or gRPC.

    rnn-suite-client sentiment "A gripping, beautifully acted film." --server localhost:8501
    rnn-suite-client captioning photo.jpg --protocol grpc --server localhost:8500
    rnn-suite-client forecasting --input recent.csv --label canary
    rnn-suite-client activity clip.gif --signature gif

The inputs are read as the app's own `predict` reads them (texts, a CSV window, image files,
video files or GIFs), shaped by the input specs the server reports for the signature (its
model metadata), and the answers are printed as `predict` prints them, as JSON lines (a
forecast as CSV). A `stream` signature is answered step by step, the client holding the
recurrent state between requests: a forecasting CSV's rows after the first `lookback` one at a
time (each forecast row names its `origin`), an activity clip's frames one at a time (each
answer says how many `frames` it has seen):

    rnn-suite-client forecasting --input recent.csv --signature stream
    rnn-suite-client activity clip.gif --signature stream

REST requests use TF Serving's columnar format (`{"inputs": ...}`, `{"b64": ...}` for `*_bytes`
inputs); gRPC requests use tensorflow-serving-api's `PredictionServiceStub`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.core.cli import EXIT_USER_ERROR, native_logs_hidden, positive_int
from apps.core.errors import UserError
from pipelines.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

    from apps.core.app import App

APP_NAMES = ("sentiment", "forecasting", "translation", "captioning", "activity")
DEFAULT_SERVERS = {"rest": "localhost:8501", "grpc": "localhost:8500"}


def load_app(name: str) -> App:
    return importlib.import_module(f"apps.{name}.app").APP


def specs_of(tensor_infos: Any) -> dict[str, tf.TensorSpec]:
    """A SignatureDef's `inputs` or `outputs` map as named `tf.TensorSpec`s."""
    import tensorflow as tf

    specs = {}
    for key, info in tensor_infos.items():
        shape = None
        if not info.tensor_shape.unknown_rank:
            shape = [None if dim.size < 0 else dim.size for dim in info.tensor_shape.dim]
        specs[key] = tf.TensorSpec(shape, tf.as_dtype(info.dtype), name=key)
    return specs


class RestClient:
    """TF Serving's REST API: `GET .../metadata` and `POST ...:predict`."""

    def __init__(self, server: str, model: str, version: int | None, label: str | None,
                 timeout: float):  # fmt: skip
        path = f"/v1/models/{model}"
        if version:
            path += f"/versions/{version}"
        elif label:
            path += f"/labels/{label}"
        self.url, self.server, self.timeout = f"http://{server}{path}", server, timeout

    def call(self, suffix: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + suffix, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            message = error.read().decode("utf-8", "replace")
            with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
                message = json.loads(message)["error"]
            raise UserError(f"{self.url}: the server answered {error.code}: {message}") from None
        except TimeoutError:
            raise UserError(
                f"{self.server}: no answer within {self.timeout:g} s (--timeout)"
            ) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise UserError(
                    f"{self.server}: no answer within {self.timeout:g} s (--timeout)"
                ) from None
            raise UserError(
                f"cannot reach TF Serving's REST API at {self.server} ({error.reason}); is "
                "tensorflow_model_server running with --rest_api_port, or is it --protocol grpc?"
            ) from None

    def signatures(self) -> Any:
        metadata = self.call("/metadata")["metadata"]["signature_def"]
        from google.protobuf import json_format  # after the call: these load TensorFlow
        from tensorflow_serving.apis import get_model_metadata_pb2

        return json_format.ParseDict(
            metadata, get_model_metadata_pb2.SignatureDefMap(), ignore_unknown_fields=True
        ).signature_def

    def predict(self, signature: str, inputs: dict[str, np.ndarray],
                output_specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:  # fmt: skip
        body = {
            "signature_name": signature,
            "inputs": {name: to_json(name, value) for name, value in inputs.items()},
        }
        outputs = self.call(":predict", body)["outputs"]
        named = isinstance(outputs, dict) and outputs.keys() == output_specs.keys()
        if not named:  # a signature with one output answers without its name
            outputs = {next(iter(output_specs)): outputs}
        return {name: from_json(name, outputs[name], output_specs[name]) for name in output_specs}


class GrpcClient:
    """TF Serving's gRPC API through tensorflow-serving-api's `PredictionServiceStub`."""

    def __init__(self, server: str, model: str, version: int | None, label: str | None,
                 timeout: float):  # fmt: skip
        import grpc
        from tensorflow_serving.apis import model_pb2, prediction_service_pb2_grpc

        self.server, self.timeout = server, timeout
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server))
        self.model_spec = model_pb2.ModelSpec(name=model)
        if version:
            self.model_spec.version.value = version
        elif label:
            self.model_spec.version_label = label

    def call(self, method: Any, request: Any) -> Any:
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                raise UserError(
                    f"cannot reach TF Serving's gRPC API at {self.server} ({error.details()}); "
                    "is tensorflow_model_server running with --port, or is it --protocol rest?"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise UserError(
                    f"{self.server}: no answer within {self.timeout:g} s (--timeout)"
                ) from None
            raise UserError(
                f"{self.server}: the server answered {code.name}: {error.details()}"
            ) from None

    def signatures(self) -> Any:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=self.model_spec, metadata_field=["signature_def"]
        )
        response = self.call(self.stub.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return signature_map.signature_def

    def predict(self, signature: str, inputs: dict[str, np.ndarray],
                output_specs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:  # fmt: skip
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest(model_spec=self.model_spec)
        request.model_spec.signature_name = signature
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = self.call(self.stub.Predict, request)
        return {name: tf.make_ndarray(response.outputs[name]) for name in output_specs}


def to_json(name: str, value: np.ndarray) -> Any:
    """A request tensor as TF Serving's REST API reads it (`{"b64": ...}` for `*_bytes`)."""
    import numpy as np

    if value.dtype != object:
        return value.tolist()
    items = [to_json(name, item) if isinstance(item, np.ndarray) else item for item in value]
    if name.endswith("_bytes"):
        return [{"b64": base64.b64encode(item).decode()} for item in items]
    return [item.decode("utf-8", "replace") if isinstance(item, bytes) else item for item in items]


def from_json(name: str, value: Any, spec: tf.TensorSpec) -> np.ndarray:
    """A REST answer as the array a SavedModel returns (strings as bytes)."""
    import numpy as np

    if spec.dtype.name != "string":
        return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)

    def as_bytes(item: Any) -> Any:
        if isinstance(item, list):
            return [as_bytes(element) for element in item]
        if isinstance(item, dict):
            return base64.b64decode(item["b64"])
        return item.encode()

    return np.array(as_bytes(value), dtype=object)


def run(args: argparse.Namespace) -> None:
    app = load_app(args.app)
    if args.input and not Path(args.input).is_file():
        raise UserError(f"--input {args.input}: no such file")
    if not args.inputs and not args.input:
        raise UserError("the client needs INPUT arguments or --input FILE")
    client_class = RestClient if args.protocol == "rest" else GrpcClient
    server = args.server or DEFAULT_SERVERS[args.protocol]
    client = client_class(server, args.model_name or app.name, args.version, args.label,
                          args.timeout)  # fmt: skip
    signatures = client.signatures()
    if args.signature not in signatures:
        raise UserError(
            f"--signature {args.signature}: the model has {', '.join(sorted(signatures))}"
        )
    signature = signatures[args.signature]
    input_file = Path(args.input) if args.input else None
    input_specs, output_specs = specs_of(signature.inputs), specs_of(signature.outputs)
    if "state" in input_specs:
        rows = run_streams(app, client, args.signature, args.inputs, input_file, input_specs,
                           output_specs)  # fmt: skip
    else:
        request = app.serving.read_inputs(args.inputs, input_file, input_specs)
        outputs = client.predict(args.signature, request.inputs, output_specs)
        rows = app.serving.format_outputs(request, outputs)
    output = Path(args.output) if args.output else None
    app.serving.write_predictions(rows, output)


def run_streams(app: App, client: RestClient | GrpcClient, signature: str, inputs: list[str],
                input_file: Path | None, input_specs: dict[str, tf.TensorSpec],
                output_specs: dict[str, tf.TensorSpec]) -> list[dict[str, Any]]:  # fmt: skip
    """Answers a stream signature step by step, the client holding the state: each request
    carries the `state` the answer before it returned. The rows of every step's answer."""
    if not hasattr(app.serving, "read_stream"):
        raise UserError(f"the client cannot stream {app.name} inputs")
    rows = []
    for stream in app.serving.read_stream(inputs, input_file, input_specs):
        state = stream.state
        for step in stream.steps:
            outputs = client.predict(signature, {**step.inputs, "state": state}, output_specs)
            state = outputs["state"]
            rows += app.serving.format_outputs(step, outputs)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-suite-client",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("app", choices=APP_NAMES, help="the app whose export the server runs")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs, as for predict")
    parser.add_argument("--input", help="a file of inputs, as for the app's predict")
    parser.add_argument("--output", help="write the answers here instead of stdout")
    parser.add_argument(
        "--server", help="HOST:PORT (default: localhost:8501 for REST, localhost:8500 for gRPC)"
    )
    parser.add_argument("--protocol", choices=["rest", "grpc"], default="rest")
    parser.add_argument("--model-name", help="the model's name in models.config (default: APP)")
    parser.add_argument("--signature", default="serving_default", help="(default: %(default)s)")
    versions = parser.add_mutually_exclusive_group()
    versions.add_argument("--version", type=positive_int, help="ask this version")
    versions.add_argument("--label", help="ask the version with this label, e.g. canary")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per call (default: %(default)s)"
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = native_logs_hidden() if not args.verbose else contextlib.nullcontext()
    try:
        with quiet:
            run(args)
    except (UserError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0
