"""Human approval: tools declared with `approval: always` stop the run at their calls; a
person's decisions continue it with `Runtime.resume`, also from saved state in a new runtime."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.config import parse_config
from agent_runtime.errors import ConfigError, RunError
from agent_runtime.results import RunFinished, RunResult, ToolCall, ToolResult, Usage
from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers
from tests.mcp.conftest import stdio, write_config

TOOLS = '''
"""Tools of the approval tests: `delete_file` leaves a mark when it runs."""

from pathlib import Path


def delete_file(path: str) -> str:
    """Delete a file.

    Args:
        path: The file.
    """
    with Path(__file__).with_name("deleted.txt").open("a") as marks:
        marks.write(path + "\\n")
    return f"deleted {path}"


def get_weather(city: str) -> str:
    """The weather.

    Args:
        city: The city.
    """
    return f"Sunny in {city}"
'''


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


def project(tmp_path: Path, mock: MockVLLM, servers: dict[str, Any] | None = None) -> Path:
    module = f"approval_tools_{uuid.uuid4().hex[:8]}"  # one module per test: imports stay apart
    (tmp_path / f"{module}.py").write_text(TOOLS)
    return write_config(
        tmp_path,
        mock.url,
        servers or {},
        {
            "keeper": {
                "instructions": "Use the tools.",
                "tools": ["delete_file", "get_weather"],
                "mcp_servers": list(servers or {}),
            }
        },
        tools={
            "delete_file": {"function": f"{module}:delete_file", "approval": "always"},
            "get_weather": {"function": f"{module}:get_weather"},
        },
    )


def deleted(tmp_path: Path) -> list[str]:
    marks = tmp_path / "deleted.txt"
    return marks.read_text().splitlines() if marks.exists() else []


def records(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "trace.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def stop_at_delete(mock: MockVLLM) -> None:
    mock.add(
        Reply(
            reasoning="Delete it, and look at the weather.",
            calls=(call("delete_file", path="a.txt"), call("get_weather", city="Oslo")),
        ),
        Reply(reasoning="Done.", final="All done."),
    )


async def test_a_call_needing_approval_stops_the_run(mock: MockVLLM, tmp_path: Path) -> None:
    stop_at_delete(mock)
    async with Runtime.from_yaml(project(tmp_path, mock)) as runtime:
        result = await runtime.run("keeper", "Delete a.txt", session="s1")
        assert result.final_output is None
        [pending] = result.pending_approvals
        assert (pending.agent, pending.name, pending.arguments) == (
            "keeper",
            "delete_file",
            '{"path":"a.txt"}',
        )
        assert result.pending_state is not None
        assert deleted(tmp_path) == []
        # the turn's other tools ran without waiting
        outputs = [item.output for item in result.items if isinstance(item, ToolResult)]
        assert outputs == ["Sunny in Oslo"]
        assert result.to_dict()["pending_approvals"] == [
            {
                "agent": "keeper",
                "name": "delete_file",
                "arguments": '{"path":"a.txt"}',
                "call_id": pending.call_id,
                "type": "tool_call",
            }
        ]
        assert await runtime.session_items("s1") == []  # stored when the run ends
        assert len(mock.model_requests) == 1

        resumed = await runtime.resume(result, approve=[pending.call_id])
        assert resumed.final_output == "All done."
        assert resumed.pending_approvals == ()
        assert resumed.trace_id == result.trace_id
        assert deleted(tmp_path) == ["a.txt"]
        assert sorted(helpers.outputs_sent(mock, 1)) == ["Sunny in Oslo", "deleted a.txt"]
        stored = await runtime.session_items("s1")
        assert stored[0] == {"role": "user", "content": "Delete a.txt"}
        assert [item.get("type") for item in stored[1:]].count("function_call_output") == 2
        assert resumed.session_items == len(stored)
    ends = [(r["type"], r.get("outcome")) for r in records(tmp_path) if r["type"] != "model_call"]
    assert ("run_end", "awaiting_approval") in ends
    assert ("run_resume", None) in ends
    assert ends[-1] == ("run_end", "completed")
    assert {r["trace_id"] for r in records(tmp_path)} == {result.trace_id}


async def test_a_rejection_reaches_the_model(mock: MockVLLM, tmp_path: Path) -> None:
    stop_at_delete(mock)
    async with Runtime.from_yaml(project(tmp_path, mock)) as runtime:
        result = await runtime.run("keeper", "Delete a.txt")
        [pending] = result.pending_approvals
        resumed = await runtime.resume(result, reject={pending.call_id: "it is my thesis"})
    assert resumed.final_output == "All done."
    assert deleted(tmp_path) == []
    rejection = (
        "Error: the user did not approve `delete_file`: it is my thesis. Do not call it again "
        "for this; answer without it, or ask the user."
    )
    assert sorted(helpers.outputs_sent(mock, 1)) == [rejection, "Sunny in Oslo"]
    results = [item for item in resumed.items if isinstance(item, ToolResult)]
    assert rejection in [item.output for item in results]


async def test_decisions_recorded_on_the_result_are_used_by_resume(
    mock: MockVLLM, tmp_path: Path
) -> None:
    stop_at_delete(mock)
    async with Runtime.from_yaml(project(tmp_path, mock)) as runtime:
        result = await runtime.run("keeper", "Delete a.txt")
        [pending] = result.pending_approvals
        with pytest.raises(ValueError, match="no call waiting for approval has id 'nope'"):
            result.approve("nope")
        result.reject(pending, "it is my thesis")
        resumed = await runtime.resume(result)
    assert resumed.final_output == "All done."
    assert deleted(tmp_path) == []
    assert any(
        "did not approve `delete_file`: it is my thesis" in output
        for output in helpers.outputs_sent(mock, 1)
    )


async def test_a_call_approved_on_the_result_runs(mock: MockVLLM, tmp_path: Path) -> None:
    stop_at_delete(mock)
    async with Runtime.from_yaml(project(tmp_path, mock)) as runtime:
        result = await runtime.run("keeper", "Delete a.txt")
        result.approve(result.pending_approvals[0].call_id)
        resumed = await runtime.resume(result)
    assert resumed.final_output == "All done."
    assert deleted(tmp_path) == ["a.txt"]


async def test_resume_from_saved_state_in_a_fresh_runtime(mock: MockVLLM, tmp_path: Path) -> None:
    stop_at_delete(mock)
    path = project(tmp_path, mock)
    async with Runtime.from_yaml(path) as runtime:
        result = await runtime.run("keeper", "Delete a.txt", session="s2")
    saved = result.pending_state
    assert saved is not None
    call_id = result.pending_approvals[0].call_id
    async with Runtime.from_yaml(path) as fresh:
        with pytest.raises(ConfigError) as caught:
            await fresh.resume(saved, approve=["call_nope"])
        assert str(caught.value) == (
            f"resume(): approve[0]: no pending call has id 'call_nope'; pending: "
            f"{call_id} (delete_file)"
        )
        resumed = await fresh.resume(saved, approve=True)
        assert resumed.final_output == "All done."
        assert resumed.trace_id == result.trace_id
        assert len(await fresh.session_items("s2")) == resumed.session_items
    assert deleted(tmp_path) == ["a.txt"]


async def test_resume_refuses_what_is_not_a_stopped_run(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(Reply(final="Hi."))
    async with Runtime.from_yaml(project(tmp_path, mock)) as runtime:
        finished = await runtime.run("keeper", "Hello")
        with pytest.raises(RunError) as caught:
            await runtime.resume(finished, approve=True)
        assert str(caught.value) == (
            "resume() needs a run that stopped at calls needing approval; this result has "
            "no `pending_approvals` (its run ended)."
        )
        with pytest.raises(RunError) as caught:
            await runtime.resume("{}", approve=True)
        assert str(caught.value) == (
            "the pending state given to resume() is not one agent-runtime wrote; give the "
            "text of `RunResult.pending_state` unchanged."
        )


async def test_undecided_calls_stay_pending(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(
        Reply(calls=(call("delete_file", path="a"), call("delete_file", path="b"))),
        Reply(final="Both handled."),
    )
    async with Runtime.from_yaml(project(tmp_path, mock)) as runtime:
        result = await runtime.run("keeper", "Delete a and b")
        first, second = result.pending_approvals
        again = await runtime.resume(result, approve=[first.call_id])
        assert again.final_output is None
        assert [call.call_id for call in again.pending_approvals] == [second.call_id]
        done = await runtime.resume(again, reject={second.call_id: None})
    assert done.final_output == "Both handled."
    assert deleted(tmp_path) == ["a"]
    assert len(mock.model_requests) == 2


async def test_stream_ends_with_the_pending_approvals(mock: MockVLLM, tmp_path: Path) -> None:
    stop_at_delete(mock)
    async with Runtime.from_yaml(project(tmp_path, mock)) as runtime:
        events = [event async for event in runtime.stream("keeper", "Delete a.txt")]
        finished = events[-1]
        assert isinstance(finished, RunFinished)
        [pending] = finished.result.pending_approvals
        assert finished.result.final_output is None
        assert any(isinstance(e, ToolCall) and e.name == "delete_file" for e in events)
        more = [
            event
            async for event in runtime.resume_stream(finished.result, approve=[pending.call_id])
        ]
    last = more[-1]
    assert isinstance(last, RunFinished)
    assert last.result.final_output == "All done."
    assert any(isinstance(e, ToolResult) and e.output == "deleted a.txt" for e in more)
    assert deleted(tmp_path) == ["a.txt"]


async def test_an_mcp_tool_needing_approval(mock: MockVLLM, tmp_path: Path) -> None:
    servers = {"calc": stdio(tools=["echo", "add"], approval={"always": ["add"]})}
    mock.add(
        Reply(calls=(call("add", a=2, b=3), call("echo", text="hi"))),
        Reply(final="5"),
    )
    async with Runtime.from_yaml(project(tmp_path, mock, servers)) as runtime:
        result = await runtime.run("keeper", "2+3?")
        assert [(c.name, c.arguments) for c in result.pending_approvals] == [
            ("add", '{"a":2,"b":3}')
        ]
        resumed = await runtime.resume(result, approve=True)
    assert resumed.final_output == "5"
    assert sorted(helpers.outputs_sent(mock, 1)) == ["5", "hi"]


@pytest.mark.parametrize(
    ("approval", "expected"),
    [
        pytest.param("always", {"echo": True, "add": True}, id="always"),
        pytest.param("never", {"echo": False, "add": False}, id="never"),
        pytest.param({"always": ["add"]}, {"echo": False, "add": True}, id="always-list"),
        pytest.param({"never": ["add"]}, {"echo": True, "add": False}, id="never-list"),
    ],
)
def test_mcp_approval_shapes(approval: object, expected: dict[str, bool]) -> None:
    from agent_runtime.config.mcp import McpServerSpec

    spec = McpServerSpec(command=["server"], approval=approval)  # type: ignore[arg-type]
    assert {name: spec.needs_approval(name) for name in expected} == expected


def test_approval_declarations_are_checked() -> None:
    text = """
