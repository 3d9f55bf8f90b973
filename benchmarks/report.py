"""Writing a benchmark's figures into its marked section of a results file."""

from __future__ import annotations

import re
from pathlib import Path


def replace_section(path: Path, body: str, begin: str, end: str) -> None:
    """Replaces the section between the `begin` and `end` markers of `path` with `body`
    (appended when the file has no such section)."""
    text = path.read_text() if path.is_file() else ""
    section = f"{begin}\n{body}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
