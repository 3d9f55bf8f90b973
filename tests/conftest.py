"""Shared fixtures: synthetic reviews, and answering a TF Serving REST-shaped request in a
fresh Python process."""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Runs in a new interpreter that imports only tensorflow and tensorflow_text, maps a REST
# body read from stdin ({"instances": [...]} row format or {"inputs": {...}} columnar format,
# "b64" bytes) onto a signature (serving_default unless named), and prints output names,
# dtypes, shapes and values as JSON.
FRESH_PROCESS_CLIENT = textwrap.dedent(
    """
    import base64, json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the TF Text ops a graph may use)

    model_dir, signature_name, body = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
    signature = tf.saved_model.load(model_dir).signatures[signature_name]
    specs = signature.structured_input_signature[1]

    def decode(value):
        if isinstance(value, dict) and set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        if isinstance(value, list):
            return [decode(item) for item in value]
        return value

    if "instances" in body:
        rows = body["instances"]
        # One input: each row is its value ({"b64": ...} included), as TF Serving reads it.
        if len(specs) == 1 and not (isinstance(rows[0], dict) and set(rows[0]) != {"b64"}):
            rows = [{next(iter(specs)): row} for row in rows]
        columns = {name: [decode(row[name]) for row in rows] for name in specs}
    else:
        columns = {name: decode(value) for name, value in body["inputs"].items()}
    request = {name: tf.constant(columns[name], dtype=spec.dtype) for name, spec in specs.items()}
    outputs = signature(**request)

    def plain(value):
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value

    project = ("apps", "layers", "pipelines")
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in project)
    print(json.dumps({
        "outputs": {
            name: {
                "dtype": value.dtype.name,
                "shape": value.shape.as_list(),
                "value": plain(value.numpy().tolist()),
            }
            for name, value in outputs.items()
        },
        "project_modules_loaded": loaded,
    }))
    """
)


