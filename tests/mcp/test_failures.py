"""MCP servers that fail: error answers, refused calls, calls that hang, servers that crash in a
call, that hang or exit at start-up; the model reads what went wrong, or the run fails with an
error naming the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import RunLimitError
from agent_runtime.mcp import McpServerError
from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers
from tests.mcp.conftest import stdio, write_config

AGENT = {"helper": {"instructions": "Use the tools.", "mcp_servers": ["test"]}}


def config(tmp_path: Path, mock: MockVLLM, **fields: Any) -> Path:
    return write_config(tmp_path, mock.url, {"test": stdio(**fields)}, AGENT)


def traced(tmp_path: Path, kind: str) -> list[dict[str, Any]]:
    lines = (tmp_path / "trace.jsonl").read_text().splitlines()
    return [record for line in lines if (record := json.loads(line))["type"] == kind]


async def test_error_answers_reach_the_model(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(
        Reply(calls=[call("fail", reason="the moon")]),
        Reply(calls=[call("add", a="two", b=3)]),
        Reply(calls=[call("add", '{"a": 1,')]),
        Reply(final="Sorry."),
    )
    async with Runtime.from_yaml(config(tmp_path, mock)) as runtime:
        result = await runtime.run("helper", "go")
    assert result.final_output == "Sorry."
    assert helpers.outputs_sent(mock, 1) == [
        "Error: `fail` failed on MCP server 'test': Error executing tool fail: no such thing: "
        "the moon. Call `fail` again with corrected arguments, or answer without it."
    ]
    assert helpers.outputs_sent(mock, 2) == [
        "Error: invalid arguments for `add`: a: 'two' is not of type 'integer'. Call `add` "
        "again with corrected arguments."
    ]
    assert helpers.outputs_sent(mock, 3) == [
        "Error: the arguments for `add` are not valid JSON (Expecting property name enclosed "
        "in double quotes at line 1 column 9): '{\"a\": 1,'. Call `add` again with a JSON object "
        "of its parameters."
    ]


async def test_invalid_calls_count_towards_the_limit(mock: MockVLLM, tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        mock.url,
        {"test": stdio()},
        AGENT,
        defaults={"max_invalid_calls": 2},
    )
    mock.add(Reply(calls=[call("add", a="x", b=1)]), Reply(calls=[call("add", b=1)]))
    async with Runtime.from_yaml(path) as runtime:
        with pytest.raises(RunLimitError, match=r"2 invalid tool calls in a row; the last one"):
            await runtime.run("helper", "go")


async def test_a_call_that_hangs_times_out(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(Reply(calls=[call("hang")]), Reply(calls=[call("echo", text="still here")]))
    mock.add(Reply(final="ok"))
    async with Runtime.from_yaml(config(tmp_path, mock, timeout_s=0.5)) as runtime:
        result = await runtime.run("helper", "go")
    assert result.final_output == "ok"
    assert helpers.outputs_sent(mock, 1) == [
        "Error: `hang` (MCP server 'test') did not finish within 0.5 s and was cancelled. Try "
        "again later or with simpler arguments, or answer without it."
    ]
    assert helpers.outputs_sent(mock, 2) == ["still here"]  # the connection still works
    [error] = traced(tmp_path, "tool_error")
    assert (error["name"], error["server"]) == ("hang", "test")


async def test_a_server_that_crashes_in_a_call_is_restarted(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(
        Reply(calls=[call("pid")]),
        Reply(calls=[call("crash")]),
        Reply(calls=[call("pid")]),
        Reply(final="ok"),
    )
    async with Runtime.from_yaml(config(tmp_path, mock)) as runtime:
        result = await runtime.run("helper", "go")
    assert result.final_output == "ok"
    [before] = helpers.outputs_sent(mock, 1)
    assert helpers.outputs_sent(mock, 2) == [
        "Error: MCP server 'test' stopped while running `crash` (its connection closed), so "
        "the call did not finish; the server was restarted. Call `crash` again if repeating "
        "it is safe, or answer without it."
    ]
    [after] = helpers.outputs_sent(mock, 3)
    assert before.isdigit() and after.isdigit() and before != after


async def test_past_max_restarts_the_run_fails_naming_the_server(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(Reply(calls=[call("crash")]), Reply(calls=[call("crash")]))
    async with Runtime.from_yaml(config(tmp_path, mock, max_restarts=1)) as runtime:
        with pytest.raises(McpServerError) as caught:
            await runtime.run("helper", "go")
        assert str(caught.value).startswith(
            f"MCP server 'test' (stdio: {' '.join(stdio()['command'])}) stopped 2 times "
            "without a successful call in between (max_restarts: 1); the last time: its "
            "connection closed. Check the server (`agent-runtime doctor` connects to it), or "
            "raise `mcp_servers.test.max_restarts`.\n  its stderr ended with:\n"
        )
        assert str(caught.value).endswith("crashing on purpose")
        # The next run starts the server afresh.
        mock.add(Reply(calls=[call("echo", text="back")]), Reply(final="ok"))
        result = await runtime.run("helper", "again")
    assert result.final_output == "ok"
    assert helpers.outputs_sent(mock, 3) == ["back"]


async def test_a_server_that_exits_at_start_up(mock: MockVLLM, tmp_path: Path) -> None:
    path = config(tmp_path, mock, command=[*stdio()["command"], "--exit-at-start"])
    runtime = Runtime.from_yaml(path)
    with pytest.raises(McpServerError) as caught:
        await runtime.start()
    await runtime.aclose()
    message = str(caught.value)
    assert message.startswith("MCP server 'test' (stdio: ")
    assert "--exit-at-start) cannot be used: " in message
    assert message.endswith(
        "Fix: check the command and its arguments (run it in a terminal: it should wait for "
        "input), or the server's log; `agent-runtime doctor` checks it.\n"
        "  its stderr ended with:\n    cannot open the database: permission denied"
    )


async def test_a_server_that_hangs_at_start_up(mock: MockVLLM, tmp_path: Path) -> None:
    path = config(
        tmp_path,
        mock,
        command=[*stdio()["command"], "--hang-at-start"],
        startup_timeout_s=0.5,
    )
    runtime = Runtime.from_yaml(path)
    try:
        with pytest.raises(McpServerError) as caught:
            await runtime.run("helper", "go")  # not started: the first run starts it
    finally:
        await runtime.aclose()
    assert str(caught.value).endswith(
        "--hang-at-start) did not answer within startup_timeout_s (0.5 s). Fix: check that it "
        "is an MCP server speaking the protocol, or raise startup_timeout_s; `agent-runtime "
        "doctor` checks it."
    )
    assert mock.model_requests == []


async def test_a_command_that_does_not_exist(mock: MockVLLM, tmp_path: Path) -> None:
    path = config(tmp_path, mock, command=["no-such-mcp-server-here", "--flag"])
    with pytest.raises(McpServerError) as caught:
        async with Runtime.from_yaml(path):
            pass
    assert str(caught.value) == (
        "MCP server 'test' (stdio: no-such-mcp-server-here --flag) cannot be started: "
        "'no-such-mcp-server-here': No such file or directory. Fix: check the command: is the "
        "program installed and on PATH (agent-runtime passes its PATH on)?; `agent-runtime "
        "doctor` checks it."
    )
