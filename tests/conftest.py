"""Shared test setup: the network guard on, and a check that no test leaves files in the source
tree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

_ROOT = Path(__file__).resolve().parents[1]
# CI runs the property tests with a fixed seed, so a run is repeatable; locally they explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Caches of the tools themselves (listed in .gitignore), not files a test wrote.
_CACHES = frozenset(
    {".git", ".venv", "__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
)


def _tree() -> set[Path]:
    found: set[Path] = set()
    for folder, subfolders, files in os.walk(_ROOT):
        subfolders[:] = [name for name in subfolders if name not in _CACHES]
        here = Path(folder)
        found.update(here / name for name in files if not name.startswith(".coverage"))
        found.update(here / name for name in subfolders)
    return found


@pytest.fixture(scope="session", autouse=True)
def _source_tree_untouched(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the session when a test leaves new files or folders in the repository (tests write
    into `tmp_path`). Checked once per worker, over the tests that worker ran."""
    before = _tree()
    yield
    left = sorted(str(path.relative_to(_ROOT)) for path in _tree() - before)
    if left:
        pytest.fail(f"tests left files in the source tree: {', '.join(left[:10])}")
