"""Fixtures shared by the forecasting tests."""

from __future__ import annotations

import builtins

import pytest


@pytest.fixture
def hide_statsforecast(monkeypatch):
    """Makes `import statsforecast...` fail from now on, as on a machine without the extra."""
    real_import = builtins.__import__

    def no_statsforecast(name, *args, **kwargs):
        if name.startswith("statsforecast"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    return lambda: monkeypatch.setattr(builtins, "__import__", no_statsforecast)
