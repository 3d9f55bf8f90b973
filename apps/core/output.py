"""What the CLI writes: JSON-ready values, JSON lines and JSON files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def to_json_ready(value: Any) -> Any:
    """Numpy scalars, arrays and bytes as plain JSON values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return to_json_ready(value.tolist())
    if isinstance(value, np.generic):
        return to_json_ready(value.item())
    if isinstance(value, (list, tuple)):
        return [to_json_ready(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json_ready(item) for key, item in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value


def write_json_lines(rows: list[dict[str, Any]], output: Path | None) -> None:
    """One JSON object per row, into `output` or on stdout."""
    lines = "".join(json.dumps(to_json_ready(row), ensure_ascii=False) + "\n" for row in rows)
    if output is None:
        sys.stdout.write(lines)
    else:
        output.write_text(lines)


def write_json(value: Any, path: Path) -> None:
    path.write_text(json.dumps(to_json_ready(value), indent=2, ensure_ascii=False) + "\n")
