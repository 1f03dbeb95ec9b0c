"""`list`, `validate` and `doctor` with MCP servers: the real entry point in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent_runtime.testing import MockVLLM
from tests.mcp.conftest import stdio, write_config

COMMAND = [sys.executable, "-m", "agent_runtime"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120)


def project(tmp_path: Path, mock_url: str = "http://127.0.0.1:9/v1") -> Path:
    return write_config(
        tmp_path,
        mock_url,
        {
            "files": stdio(tools=["echo", "search"], prefix="fs"),
            "broken": {"command": ["no-such-mcp-server-here"]},
        },
        {
            "helper": {"instructions": "Use the tools.", "mcp_servers": ["files"]},
            "other": {"instructions": "Use the tools.", "mcp_servers": ["broken"]},
        },
    )


def test_list_shows_each_agents_servers(tmp_path: Path) -> None:
    path = project(tmp_path)
    shown = run("list", "-c", str(path))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (
        "AGENT   BACKEND  MODEL               TOOLS\n"
        "helper  mock     openai/gpt-oss-20b  mcp:files[fs_echo, fs_search]\n"
        "other   mock     openai/gpt-oss-20b  mcp:broken\n"
    )
    rows = json.loads(run("list", "-c", str(path), "--json").stdout)
    assert rows[0]["mcp_servers"] == [
        {
            "name": "files",
            "transport": "stdio: " + " ".join(stdio()["command"]),
            "tools": ["echo", "search"],
            "exclude_tools": [],
            "prefix": "fs",
        }
    ]


def test_validate_checks_the_declarations(tmp_path: Path) -> None:
    path = project(tmp_path)
    assert run("validate", "-c", str(path)).stdout == (
        f"{path}: OK (2 agents, 0 tools, 1 backend, 2 MCP servers)\n"
    )
    path.write_text(
        "version: 1\n"
        "backends: {mock: {base_url: 'http://127.0.0.1:9/v1', model: m}}\n"
        "mcp_servers:\n"
        "  both: {command: [x], url: 'http://127.0.0.1:9/mcp'}\n"
        "  bad: {url: 'http://exa mple/mcp'}\n"
        "  secret: {url: 'http://127.0.0.1:9/mcp', headers: {X-Token: '${NO_SUCH_TOKEN}'}}\n"
        "agents:\n"
        "  helper: {instructions: hi, mcp_servers: [bothh]}\n"
    )
    checked = run("validate", "-c", str(path))
    assert checked.returncode == 2
    assert checked.stderr == (
        f"Error: {path} has 4 problems:\n"
        f"  {path}:4:9   mcp_servers.both: `command` and `url` are both set; use command for a "
        "server started here (stdio), or url for one that runs already (streamable HTTP).\n"
        f"  {path}:5:14  mcp_servers.bad.url: 'http://exa mple/mcp' has spaces or control "
        "characters; e.g. http://localhost:8000/mcp.\n"
        f"  {path}:6:62  mcp_servers.secret.headers.X-Token: environment variable "
        "`NO_SUCH_TOKEN` is not set (use ${NO_SUCH_TOKEN:-default} for a default).\n"
        f"  {path}:8:44  agents.helper.mcp_servers[0]: unknown MCP server 'bothh'. Did you "
        "mean 'both'?\n"
    )


def test_doctor_starts_each_server_and_lists_its_tools(mock: MockVLLM, tmp_path: Path) -> None:
    path = project(tmp_path, mock.url)
    checked = run("doctor", "-c", str(path), "--json")
    report = json.loads(checked.stdout)
    assert checked.returncode == 1
    assert report["ok"] is False
    files, broken = report["mcp_servers"]
    assert files == {
        "name": "files",
        "transport": "stdio: " + " ".join(stdio()["command"]),
        "ok": True,
        "tools": ["echo", "add", "pid", "env", "fail", "crash", "hang", "search"],
        "offered": ["fs_echo", "fs_search"],
    }
    assert broken["ok"] is False
    assert broken["detail"].startswith(
        "MCP server 'broken' (stdio: no-such-mcp-server-here) cannot be started: "
    )
