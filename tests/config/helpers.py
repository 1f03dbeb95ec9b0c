"""Helpers of the agents.yaml tests: the fixture project, two small documents, and agents.yaml
text parsed into a `Config` or into the message of its `ConfigError`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent_runtime.config import Config, parse_config
from agent_runtime.errors import ConfigError

PROJECT = Path(__file__).parent / "project"
"""tests/config/project: an agents.yaml using most of the format, its tools in `mytools`."""

EXAMPLE = """\
version: 1
backends:
  local:
    kind: vllm
    api: responses
    base_url: ${VLLM_BASE_URL:-http://localhost:8000/v1}
    api_key: ${VLLM_API_KEY:-EMPTY}
    model: openai/gpt-oss-20b
    timeout_s: 120
    max_retries: 2
tools:
  get_weather:
    function: tools.weather:get_weather
    timeout_s: 10
agents:
  weather-haiku:
    instructions: You only respond in haikus.
    backend: local
    model_settings: {reasoning_effort: low}
    tools: [get_weather]
    max_turns: 10
"""
"""A document like the README's: one backend, one tool (from a `tools` package beside it), one
agent."""

BACKEND = "backends: {local: {base_url: 'http://x/v1', model: m}}"
"""A `backends:` line for documents whose test is about something else."""


def write(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (name -> text, dedented) under `root`; returns `root`."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def parse(text: str, *, environ: dict[str, str] | None = None, base: Path = PROJECT) -> Config:
    """`text` (dedented) parsed as agents.yaml in `base`, with `environ` (default: empty)."""
    return parse_config(
        textwrap.dedent(text), source="agents.yaml", base_dir=base, environ=environ or {}
    )


def error(text: str, *, environ: dict[str, str] | None = None, base: Path = PROJECT) -> str:
    """The message of the `ConfigError` that parsing `text` raises (see `parse`)."""
    with pytest.raises(ConfigError) as caught:
        parse(text, environ=environ, base=base)
    return str(caught.value)
