"""Cancellation and sessions under failure: nothing half-done is kept, nothing done is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import BackendError, BackendUnavailableError, RunLimitError, Runtime
from agent_runtime.sessions import consistent_prefix
from agent_runtime.testing import Fault, MockVLLM, Reply, call, fault
from tests import helpers

FAULTS = helpers.PROJECT / "faults.yaml"


@pytest.fixture
async def mock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        monkeypatch.setenv("MOCK_URL", server.url)  # the `hang` tool finds the mock there
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(FAULTS, environ=environ) as rt:
        yield rt


def kinds(items: list[Any]) -> list[str]:
    return [item.get("type", "message") for item in items]


async def wait_for(mock: MockVLLM, condition: Any) -> None:
    await asyncio.to_thread(mock.wait_until, condition, timeout=30)


def tool_started(mock: MockVLLM) -> bool:
    return any(r.path == "/health" for r in mock.requests)  # the `hang` tool calls /health


async def next_run_works(mock: MockVLLM, runtime: Runtime, session: str) -> list[Any]:
    """The session is resent as it is stored; the mock (like vLLM) refuses inconsistent ones."""
    stored = await runtime.session_items(session)
    assert consistent_prefix(stored) == stored
    mock.add(Reply(final="fine"))
    result = await runtime.run("worker", "still there?", session=session)
    assert result.final_output == "fine"
    return stored


async def test_cancelling_the_caller_aborts_the_request(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final="late", fault=Fault(delay_s=30)))
    task = asyncio.create_task(runtime.run("worker", "hi", session="c1"))
    await wait_for(mock, lambda m: bool(m.model_requests))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(mock, lambda m: m.model_requests[0].disconnected)
    stored = await next_run_works(mock, runtime, "c1")
    assert stored == [{"role": "user", "content": "hi"}]


async def test_cancelling_the_caller_cancels_the_tool(
    mock: MockVLLM, runtime: Runtime, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    mock.add(Reply(reasoning="Wait.", calls=[call("hang", marker=str(marker))]))
    task = asyncio.create_task(runtime.run("worker", "wait", session="c2"))
    await wait_for(mock, tool_started)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert marker.read_text() == "cancelled"
    # The call had no output yet: it is not kept (nor is the reasoning that led to it).
    stored = await next_run_works(mock, runtime, "c2")
    assert stored == [{"role": "user", "content": "wait"}]


async def test_run_budget_cancels_the_tool(
    mock: MockVLLM, runtime: Runtime, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    mock.add(Reply(calls=[call("hang", marker=str(marker))]))
    with pytest.raises(RunLimitError, match=r"run_timeout_s=1 s"):
        await runtime.run("budgeted", "wait")
    assert marker.read_text() == "cancelled"


async def test_streaming_caller_that_stops_early_cancels_the_run(
    mock: MockVLLM, runtime: Runtime, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    mock.add(Reply(reasoning="Wait.", calls=[call("hang", marker=str(marker))]))
    stream = runtime.stream("worker", "wait")
    async for event in stream:
        if type(event).__name__ == "ToolCall":
            break
    await wait_for(mock, tool_started)
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_for(mock, lambda m: any(r.path == "/version" for r in m.requests))
    assert marker.read_text() == "cancelled"


@pytest.mark.parametrize(
    ("boundary", "script", "stored_kinds"),
    [
        pytest.param(
            "before the first answer",
            [fault(status=500)] * 3,
            ["message"],
            id="model-call-fails",
        ),
        pytest.param(
            "after a tool, at the next model call",
            [
                Reply(reasoning="Use it.", calls=[call("get_weather", city="Oslo")]),
                *[fault(status=503)] * 3,
            ],
            ["message", "reasoning", "function_call", "function_call_output"],
            id="next-model-call-fails",
        ),
        pytest.param(
            "after two tools in one turn, at the next model call",
            [
                Reply(
                    calls=[call("get_weather", city="Oslo"), call("add", a=1, b=2)],
                ),
                *[fault(drop_connection=True)] * 3,
            ],
            [
                "message",
                "function_call",
                "function_call",
                "function_call_output",
                "function_call_output",
            ],
            id="after-parallel-tools",
        ),
        pytest.param(
            "after a preamble and a tool, at the next model call",
            [
                Reply(reasoning="r", preamble="Checking.", calls=[call("add", a=1, b=2)]),
                *[fault(status=500)] * 3,
            ],
            ["message", "reasoning", "message", "function_call", "function_call_output"],
            id="after-preamble",
        ),
    ],
)
async def test_a_failed_run_keeps_what_was_done(
    mock: MockVLLM,
    runtime: Runtime,
    boundary: str,
    script: list[Reply],
    stored_kinds: list[str],
) -> None:
    mock.add(*script)
    with pytest.raises(BackendError):
        await runtime.run("worker", "do it", session="s")
    stored = await next_run_works(mock, runtime, "s")
    assert kinds(stored) == stored_kinds, boundary
    # The next run resent exactly what was kept, then its own message.
    resent = mock.model_requests[-1].json["input"]
    assert kinds(resent) == [*[k for k in stored_kinds if k != "reasoning"], "message"]


async def test_a_failed_streamed_run_keeps_what_was_done(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(
        Reply(reasoning="Use it.", calls=[call("get_weather", city="Oslo")]),
        *[Reply(final="x", fault=Fault(cut_stream=3))] * 3,
    )
    with pytest.raises(BackendError, match="the answer broke off") as error:
        async for _ in runtime.stream("worker", "do it", session="st"):
            pass
    assert not isinstance(error.value, BackendUnavailableError)  # the server was reached
    stored = await next_run_works(mock, runtime, "st")
    assert kinds(stored) == ["message", "reasoning", "function_call", "function_call_output"]