version: 1
backends:
  local: {base_url: "http://127.0.0.1:1/v1", model: m}
tools:
  delete: {function: "os.path:basename", approval: sometimes}
mcp_servers:
  files: {command: [server], approval: {always: [a], never: [b]}}
agents:
  a: {instructions: x, tools: [delete], mcp_servers: [files]}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    problems = {problem.path: problem.message for problem in caught.value.problems}
    assert problems == {
        "tools.delete.approval": "expected 'always' or 'never', got 'sometimes'.",
        "mcp_servers.files.approval": "give one of `always` (the tools that need approval) or "
        "`never` (the tools that do not), e.g. {always: [delete_file]}.",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            5,
            "expected always, never, {always: [tool names]} or {never: [tool names]}, got 5",
            id="number",
        ),
        pytest.param({"always": "a"}, "always: Input should be a valid list", id="not-a-list"),
        pytest.param({"always": [], "x": 1}, "x: Extra inputs are not permitted", id="extra"),
    ],
)
def test_mcp_approval_problems(value: object, message: str) -> None:
    import pydantic

    from agent_runtime.config.mcp import McpServerSpec

    with pytest.raises(pydantic.ValidationError) as caught:
        McpServerSpec(command=["server"], approval=value)  # type: ignore[arg-type]
    [error] = caught.value.errors()
    assert (error["loc"], error["msg"]) == (("approval",), message)


