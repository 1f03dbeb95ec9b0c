"""vLLM's own answers, recorded by scripts/vllm_oracle/capture.py, for comparison in tests.

    from tests.vllm_fixtures import load, normalise

    cases = load("0.33.0", "responses")          # {case id: case}
    expected = cases["responses.reasoning_call"]["non_streaming"]["body"]
    assert normalise(mock_body) == expected

`normalise` is the very function capture.py applied to vLLM's answers (generated ids become
`fc_<1>`-style placeholders, `created`/`created_at` become 0, the fingerprint hash becomes
`<fingerprint>`); see tests/fixtures/vllm/README.md for the rules and the file formats.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

__all__ = [
    "FIXTURES",
    "ID_PREFIXES",
    "KINDS",
    "TIMESTAMP_KEYS",
    "VERSIONS",
    "document",
    "load",
    "normalise",
    "path_of",
]

FIXTURES = ROOT / "tests" / "fixtures" / "vllm"
"""One folder per vLLM version."""
VERSIONS = ("0.33.0", "0.22.1")
"""The vLLM versions captured."""
KINDS = ("render", "responses", "errors", "endpoints")
"""The fixture files of each version."""


def _load_normalise() -> Any:
    # The implementation lives beside capture.py, which runs in the oracle's own environment
    # and cannot import the project's test code; import that one file by path.
    path = ROOT / "scripts" / "vllm_oracle" / "normalise.py"
    spec = importlib.util.spec_from_file_location("vllm_oracle_normalise", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_normalise = _load_normalise()
normalise = _normalise.normalise
ID_PREFIXES: tuple[str, ...] = _normalise.ID_PREFIXES
TIMESTAMP_KEYS: frozenset[str] = _normalise.TIMESTAMP_KEYS


def document(version: str, kind: str) -> dict[str, Any]:
    """The whole fixture file: `kind`, `vllm`, `captured_with` and the `cases` list (a fresh
    copy on every call, so a test may change it)."""
    result: dict[str, Any] = json.loads(path_of(version, kind).read_text(encoding="utf-8"))
    return result


def load(version: str, kind: str) -> dict[str, dict[str, Any]]:
    """The cases of one fixture file by id, skipped cases (`"skipped": why`) included."""
    return {case["id"]: case for case in document(version, kind)["cases"]}


def path_of(version: str, kind: str) -> Path:
    """Where a fixture file lives."""
    return FIXTURES / version / f"{kind}.json"
