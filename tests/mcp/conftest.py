"""Fixtures of the MCP tests: an agents.yaml writer whose servers are tests/mcp/server.py
(stdio, or streamable HTTP in a subprocess on 127.0.0.1), and the mock vLLM server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_runtime.testing import MockVLLM

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.py"
"""The test MCP server."""


def stdio(*args: str, **fields: Any) -> dict[str, Any]:
    """An `mcp_servers` entry starting the test server over stdio."""
    return {"command": [sys.executable, str(SERVER), *args], **fields}


def write_config(
    tmp_path: Path,
    mock_url: str,
    servers: dict[str, Any],
    agents: dict[str, Any],
    *,
    tools: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Path:
    """agents.yaml in `tmp_path` with one mock backend, `servers` and `agents`."""
    document: dict[str, Any] = {
        "version": 1,
        "backends": {"mock": {"base_url": mock_url, "model": "openai/gpt-oss-20b",
                              "max_retries": 0}},
        "mcp_servers": servers,
        "agents": agents,
        "sessions": {"path": str(tmp_path / "sessions.sqlite3")},
        "tracing": {"path": str(tmp_path / "trace.jsonl"), "include_sensitive_data": True},
    }  # fmt: skip
    if tools:
        document["tools"] = tools
    if defaults:
        document["defaults"] = defaults
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start the test server over streamable HTTP in a subprocess; returns its URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> str:
        port_file = tmp_path / f"port-{len(started)}"
        log = tmp_path / f"http-server-{len(started)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, str(SERVER), "--http", str(port_file), *args],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test MCP server did not start: see {log}")
            time.sleep(0.02)
        return f"http://127.0.0.1:{port_file.read_text()}/mcp"

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=10)


def descendants(pid: int) -> set[int]:
    """The processes below `pid` (from /proc), at any depth."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
