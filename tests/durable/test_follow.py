"""`Runtime.follow`: a durable run's events while a worker executes it, the same as `stream`
gives (without the text deltas), each once, also across a recovery; a finished run's events
replayed; a run's error raised as `result` raises it. SQLite and Postgres; an engine in this
process, and a real worker process SIGKILLed mid-run."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent_runtime.durable import (
    DurableEngine,
    RunCancelledError,
    UnknownRunError,
)
from agent_runtime.errors import BackendError
from agent_runtime.results import (
    AgentChanged,
    ReasoningDelta,
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCall,
    ToolResult,
)
from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, RecordedRequest, Reply, call, fault
from tests.durable.conftest import Project
from tests.durable.workers import Held, Workers, serving, write_project

TIMEOUT_S = 30


def weather_script(final: str = "Sunny in Tokyo.") -> list[Reply]:
    return [
        Reply(reasoning="Call get_weather.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(reasoning="Sunny. Say it.", final=final),
    ]


def same(event: RunEvent) -> RunEvent:
    """An event without what differs between two runs of one script (the mock's call ids,
    a result's trace id)."""
    if isinstance(event, ToolCall | ToolResult):
        return dataclasses.replace(event, call_id="")
    if isinstance(event, RunFinished):
        items = tuple(same(item) for item in event.result.items)
        return RunFinished(result=dataclasses.replace(event.result, trace_id="", items=items))  # type: ignore[arg-type]
    return event


async def plain_events(runtime: Runtime, agent: str, text: str) -> list[RunEvent]:
    """What `stream` yields for a run, without the text deltas."""
    return [
        same(event)
        async for event in runtime.stream(agent, text)
        if not isinstance(event, ReasoningDelta | TextDelta)
    ]


async def followed(
    runtime: Runtime, run_id: str, seen: Callable[[RunEvent], object] | None = None
) -> list[RunEvent]:
    """Every event `follow` yields (bounded in time)."""
    events: list[RunEvent] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for event in runtime.follow(run_id):
            events.append(event)
            if seen is not None:
                seen(event)
    return events


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def held_reply(
    release: threading.Event, reply: Reply
) -> Callable[[RecordedRequest], Awaitable[Reply]]:
    async def held(record: RecordedRequest) -> Reply:
        await asyncio.to_thread(release.wait, TIMEOUT_S)
        return reply

    return held


async def test_follow_yields_the_events_of_stream_as_the_run_makes_progress(
    project: Project, mock: MockVLLM
) -> None:
    release = threading.Event()
    first, second = weather_script()
    mock.add(first, second, first, held_reply(release, second))
    events: list[RunEvent] = []
    try:
        async with project.runtime() as runtime:
            plain = await plain_events(runtime, "weather", "Weather in Tokyo?")
            handle = await runtime.submit("weather", "Weather in Tokyo?")
            async with DurableEngine(runtime):
                following = asyncio.create_task(followed(runtime, handle.run_id, events.append))
                # The tool's result arrives while the run's second model call is in flight.
                await wait_for(
                    lambda: any(isinstance(e, ToolResult) for e in events), "the tool result"
                )
                # (written just before that call is made)
                await wait_for(lambda: len(mock.model_requests) == 4, "the second model call")
                assert not following.done()
                release.set()
                followed_events = await following
                result = await runtime.result(handle.run_id)
    finally:
        release.set()
    assert [same(event) for event in followed_events] == plain
    assert [type(e).__name__ for e in followed_events] == [
        "AgentChanged",
        "Reasoning",
        "ToolCall",
        "ToolResult",
        "Reasoning",
        "Message",
        "RunFinished",
    ]
    finished = followed_events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result == result
    assert project.tool_calls() == ["get_weather Tokyo", "get_weather Tokyo"]


async def test_following_a_finished_run_replays_its_events(
    project: Project, mock: MockVLLM
) -> None:
    mock.add(*weather_script())
    async with project.runtime() as runtime:
        handle = await runtime.submit("weather", "Weather in Tokyo?")
        async with DurableEngine(runtime):
            result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
        # No engine now: the events come from the database.
        first = await followed(runtime, handle.run_id)
        again = await followed(runtime, handle.run_id)
    assert first == again
    assert first[0] == AgentChanged(agent="weather")
    assert list(first[1:-1]) == list(result.items)
    assert first[-1] == RunFinished(result=result)


async def test_a_handoff_is_followed_as_it_is_streamed(project: Project, mock: MockVLLM) -> None:
    handoff = Reply(reasoning="Weather question.", calls=(call("transfer_to_weather"),))
    mock.add(handoff, *weather_script(), handoff, *weather_script())
    async with project.runtime() as runtime:
        plain = await plain_events(runtime, "triage", "Weather in Tokyo?")
        async with DurableEngine(runtime):
            handle = await runtime.submit("triage", "Weather in Tokyo?")
            events = await followed(runtime, handle.run_id)
    assert [same(event) for event in events] == plain
    assert [type(e).__name__ for e in events][:4] == [
        "AgentChanged",
        "Reasoning",
        "Handoff",
        "AgentChanged",
    ]


async def test_a_run_recovered_mid_run_is_followed_once_per_event(
    project: Project, mock: MockVLLM
) -> None:
    release = threading.Event()
    mock.add(
        Reply(reasoning="Call get_weather.", calls=(call("get_weather", city="Tokyo"),)),
        held_reply(release, Reply(final="too late")),
        Reply(reasoning="Sunny.", final="Sunny in Tokyo."),
    )
    events: list[RunEvent] = []
    try:
        async with project.runtime() as runtime:
            handle = await runtime.submit("weather", "Weather in Tokyo?")
            following = asyncio.create_task(followed(runtime, handle.run_id, events.append))
            engine = DurableEngine(runtime, executor_id="w-follow")
            await engine.start()
            await wait_for(lambda: len(mock.model_requests) == 2, "the second model call")
            await wait_for(lambda: any(isinstance(e, ToolResult) for e in events), "the result")
            await engine.aclose()  # the worker "dies" during the second model call
            assert not following.done()
            async with DurableEngine(runtime, executor_id="w-follow"):
                result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
                during = await following
            after = await followed(runtime, handle.run_id)
    finally:
        release.set()
    assert len(mock.model_requests) == 3
    assert during == after
    assert during[0] == AgentChanged(agent="weather")
    assert list(during[1:-1]) == list(result.items)
    assert [item.type for item in result.items] == [
        "reasoning",
        "tool_call",
        "tool_result",
        "reasoning",
        "message",
    ]
    assert during[-1] == RunFinished(result=result)


async def test_an_answer_sent_back_for_its_output_schema_is_followed(
    project: Project, mock: MockVLLM
) -> None:
    extractor = (
        "  extractor:\n"
        "    instructions: Answer with JSON.\n"
        "    output_schema: {type: object, properties: {city: {type: string}, t: {type: number}},"
        " required: [city, t], additionalProperties: false}\n"
    )
    project.yaml.write_text(project.yaml.read_text().replace("agents:\n", "agents:\n" + extractor))
    answers = [Reply(final='{"city": "Tokyo"}'), Reply(final='{"city": "Tokyo", "t": 21}')]
    mock.add(*answers, *answers)
    async with project.runtime() as runtime:
        plain = await plain_events(runtime, "extractor", "Tokyo")
        async with DurableEngine(runtime):
            handle = await runtime.submit("extractor", "Tokyo")
            events = await followed(runtime, handle.run_id)
    assert [same(event) for event in events] == plain
    assert [type(e).__name__ for e in events] == [
        "AgentChanged",
        "Message",
        "Retrying",
        "AgentChanged",
        "Message",
        "RunFinished",
    ]
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.final_output == {"city": "Tokyo", "t": 21}


async def test_following_a_failed_run_raises_its_error(project: Project, mock: MockVLLM) -> None:
    mock.add(fault(status=400))
    async with project.runtime() as runtime:
        handle = await runtime.submit("weather", "Weather in Tokyo?")
        events: list[RunEvent] = []
        async with DurableEngine(runtime):
            with pytest.raises(BackendError) as raised:
                await followed(runtime, handle.run_id, events.append)
            with pytest.raises(BackendError) as expected:
                await runtime.result(handle.run_id)
    assert str(raised.value) == str(expected.value)
    assert events == [AgentChanged(agent="weather")]


async def test_following_an_unknown_or_cancelled_run(project: Project, mock: MockVLLM) -> None:
    async with project.runtime() as runtime:
        with pytest.raises(UnknownRunError):
            await followed(runtime, "run-nobody")
        handle = await runtime.submit("weather", "Weather in Tokyo?")
        await runtime.cancel(handle.run_id)
        with pytest.raises(RunCancelledError):
            await followed(runtime, handle.run_id)


async def test_leaving_follow_early_leaves_the_run_alone(project: Project, mock: MockVLLM) -> None:
    mock.add(*weather_script())
    async with project.runtime() as runtime:
        handle = await runtime.submit("weather", "Weather in Tokyo?")
        async with DurableEngine(runtime):
            async with asyncio.timeout(TIMEOUT_S):
                async for event in runtime.follow(handle.run_id):
                    if isinstance(event, ToolCall):
                        break
            result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    assert result.final_output == "Sunny in Tokyo."


# -- a worker process ---------------------------------------------------------------------------


async def test_a_run_on_a_killed_worker_is_followed_from_another_process(
    tmp_path: Path, database_url: str, workers: Workers
) -> None:
    held = Held(2)  # the second model call stays in flight until released
    with serving(held) as mock:
        project = write_project(tmp_path / "worker", database_url=database_url, mock_url=mock.url)
        first = workers.start(project)
        await asyncio.to_thread(first.ready)
        runtime = Runtime.from_yaml(project.config, environ=project.env(), trace_path=False)
        events: list[RunEvent] = []
        try:
            handle = await runtime.submit("recorder", "note tokyo")
            following = asyncio.create_task(followed(runtime, handle.run_id, events.append))
            await wait_for(lambda: any(isinstance(e, ToolResult) for e in events), "the result")
            # The tool's result is written just before the second model call is made.
            await asyncio.to_thread(
                mock.wait_until, lambda m: len(m.model_requests) == 2, timeout=TIMEOUT_S
            )
            second = workers.start(project)
            await asyncio.to_thread(second.ready)
            await asyncio.to_thread(first.kill)
            held.release()
            during = await following
            result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
            after = await followed(runtime, handle.run_id)
        finally:
            await runtime.aclose()
    assert len(mock.model_requests) == 3
    assert len(project.tool_lines()) == 1
    assert during == after
    assert list(during[1:-1]) == list(result.items)
    assert [item.type for item in result.items] == [
        "reasoning",
        "tool_call",
        "tool_result",
        "reasoning",
        "message",
    ]
    assert during[-1] == RunFinished(result=result)
