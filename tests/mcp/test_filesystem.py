"""The reference MCP filesystem server from npm (`@modelcontextprotocol/server-filesystem`,
pinned by tests/mcp/node/package-lock.json), started over stdio by node."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers
from tests.mcp.conftest import HERE, write_config

SERVER = HERE / "node" / "node_modules" / "@modelcontextprotocol" / "server-filesystem"
ENTRY = SERVER / "dist" / "index.js"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not ENTRY.exists(),
    reason="needs node and the npm filesystem server: install them with "
    "`npm ci --prefix tests/mcp/node` (as .ci/run does)",
)


async def test_reads_a_file_through_the_filesystem_server(mock: MockVLLM, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("buy milk\n")
    path = write_config(
        tmp_path,
        mock.url,
        {
            "files": {
                "command": ["node", str(ENTRY), "./data"],
                "prefix": "fs",
                "tools": ["read_text_file", "list_directory"],
            }
        },
        {"helper": {"instructions": "Read the notes.", "mcp_servers": ["files"]}},
    )
    mock.add(
        Reply(calls=[call("fs_list_directory", path=str(data))]),
        Reply(calls=[call("fs_read_text_file", path=str(data / "notes.txt"))]),
        Reply(calls=[call("fs_read_text_file", path="/etc/passwd")]),
        Reply(final="Buy milk."),
    )
    async with Runtime.from_yaml(path) as runtime:
        result = await runtime.run("helper", "What do my notes say?")
    assert result.final_output == "Buy milk."
    tools = [tool["name"] for tool in mock.model_requests[0].json["tools"]]
    assert sorted(tools) == ["fs_list_directory", "fs_read_text_file"]
    assert helpers.outputs_sent(mock, 1) == ["[FILE] notes.txt"]
    assert helpers.outputs_sent(mock, 2) == ["buy milk\n"]
    [denied] = helpers.outputs_sent(mock, 3)
    assert denied.startswith("Error: `fs_read_text_file` failed on MCP server 'files': ")
    assert "outside allowed directories" in denied
