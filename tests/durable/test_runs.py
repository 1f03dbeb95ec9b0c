"""Durable runs end to end on SQLite and Postgres: submitted, executed by an engine in this
process, read back; the same results and errors as plain runs, each model and tool call made
once."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from agent_runtime.durable import (
    DurableEngine,
    RunCancelledError,
    RunPendingError,
    UnknownRunError,
)
from agent_runtime.errors import BackendError, ConfigError
from agent_runtime.results import RunResult, ToolCall, ToolResult
from agent_runtime.testing import MockVLLM, Reply, call, fault
from tests.durable.conftest import Project

TIMEOUT_S = 30
HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."


def weather_script() -> list[Reply]:
    return [
        Reply(reasoning="Call get_weather.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(reasoning="Sunny. Write it.", final=HAIKU),
    ]


def same(result: RunResult) -> RunResult:
    """A result without what differs between two runs of the same script: its trace id, and
    the call ids the mock makes up."""
    items = tuple(
        dataclasses.replace(item, call_id="") if isinstance(item, ToolCall | ToolResult) else item
        for item in result.items
    )
    return dataclasses.replace(result, trace_id="", items=items)


async def test_durable_run_gives_the_result_of_a_plain_run(
    project: Project, mock: MockVLLM
) -> None:
    mock.add(*weather_script(), *weather_script())
    async with project.runtime() as runtime:
        plain = await runtime.run("weather", "Weather in Tokyo?")
        handle = await runtime.submit("weather", "Weather in Tokyo?")
        assert runtime.status(handle.run_id).status == "queued"
        async with DurableEngine(runtime) as engine:
            durable = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
            status = runtime.status(handle.run_id)
    assert same(durable) == same(plain)
    assert durable.final_output == HAIKU
    assert len(mock.model_requests) == 4
    assert project.tool_calls() == ["get_weather Tokyo", "get_weather Tokyo"]
    assert (status.status, status.agent, status.executor) == (
        "succeeded",
        "weather",
        engine.executor_id,
    )
    assert status.input_preview == "Weather in Tokyo?"


async def test_a_run_submitted_with_its_own_settings_runs_with_them(
    project: Project, mock: MockVLLM
) -> None:
    mock.add(*weather_script())
    async with project.runtime() as runtime, DurableEngine(runtime):
        handle = await runtime.submit(
            "weather",
            "Weather in Tokyo?",
            instructions="Answer in French.",
            model_settings={"temperature": 0.25},
            max_turns=4,
        )
        result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    assert result.final_output == HAIKU
    first = mock.model_requests[0].json
    assert "Answer in French." in first["instructions"]
    assert first["temperature"] == 0.25


async def test_settings_of_a_submitted_run_are_checked_before_it_is_queued(
    project: Project,
) -> None:
    async with project.runtime() as runtime:
        with pytest.raises(ConfigError, match="temperatur"):
            await runtime.submit("weather", "Hi", model_settings={"temperatur": 0.2})
        assert runtime.runs() == []


async def test_a_handoff_runs_durably(project: Project, mock: MockVLLM) -> None:
    handoff = Reply(reasoning="Weather question.", calls=(call("transfer_to_weather"),))
    mock.add(handoff, *weather_script(), handoff, *weather_script())
    async with project.runtime() as runtime:
        plain = await runtime.run("triage", "Weather in Tokyo?")
        async with DurableEngine(runtime):
            handle = await runtime.submit("triage", "Weather in Tokyo?")
            result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    assert same(result) == same(plain)
    assert result.agent == "weather"
    assert any(item.type == "handoff" for item in result.items)
    assert len(mock.model_requests) == 6
    assert project.tool_calls() == ["get_weather Tokyo", "get_weather Tokyo"]


async def test_an_agent_used_as_a_tool_runs_in_one_step(project: Project, mock: MockVLLM) -> None:
    script = [
        Reply(reasoning="Ask it.", calls=(call("weather", input="Tokyo?"),)),
        *weather_script(),
        Reply(final="It is sunny."),
    ]
    mock.add(*script, *script)
    async with project.runtime() as runtime:
        plain = await runtime.run("planner", "Weather in Tokyo?")
        async with DurableEngine(runtime):
            handle = await runtime.submit("planner", "Weather in Tokyo?")
            result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    assert same(result) == same(plain)
    assert result.final_output == "It is sunny."
    assert len(mock.model_requests) == 8
    assert project.tool_calls() == ["get_weather Tokyo", "get_weather Tokyo"]


async def test_runs_of_one_session_run_in_order(project: Project, mock: MockVLLM) -> None:
    mock.add(Reply(final="Hello Ada."), Reply(final="Your name is Ada."))
    async with project.runtime() as runtime:
        first = await runtime.submit("weather", "My name is Ada.", session="ada")
        second = await runtime.submit("weather", "What is my name?", session="ada")
        async with DurableEngine(runtime, concurrency=4):
            answer = await runtime.result(second.run_id, timeout=TIMEOUT_S)
            opening = await runtime.result(first.run_id, timeout=TIMEOUT_S)
        items = await runtime.session_items("ada")
    assert (opening.final_output, answer.final_output) == ("Hello Ada.", "Your name is Ada.")
    assert answer.session_items == len(items) == 4
    # The second run started from the first one's exchange.
    texts = [message.text for message in mock.model_requests[1].messages]
    assert texts[-3:] == ["My name is Ada.", "Hello Ada.", "What is my name?"]


async def test_a_failed_run_raises_the_error_of_a_plain_run(
    project: Project, mock: MockVLLM
) -> None:
    mock.add(fault(status=500, message="boom"), fault(status=500, message="boom"))
    async with project.runtime() as runtime:
        with pytest.raises(BackendError) as plain:
            await runtime.run("weather", "Hi")
        handle = await runtime.submit("weather", "Hi")
        async with DurableEngine(runtime):
            with pytest.raises(BackendError) as durable:
                await runtime.result(handle.run_id, timeout=TIMEOUT_S)
        status = runtime.status(handle.run_id)
    assert str(durable.value) == str(plain.value)
    assert status.status == "failed"
    assert status.error == f"BackendError: {plain.value}"


async def test_a_queued_run_can_be_cancelled(project: Project) -> None:
    async with project.runtime() as runtime:
        handle = await runtime.submit("weather", "Hi")
        with pytest.raises(RunPendingError, match="it is queued"):
            await runtime.result(handle.run_id, wait=False)
        status = await runtime.cancel(handle.run_id)
        with pytest.raises(RunCancelledError) as cancelled:
            await runtime.result(handle.run_id)
    assert status.status == "cancelled"
    assert str(cancelled.value) == (
        f"run {handle.run_id!r} was cancelled before it finished; it has no result."
    )


async def test_a_wait_that_times_out_says_the_run_is_pending(project: Project) -> None:
    async with project.runtime() as runtime:
        handle = await runtime.submit("weather", "Hi", run_id="run-slow")
        with pytest.raises(RunPendingError) as pending:
            await runtime.result(handle.run_id, timeout=0.1)
    assert str(pending.value) == (
        "run 'run-slow' has not finished after waiting 0.1 s: it is queued. Ask again later, "
        "or wait for it (`result(run_id, wait=True)`, `agent-runtime result --wait`); a queued "
        "run needs a running `agent-runtime worker`."
    )


async def test_submitting_a_run_id_again_returns_the_same_run(project: Project) -> None:
    async with project.runtime() as runtime:
        first = await runtime.submit("weather", "Hi", run_id="run-1")
        again = await runtime.submit("weather", "Hi", run_id="run-1")
        listed = runtime.runs()
    assert first == again
    assert [status.run_id for status in listed] == ["run-1"]


async def test_runs_lists_newest_first_with_filters(project: Project, mock: MockVLLM) -> None:
    mock.add(Reply(final="One."))
    async with project.runtime() as runtime:
        await runtime.submit("weather", "first", run_id="run-a")
        async with DurableEngine(runtime):
            await runtime.result("run-a", timeout=TIMEOUT_S)
        await runtime.submit("triage", "second", run_id="run-b")
        await asyncio.sleep(0.01)  # distinct creation times
        await runtime.submit("weather", "third", run_id="run-c")
        everything = runtime.runs()
        weather = runtime.runs(agent="weather")
        queued = runtime.runs(status="queued")
        done = runtime.runs(status=["succeeded", "failed"])
        one = runtime.runs(limit=1)
    assert [s.run_id for s in everything] == ["run-c", "run-b", "run-a"]
    assert [s.run_id for s in weather] == ["run-c", "run-a"]
    assert [s.run_id for s in queued] == ["run-c", "run-b"]
    assert [(s.run_id, s.status) for s in done] == [("run-a", "succeeded")]
    assert [s.run_id for s in one] == ["run-c"]
    assert [s.input_preview for s in everything] == ["third", "second", "first"]


async def test_an_unknown_run_id_is_named(project: Project) -> None:
    async with project.runtime() as runtime:
        with pytest.raises(UnknownRunError) as unknown:
            runtime.status("run-nope")
        with pytest.raises(UnknownRunError):
            await runtime.result("run-nope")
        with pytest.raises(UnknownRunError):
            await runtime.cancel("run-nope")
    assert str(unknown.value) == (
        "no durable run with id 'run-nope' in this database. Check the id (`agent-runtime runs` "
        "lists recent runs) and that --database-url / AGENT_RUNTIME_DATABASE_URL point where "
        "the run was submitted."
    )
