"""Streams left before their end: however the reader goes away, and whether a tool or a model
call is running then, the run ends as a cancelled run (the tool or the request cancelled, a
`run_end` record, what was done kept in the session) and nothing is logged as a task exception
nobody retrieved."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import RunEvent, Runtime, ToolCall, ToolResult
from agent_runtime.sessions import SessionStore
from agent_runtime.testing import Fault, MockVLLM, Reply, call
from tests import helpers

FAULTS = helpers.PROJECT / "faults.yaml"


@pytest.fixture
async def mock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        monkeypatch.setenv("MOCK_URL", server.url)  # the `hang` tool finds the mock there
        yield server


@pytest.fixture
def runtime(mock: MockVLLM, tmp_path: Path) -> Runtime:
    """Closed by each test (one test closes it with a stream still open)."""
    return Runtime.from_yaml(FAULTS, environ={"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)})


@pytest.fixture
async def loop_errors(caplog: pytest.LogCaptureFixture) -> AsyncIterator[list[str]]:
    """What the event loop's exception handler got (e.g. "Task exception was never
    retrieved") and what was logged at WARNING or above, once the garbage is collected."""
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _, context: reported.append(str(context)))
    try:
        yield reported
    finally:
        loop.set_exception_handler(None)


def settled_errors(reported: list[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()  # a task nobody awaited reports its exception when it is collected
    return [*reported, *(record.getMessage() for record in caplog.records)]


async def wait_for(mock: MockVLLM, condition: Callable[[MockVLLM], bool]) -> None:
    await asyncio.to_thread(mock.wait_until, condition, timeout=30)


# -- where the run is when the reader leaves --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Point:
    """A moment of the run: the event after which the reader waits for it, then leaves."""

    name: str
    second: Reply
    records: list[str]

    def reached(self, event: RunEvent) -> bool:
        if self.name == "tool":
            return isinstance(event, ToolCall) and event.name == "hang"
        return isinstance(event, ToolResult)

    async def wait(self, mock: MockVLLM) -> None:
        if self.name == "tool":  # the `hang` tool calls /health when it starts
            await wait_for(mock, lambda m: any(r.path == "/health" for r in m.requests))
        else:
            await wait_for(mock, lambda m: len(m.model_requests) == 2)

    async def check_cancelled(self, mock: MockVLLM, marker: Path) -> None:
        if self.name == "tool":
            # The tool saw its cancellation.
            assert await asyncio.to_thread(marker.read_text) == "cancelled"
        else:
            await wait_for(mock, lambda m: m.model_requests[1].disconnected)


def points(marker: Path) -> dict[str, Point]:
    return {
        "tool": Point(
            name="tool",
            second=Reply(reasoning="Now wait.", calls=[call("hang", marker=str(marker))]),
            records=["run_start", "model_call", "tool_call", "model_call", "run_end"],
        ),
        "model-call": Point(
            name="model-call",
            second=Reply(final="late", fault=Fault(delay_s=60)),
            records=["run_start", "model_call", "tool_call", "run_end"],
        ),
    }


# -- the ways a reader leaves -----------------------------------------------------------------

Leave = Callable[[Runtime, MockVLLM, Point], Awaitable[None]]


async def break_out(runtime: Runtime, mock: MockVLLM, point: Point) -> None:
    async for event in runtime.stream("worker", "go", session="s"):
        if point.reached(event):
            await point.wait(mock)
            break  # no aclose(): the generator is garbage at once; asyncio closes it in a task


async def close_with_aclosing(runtime: Runtime, mock: MockVLLM, point: Point) -> None:
    async with contextlib.aclosing(runtime.stream("worker", "go", session="s")) as stream:
        async for event in stream:
            if point.reached(event):
                await point.wait(mock)
                break


async def cancel_the_reader(runtime: Runtime, mock: MockVLLM, point: Point) -> None:
    reached = asyncio.Event()

    async def read() -> None:
        async for event in runtime.stream("worker", "go", session="s"):
            if point.reached(event):
                reached.set()

    reader = asyncio.create_task(read())
    await reached.wait()
    await point.wait(mock)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader


def starlette_client_gone(spec_version: str) -> Leave:
    """A Starlette `StreamingResponse` of the run's events whose client goes away: with ASGI
    2.3 Starlette hears `http.disconnect` and cancels the response's task group; with 2.4 the
    next send fails and the body generators are just dropped."""
    from starlette.requests import ClientDisconnect
    from starlette.responses import StreamingResponse

    async def serve(runtime: Runtime, mock: MockVLLM, point: Point) -> None:
        reached = asyncio.Event()

        async def body() -> AsyncIterator[str]:
            async for event in runtime.stream("worker", "go", session="s"):
                if point.reached(event):
                    reached.set()
                yield f"{event.type}\n"

        async def receive() -> dict[str, Any]:
            await reached.wait()
            await point.wait(mock)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if spec_version == "2.4" and reached.is_set():
                await point.wait(mock)
                raise OSError("the client closed the connection")

        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": spec_version}}
        response = StreamingResponse(body(), media_type="text/plain")
        with contextlib.suppress(ClientDisconnect):
            await response(scope, receive, send)  # type: ignore[arg-type]

    return serve


LEAVE: dict[str, Leave] = {
    "break": break_out,
    "aclose": close_with_aclosing,
    "reader-cancelled": cancel_the_reader,
    "starlette-disconnect-asgi-2.3": starlette_client_gone("2.3"),
    "starlette-send-fails-asgi-2.4": starlette_client_gone("2.4"),
}


@pytest.mark.parametrize("where", ["tool", "model-call"])
@pytest.mark.parametrize("how", list(LEAVE))
async def test_a_stream_left_early_ends_as_a_cancelled_run(
    mock: MockVLLM,
    runtime: Runtime,
    tmp_path: Path,
    loop_errors: list[str],
    caplog: pytest.LogCaptureFixture,
    how: str,
    where: str,
) -> None:
    marker = tmp_path / "marker"
    point = points(marker)[where]
    mock.add(
        Reply(reasoning="Check first.", calls=[call("get_weather", city="Oslo")]),
        point.second,
        Reply(final="fine"),  # for the next run of the session
    )
    async with runtime:
        await LEAVE[how](runtime, mock, point)
        async with asyncio.timeout(60):  # the next run of the session waits for that one's end
            result = await runtime.run("worker", "still there?", session="s")
        stored = await runtime.session_items("s")
    assert result.final_output == "fine"

    await point.check_cancelled(mock, marker)
    records = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    left = [r for r in records if r["trace_id"] == records[0]["trace_id"]]
    assert [r["type"] for r in left] == point.records
    assert left[-1]["outcome"] == "cancelled"
    # Kept: the message and the finished tool call; not what was cut off.
    assert [(item.get("type", "message"), item.get("role")) for item in stored] == [
        ("message", "user"),
        ("reasoning", None),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert mock.model_requests[-1].user_texts == ["go", "still there?"]
    assert settled_errors(loop_errors, caplog) == []


async def test_a_stream_left_open_ends_when_the_runtime_closes(
    mock: MockVLLM,
    runtime: Runtime,
    tmp_path: Path,
    loop_errors: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    marker = tmp_path / "marker"
    point = points(marker)["tool"]
    mock.add(
        Reply(reasoning="Check first.", calls=[call("get_weather", city="Oslo")]), point.second
    )
    async with runtime:
        stream = runtime.stream("worker", "go", session="s")
        async for event in stream:
            if point.reached(event):
                await point.wait(mock)
                break
    # The runtime closed with the stream still referenced (not closed, not collected).
    await point.check_cancelled(mock, marker)
    records = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    assert [r["type"] for r in records] == point.records
    assert records[-1]["outcome"] == "cancelled"
    store = SessionStore(tmp_path / "sessions.sqlite3")
    try:
        assert len(store.load_sync("s")) == 4
    finally:
        store.close()
    await stream.aclose()  # type: ignore[attr-defined]
    del stream
    assert settled_errors(loop_errors, caplog) == []
