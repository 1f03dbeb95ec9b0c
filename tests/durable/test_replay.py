"""Recovery without killing a process: an engine closed abruptly in the middle of a run (its
tasks cancelled, as a crash leaves the run unfinished in the database), then an engine with the
same executor id, which recovers the run. Recorded steps are not made again; the step in
flight is, unless its tool is marked `idempotent: false`."""

from __future__ import annotations

import asyncio
import threading

from agent_runtime.durable import DurableEngine, interrupted_message
from agent_runtime.testing import MockVLLM, RecordedRequest, Reply, call
from tests.durable.conftest import Project
from tests.helpers import outputs_sent

TIMEOUT_S = 30


async def wait_for(condition: object, what: str) -> None:
    """Wait (bounded) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_run_recovered_in_a_model_call_does_not_redo_finished_steps(
    project: Project, mock: MockVLLM
) -> None:
    release = threading.Event()

    async def held(record: RecordedRequest) -> Reply:
        await asyncio.to_thread(release.wait, TIMEOUT_S)
        return Reply(final="too late")

    mock.add(
        Reply(reasoning="Call get_weather.", calls=(call("get_weather", city="Tokyo"),)),
        held,
        Reply(reasoning="Sunny.", final="Sunny in Tokyo."),
    )
    try:
        async with project.runtime() as runtime:
            handle = await runtime.submit("weather", "Weather in Tokyo?")
            engine = DurableEngine(runtime, executor_id="w-crash")
            await engine.start()
            await wait_for(lambda: len(mock.model_requests) == 2, "the second model call")
            await engine.aclose()  # the worker "dies" during the second model call
            assert runtime.status(handle.run_id).status == "running"
            async with DurableEngine(runtime, executor_id="w-crash"):
                result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    finally:
        release.set()
    assert result.final_output == "Sunny in Tokyo."
    # The first model call and the tool call were recorded: made once. The second model call
    # was in flight: made again.
    assert len(mock.model_requests) == 3
    assert project.tool_calls() == ["get_weather Tokyo"]
    assert [item.type for item in result.items] == [
        "reasoning",
        "tool_call",
        "tool_result",
        "reasoning",
        "message",
    ]
    assert result.usage.requests == 2


async def test_an_interrupted_idempotent_tool_call_is_made_again(
    project: Project, mock: MockVLLM
) -> None:
    mock.add(
        Reply(reasoning="Use the gate.", calls=(call("gate", note="a"),)),
        Reply(final="Through."),
    )
    async with project.runtime() as runtime:
        handle = await runtime.submit("waiter", "Go through.")
        engine = DurableEngine(runtime, executor_id="w-gate")
        await engine.start()
        await wait_for(lambda: project.tool_calls("gate started"), "the tool call")
        await engine.aclose()
        project.gate.touch()
        async with DurableEngine(runtime, executor_id="w-gate"):
            result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    assert result.final_output == "Through."
    assert project.tool_calls("gate") == ["gate started a", "gate started a", "gate done a"]
    assert len(mock.model_requests) == 2
    assert outputs_sent(mock, 1) == ["opened a"]


async def test_an_interrupted_call_of_a_tool_not_idempotent_is_not_made_again(
    project: Project, mock: MockVLLM
) -> None:
    mock.add(
        Reply(reasoning="Charge it.", calls=(call("charge", amount=5),)),
        Reply(final="I could not confirm the charge."),
    )
    async with project.runtime() as runtime:
        handle = await runtime.submit("payer", "Charge 5.", run_id="run-pay")
        engine = DurableEngine(runtime, executor_id="w-pay")
        await engine.start()
        await wait_for(lambda: project.tool_calls("charge started"), "the tool call")
        await engine.aclose()
        project.gate.touch()
        async with DurableEngine(runtime, executor_id="w-pay"):
            result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    assert result.final_output == "I could not confirm the charge."
    (started,) = project.tool_calls("charge")
    assert started.startswith("charge started 5 run-pay:")
    assert outputs_sent(mock, 1) == [interrupted_message("charge")]
    assert len(mock.model_requests) == 2


async def test_tool_calls_of_one_turn_replay_at_their_own_steps(
    project: Project, mock: MockVLLM
) -> None:
    release = threading.Event()

    async def held(record: RecordedRequest) -> Reply:
        await asyncio.to_thread(release.wait, TIMEOUT_S)
        return Reply(final="too late")

    mock.add(
        Reply(
            reasoning="Both at once.",
            calls=(
                call("add", a=1, b=2),
                call("get_weather", city="Oslo"),
                call("add", a=3, b=4),
            ),
        ),
        held,
        Reply(final="3, Oslo, 7."),
    )
    try:
        async with project.runtime() as runtime:
            handle = await runtime.submit("weather", "Do both.")
            engine = DurableEngine(runtime, executor_id="w-many")
            await engine.start()
            await wait_for(lambda: len(mock.model_requests) == 2, "the second model call")
            await engine.aclose()
            async with DurableEngine(runtime, executor_id="w-many"):
                result = await runtime.result(handle.run_id, timeout=TIMEOUT_S)
    finally:
        release.set()
    assert result.final_output == "3, Oslo, 7."
    assert sorted(project.tool_calls()) == ["add 1 2", "add 3 4", "get_weather Oslo"]
    outputs = [item.output for item in result.items if item.type == "tool_result"]
    assert outputs[0] == "3"
    assert outputs[2] == "7"
    assert "Oslo" in outputs[1]
    assert outputs_sent(mock, 1) == outputs
    assert [o.output for o in mock.model_requests[2].function_outputs] == outputs