def answer_in_fresh_process(
    model_dir: Path, body: dict, timeout: float = 300, signature: str = "serving_default"
) -> dict:
    """Loads `model_dir` with tf.saved_model.load in a new process; `signature` answers `body`."""
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_CLIENT, str(model_dir), signature],
        input=json.dumps(body),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    if completed.returncode != 0:
        raise AssertionError(f"fresh process failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture
def fresh_process_client():
    return answer_in_fresh_process


def signatures_shown_by_saved_model_cli(model_dir: Path) -> dict[str, dict[str, dict[str, str]]]:
    """What `saved_model_cli show --dir MODEL_DIR --all` lists, as {signature: {"inputs":
    {name: "DT_FLOAT (-1, 16, 1)"}, "outputs": {...}}} (TF Serving's own signatures only)."""
    command = Path(sys.executable).with_name("saved_model_cli")
    shown = subprocess.run(
        [str(command), "show", "--dir", str(model_dir), "--all"],
        capture_output=True, text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    if shown.returncode != 0:
        raise AssertionError(f"saved_model_cli failed:\n{shown.stderr[-3000:]}")
    signatures: dict[str, dict[str, dict[str, str]]] = {}
    for block in shown.stdout.split("signature_def['")[1:]:
        name, body = block.split("']", 1)
        tensors = re.findall(r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+"
                             r"shape: (\([^)]*\)|unknown_rank)", body)  # fmt: skip
        if not name.startswith("__"):
            signatures[name] = {"inputs": {}, "outputs": {}}
            for kind, tensor, dtype, shape in tensors:
                signatures[name][kind][tensor] = f"{dtype} {shape}"
    return signatures


@pytest.fixture
def saved_model_cli_signatures():
    return signatures_shown_by_saved_model_cli


# Runs in a new interpreter: one good request (the export's first warm-up record) and, in a
# row, malformed variants of it through one signature; each must be answered or refused with
# an InvalidArgumentError (or, for a dtype or rank the signature does not take, the TypeError
# or ValueError of its input check, as TF Serving's own check refuses them), never a crash or
# hang, and the good request must be answered again after them. Prints what each variant got.
BAD_REQUESTS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    from tensorflow_serving.apis import prediction_log_pb2

    model_dir, signature_name = sys.argv[1], sys.argv[2]
    signature = tf.saved_model.load(model_dir).signatures[signature_name]
    for record in tf.data.TFRecordDataset(model_dir + "/assets.extra/tf_serving_warmup_requests"):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        if request.model_spec.signature_name == signature_name:
            good = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            break

    def variants():
        for name, value in good.items():
            others = {key: item for key, item in good.items() if key != name}
            wrong_dtype = value.astype(str) if value.dtype != object else np.ones(value.shape)
            yield f"{name}: wrong dtype", {**others, name: wrong_dtype}
            yield f"{name}: one rank more", {**others, name: value[..., None]}
            if value.ndim > 1:
                yield f"{name}: one rank less", {**others, name: value[..., 0]}
            yield f"{name}: missing", others
            if value.dtype == object:
                huge = np.array([b"x" * 2_000_000] * len(value), dtype=object)
                yield f"{name}: 2 MB values", {**others, name: huge}
                yield f"{name}: not what it should hold", {
                    **others, name: np.array([b"\\xff\\x00junk"] * len(value), dtype=object)}
            elif value.ndim > 1:
                yield f"{name}: 8x longer", {**others, name: np.concatenate([value] * 8, axis=1)}
        yield "empty batch", {key: item[:0] for key, item in good.items()}
        yield "256 rows", {key: np.concatenate([item] * 256)[:256] for key, item in good.items()}

    outcomes = {}
    for label, inputs in variants():
        try:
            signature(**{key: tf.constant(item) for key, item in inputs.items()})
            outcomes[label] = "answered"
        except tf.errors.InvalidArgumentError:
            outcomes[label] = "InvalidArgument"
        except (TypeError, ValueError):
            outcomes[label] = "refused by the signature's input check"
    outputs = signature(**{key: tf.constant(item) for key, item in good.items()})
    rows = {key: int(value.shape[0]) for key, value in outputs.items()}
    print(json.dumps({"outcomes": outcomes, "good_rows": rows}))
    """
)


@pytest.fixture
def bad_requests_in_fresh_process():
    """`(model_dir, signature="serving_default", timeout=600) -> {"outcomes", "good_rows"}`."""

    def run(model_dir: Path, signature: str = "serving_default", timeout: float = 600) -> dict:
        completed = subprocess.run(
            [sys.executable, "-c", BAD_REQUESTS_SCRIPT, str(model_dir), signature],
            capture_output=True, text=True, timeout=timeout, cwd="/",
            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        if completed.returncode != 0:
            raise AssertionError(f"the process died:\n{completed.stderr[-3000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    return run


POSITIVE_WORDS = ["great", "wonderful", "moving", "superb", "delightful", "brilliant"]
NEGATIVE_WORDS = ["awful", "boring", "dull", "terrible", "tedious", "clumsy"]
FILLER_WORDS = ["the", "film", "plot", "was", "a", "story", "acting", "and", "really", "very"]


def write_reviews(path: Path, count: int, seed: int = 0) -> Path:
    """A CSV (columns review, stars) of short reviews whose label ("pos"/"neg") is carried by
    one sentiment word among filler words: a small task a tiny model must learn."""
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "stars"])
        for _ in range(count):
            label = rng.choice(["pos", "neg"])
            words = rng.choices(FILLER_WORDS, k=rng.randint(2, 12))
            cue = rng.choice(POSITIVE_WORDS if label == "pos" else NEGATIVE_WORDS)
            words.insert(rng.randrange(len(words) + 1), cue)
            writer.writerow([" ".join(words), label])
    return path


@pytest.fixture(scope="session")
def reviews_csv():
    """`write_reviews(path, count, seed=0)`."""
    return write_reviews
