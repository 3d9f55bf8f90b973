import numpy as np
import tensorflow as tf

from apps.core.app import Batching, Endpoints, Request
from apps.core.output import write_json_lines

BATCHING = Batching(max_batch_size=32, allowed_batch_sizes=(4, 32), batch_timeout_micros=500)


def endpoints(model, config, assets) -> Endpoints:
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(x):
        return {"sum": model(x, training=False)[:, 0]}

    return Endpoints(functions={"serving_default": serve})


def example_request(config) -> dict[str, np.ndarray]:
    return {"x": np.array([[1.0, 2.0, 3.0], [0.5, -0.5, 4.0]], np.float32)}


def read_inputs(inputs, input_file, input_specs) -> Request:
    numbers = np.array([float(value) for value in inputs], np.float32)
    return Request({"x": numbers.reshape(-1, 3)})


def format_outputs(request: Request, outputs):
    return [
        {"x": x, "sum": float(total)}
        for x, total in zip(request.inputs["x"], outputs["sum"], strict=True)
    ]


write_predictions = write_json_lines
