"""The op audit of an export: every op its graphs use is one TF Serving has.

TF Serving runs the ops of core TensorFlow and, in the builds that link it, TF Text's op
library (see the README for the pairing of versions); anything else (an op of another
library, or a `PyFunc` that calls back into Python) fails there at load or at request time.
The audit lists the ops of the graph and of its function library, as
`saved_model_cli show --list_ops` counts them, and checks them against the ops a process
that imports only `tensorflow`, then `tensorflow_text`, registers. That list is made once per
version pair in a fresh interpreter (this process may hold other libraries' ops) and cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.cache import cache_dir

# Core ops that run Python: a server has no Python to run.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

LIST_REGISTERED_OPS = """
import json
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session

def registered():
    ops = op_def_pb2.OpList()
    ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    return {op.name for op in ops.op}

core = registered()
import tensorflow_text  # noqa: F401  (loads TF Text's op library)
print(json.dumps({"core": sorted(core), "text": sorted(registered() - core)}))
"""


def registered_ops() -> dict[str, frozenset[str]]:
    """{"core": ops of core TensorFlow, "text": ops TF Text's library adds}, cached per
    version pair."""
    from importlib.metadata import version

    name = f"registered-ops-tf{version('tensorflow')}-text{version('tensorflow-text')}.json"
    path = cache_dir("op_audit") / name
    if not path.is_file():
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        completed = subprocess.run(
            [sys.executable, "-c", LIST_REGISTERED_OPS],
            capture_output=True, text=True, check=True, env=environment,
        )  # fmt: skip
        staged = path.with_suffix(".partial")
        staged.write_text(completed.stdout.strip().splitlines()[-1])
        staged.replace(path)
    lists = json.loads(path.read_text())
    return {kind: frozenset(names) for kind, names in lists.items()}


def graph_ops(saved_model: Path) -> set[str]:
    """Every op in the SavedModel's graphs, their function libraries included."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model / "saved_model.pb").read_bytes())
    ops = set()
    for graph in proto.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def unservable_ops(saved_model: Path) -> dict[str, list[str]]:
    """The ops of `saved_model` that TF Serving lacks, by reason (empty: the audit passes)."""
    ops = graph_ops(saved_model)
    registered = registered_ops()
    problems = {
        "runs Python": sorted(ops & PYTHON_OPS),
        "neither core TensorFlow nor TF Text": sorted(
            ops - registered["core"] - registered["text"]
        ),
    }
    return {reason: names for reason, names in problems.items() if names}