def test_pending_state_is_kept_out_of_repr(tmp_path: Path) -> None:
    result = RunResult(
        final_output=None,
        items=(),
        usage=Usage(),
        turns=1,
        trace_id="t",
        agent="a",
        pending_state='{"secret": 1}',
    )
    assert "secret" not in repr(result)
    assert "pending_state" not in result.to_dict()


async def test_a_durable_run_needing_approval_fails(mock: MockVLLM, tmp_path: Path) -> None:
    from agent_runtime.durable import DurableEngine

    stop_at_delete(mock)
    path = project(tmp_path, mock)
    with path.open("a") as document:
        document.write(
            f"durability:\n  database_url: sqlite:///{tmp_path / 'runs.sqlite'}\n  poll_s: 0.05\n"
        )
    async with Runtime.from_yaml(path) as runtime, DurableEngine(runtime):
        handle = await runtime.submit("keeper", "Delete a.txt")
        with pytest.raises(RunError) as caught:
            await runtime.result(handle.run_id, timeout=30)
    assert str(caught.value) == (
        "agent `keeper` called a tool that needs approval (`approval: always` in agents.yaml), "
        "which durable runs do not support yet. Set `approval: never` on the tool, or run the "
        "agent with `run` instead of `submit`."
    )
    assert deleted(tmp_path) == []
