"""Paths and small helpers that tests in several folders share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_runtime.testing import MockVLLM

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


def outputs_sent(mock: MockVLLM, request: int) -> list[str]:
    """The tool outputs model request `request` (0-based) carried for the first time."""
    before = {o.call_id for o in mock.model_requests[request - 1].function_outputs}
    outputs = mock.model_requests[request].function_outputs
    return [o.output for o in outputs if o.call_id not in before]
