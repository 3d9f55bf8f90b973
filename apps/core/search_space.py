"""Helpers the apps' `search_space.py` files share."""

from __future__ import annotations

from typing import Any


def choice(hp: Any, name: str, options: list, default: Any) -> Any:
    """`hp.Choice` over `options` plus `default`, so every preset's own value is in the space."""
    return hp.Choice(name, sorted({*options, default}), default=default)
