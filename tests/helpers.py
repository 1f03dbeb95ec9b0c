"""Paths and small helpers that tests in several folders share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The repository."""
PROJECT = ROOT / "tests" / "project"
"""The test project: agents.yaml (and faults.yaml, soak.yaml) with tools in `fixture_tools`."""
EXAMPLES = ROOT / "examples"
"""The repository's examples (mock scripts)."""


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a nested document of dicts and lists, parents before children."""
    found: list[tuple[Any, ...]] = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found
