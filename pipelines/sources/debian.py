"""Files that ship in a Debian package: installed, or extracted once into the cache."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from pipelines.cache import cache_dir


def debian_file(package: str, installed: Path, cache_name: str) -> Path | None:
    """`installed` when the package is installed; otherwise the same file from the package.

    Without the package installed, `apt-get download PACKAGE` (no root needed) fetches its
    `.deb` and `dpkg-deb -x` extracts it under `cache_dir(cache_name)`, once. Returns None when
    neither works (no apt, no network): the caller names the command that installs it.
    """
    if installed.is_file():
        return installed
    folder = cache_dir(cache_name)
    cached = folder / installed.relative_to("/")
    if cached.is_file():
        return cached
    with tempfile.TemporaryDirectory(dir=folder, prefix="download-") as download_dir:
        try:
            subprocess.run(
                ["apt-get", "download", package],
                cwd=download_dir, capture_output=True, check=True, timeout=300,
            )  # fmt: skip
            (package_file,) = Path(download_dir).glob(f"{package}_*.deb")
            subprocess.run(
                ["dpkg-deb", "-x", str(package_file), str(folder)],
                capture_output=True, check=True, timeout=300,
            )  # fmt: skip
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return cached if cached.is_file() else None
