"""Fixtures of the agents.yaml tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

# Top-level packages the tests import from fixture folders; each test starts and ends without them.
_FIXTURE_PACKAGES = {"mytools", "tools", "nstools", "boom", "solo"}


@pytest.fixture(autouse=True)
def _fixture_modules() -> Iterator[None]:
    def ours(name: str) -> bool:
        return name.partition(".")[0] in _FIXTURE_PACKAGES

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    yield
    for name in [name for name in sys.modules if ours(name)]:
        del sys.modules[name]
    sys.modules.update(saved)
