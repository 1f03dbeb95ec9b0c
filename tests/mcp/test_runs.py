"""MCP servers in runs: their tools offered to agents and called through the mock model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_runtime.errors import ConfigError
from agent_runtime.mcp import McpServerError
from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers
from tests.mcp.conftest import stdio, write_config


async def test_stdio_tool_called_by_the_model(mock: MockVLLM, tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        mock.url,
        {"test": stdio(tools=["echo", "add"])},
        {"helper": {"instructions": "Use the tools.", "mcp_servers": ["test"]}},
    )
    mock.add(
        Reply(reasoning="Add them.", calls=[call("add", a=2, b=3)]),
        Reply(reasoning="Done.", final="5"),
    )
    async with Runtime.from_yaml(path) as runtime:
        result = await runtime.run("helper", "2+3?")
    assert result.final_output == "5"
    assert helpers.outputs_sent(mock, 1) == ["5"]
    body = mock.model_requests[0].json
    assert [tool["name"] for tool in body["tools"]] == ["echo", "add"]
    records = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    calls = [r for r in records if r["type"] == "tool_call"]
    assert [(c["name"], c["arguments"], c["output"]) for c in calls] == [
        ("add", '{"a":2,"b":3}', "5")
    ]


async def test_streamable_http_with_headers(
    mock: MockVLLM, tmp_path: Path, http_server: Callable[..., str]
) -> None:
    url = http_server("--token", "s3cret-token")
    path = write_config(
        tmp_path,
        mock.url,
        {"tickets": {"url": url, "headers": {"Authorization": "Bearer ${TICKETS_TOKEN}"}}},
        {"helper": {"instructions": "Use the tools.", "mcp_servers": ["tickets"]}},
    )
    mock.add(Reply(calls=[call("echo", text="over http")]), Reply(final="ok"))
    runtime = Runtime.from_yaml(path, environ={"TICKETS_TOKEN": "s3cret-token"})
    async with runtime:
        result = await runtime.run("helper", "go")
        assert result.final_output == "ok"
        assert helpers.outputs_sent(mock, 1) == ["over http"]
    assert "Bearer s3cret-token" in runtime.config.secrets()

    wrong = Runtime.from_yaml(path, environ={"TICKETS_TOKEN": "wrong-token"})
    with pytest.raises(McpServerError) as caught:
        async with wrong:
            pass
    assert str(caught.value) == (
        f"MCP server 'tickets' (streamable HTTP: {url}) cannot be used: Server returned an "
        "error response. Fix: check that the server runs "
        "and that the URL and headers are right; `agent-runtime doctor` checks it."
    )


async def test_prefix_and_filters(mock: MockVLLM, tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        mock.url,
        {
            "files": stdio(tools=["search", "echo"]),
            "tickets": stdio(prefix="tickets", exclude_tools=["crash", "hang", "fail", "env"]),
        },
        {"helper": {"instructions": "Use the tools.", "mcp_servers": ["files", "tickets"]}},
    )
    mock.add(Reply(calls=[call("tickets_search", query="bug")]), Reply(final="ok"))
    async with Runtime.from_yaml(path) as runtime:
        await runtime.run("helper", "go")
    names = [tool["name"] for tool in mock.model_requests[0].json["tools"]]
    assert names == [  # in the server's order
        "echo",
        "search",
        "tickets_echo",
        "tickets_add",
        "tickets_pid",
        "tickets_search",
    ]
    assert helpers.outputs_sent(mock, 1) == ["found bug"]


async def test_a_clash_found_when_tools_are_listed(mock: MockVLLM, tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        mock.url,
        {"files": stdio(), "tickets": stdio(exclude_tools=["echo"])},
        {"helper": {"instructions": "Use the tools.", "mcp_servers": ["files", "tickets"],
                    "tools": ["echo"]}},
        tools={"echo": {"function": "os.path:basename", "name": "echo"}},
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        async with Runtime.from_yaml(path):
            pass
    assert str(caught.value) == (
        f"{path} has 2 problems:\n"
        f"  {path}  agents.helper.mcp_servers[0]: the tool 'echo' of MCP server 'files' is "
        "also the name of the agent's own tools or handoffs: the model would see it twice; "
        "set `prefix:` on mcp_servers.files, or leave it out with `exclude_tools:`\n"
        f"  {path}  agents.helper.mcp_servers[1]: the tools 'add', 'pid', 'env', 'fail', "
        "'crash', 'hang', 'search' of MCP server 'tickets' are also offered by MCP server "
        "'files': the model would see them twice; set `prefix:` on mcp_servers.tickets or "
        "mcp_servers.files, or leave them out with `exclude_tools:`"
    )
