"""Writes docs/serving.md: for every app the main job exported, a `curl` REST request to TF
Serving and the answer its export gives, taken from a real run.

No `tensorflow_model_server` installs on these machines, so the request goes (with the real
`curl`) to the REST stand-in of the tests (`tests/support/fake_serving.py`), which loads the
app's newest version with `tf.saved_model.load` and maps the body and the answer as TF Serving's
REST API documents them (rows `{"instances": [...]}` answered as `{"predictions": [...]}`,
`{"b64": ...}` for `*_bytes` inputs). The request bodies are the first rows of each app's
`example_request` (real sentences, a real series window, a real image, a real clip's GIF) and
are written beside the page (docs/serving/<app>.json) so the commands run as shown.

    make demo && python scripts/serving_examples.py --runs runs
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import fake_serving  # noqa: E402

from apps.client import APP_NAMES, load_app  # noqa: E402
from apps.core import config as config_lib  # noqa: E402
from apps.core import training  # noqa: E402
from apps.core.export import read_metadata  # noqa: E402

# The file in a work dir that names the export the main job made from it (scripts/main_job.sh).
EXPORT_RECORD = "demo-export.txt"

# The signature each example uses: the smallest raw input the app takes.
SIGNATURES = {"activity": "gif"}
ROWS = {"forecasting": 1, "captioning": 1, "activity": 1}
# Numbers shown of a long array in the page (the request file holds them all).
SHOWN = 6
# Inputs the main job's export does not take but other runs of the app do, after its answer.
OTHER_INPUTS = {
    "forecasting": (
        "A model trained with calendar terms (`data.calendar_terms`, which `base` derives when a\n"
        "season is longer than the lookback) also takes `last_time`, the time of the last history\n"
        "step in seconds since 1970-01-01 UTC, so each instance names its inputs:\n"
        '`{"instances": [{"history": [[91.3], [79.0], ...], "last_time": 1704067200.0}]}`.\n'
        "`predict --input recent.csv` sends it from the CSV's time column.\n"
    ),
}


def json_value(name: str, value) -> object:
    if name.endswith("_bytes"):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, bytes):
        return value.decode()
    return value.tolist() if isinstance(value, np.ndarray) else value


def request_body(app, config, version: Path) -> dict:
    """TF Serving's row format for the first rows of the app's example request."""
    signature = SIGNATURES.get(app.name, "serving_default")
    names = list(read_metadata(version)["signatures"][signature])
    example = app.serving.example_request(config)
    rows = [
        {name: json_value(name, np.asarray(example[name], dtype=object)[row]) for name in names}
        for row in range(ROWS.get(app.name, 2))
    ]
    instances = [row[names[0]] for row in rows] if len(names) == 1 else rows
    body = {"instances": instances}
    if signature != "serving_default":
        body = {"signature_name": signature, **body}
    return body


def shortened(value, depth: int = 0):
    """`value` for the page: long lists cut to their first numbers, long strings cut."""
    if isinstance(value, dict):
        return {key: shortened(item, depth) for key, item in value.items()}
    if isinstance(value, list):
        items = [shortened(item, depth + 1) for item in value[:SHOWN]]
        return items + ["..."] if len(value) > SHOWN and depth > 0 else items
    if isinstance(value, str) and len(value) > 60:
        return value[:40] + "..."
    if isinstance(value, float):
        return round(value, 4)
    return value


def one_row_per_line(answer: dict) -> str:
    """A REST answer (`{"predictions": [...]}`) as JSON with each prediction on its own line."""
    ((key, predictions),) = answer.items()
    rows = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in predictions)
    return f'{{"{key}": [\n{rows}\n]}}'


def example_section(app, workdir: Path, pages: Path) -> str:
    version = Path((workdir / EXPORT_RECORD).read_text().strip())
    config = config_lib.load(app.config_class, workdir / training.CONFIG_FILE)
    body = request_body(app, config, version)
    request_file = pages / f"{app.name}.json"
    request_file.write_text(json.dumps(body, ensure_ascii=False) + "\n")
    with fake_serving.serving(version, app.name, "rest") as server:
        answer = subprocess.run(
            ["curl", "-s", f"{server}/v1/models/{app.name}:predict", "-d", f"@{request_file}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    relative = request_file.relative_to(pages.parent.parent)
    return "\n".join([
        f"### {app.name}",
        "",
        "```bash",
        f"curl -s localhost:8501/v1/models/{app.name}:predict -d @{relative}",
        "```",
        "",
        f"Request (`{relative}`, long values cut here):",
        "",
        "```json",
        json.dumps(shortened(body), ensure_ascii=False),
        "```",
        "",
        f"Answer of `saved_models/{app.name}/{version.name}` (the main job's export):",
        "",
        "```json",
        one_row_per_line(shortened(json.loads(answer))),
        "```",
        "",
        *([OTHER_INPUTS[app.name]] if app.name in OTHER_INPUTS else []),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the main job's work dirs")
    parser.add_argument("--output", type=Path, default=Path("docs/serving.md"))
    args = parser.parse_args()
    pages = args.output.with_suffix("")
    pages.mkdir(parents=True, exist_ok=True)
    sections = [
        example_section(load_app(name), args.runs / name, pages)
        for name in APP_NAMES
        if (args.runs / name / EXPORT_RECORD).is_file()
    ]
    header = (
        "# REST requests and the answers they get\n\n"
        "Written by `python scripts/serving_examples.py` from the main job's exports: each\n"
        "request was sent with `curl` and answered by the export (the REST mapping of\n"
        "`tests/support/fake_serving.py`, as TF Serving documents it; no TF Serving binary\n"
        "installs on the machines this was made on). Start TF Serving as the README shows, then\n"
        "run the commands from the repository root.\n\n"
    )
    args.output.write_text(header + "\n".join(sections))
    print(f"wrote {args.output} ({len(sections)} apps)")


if __name__ == "__main__":
    main()
