"""Tools: typed Python functions as SDK function tools whose failures are text for the model."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import RunContextWrapper
from agents.tool_context import ToolContext

from agent_runtime.errors import RunLimitError
from agent_runtime.guards import CallGuard
from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from agent_runtime.tools import (
    build_function_tool,
    format_tool_output,
    run_in_daemon_thread,
    tool_not_found_message,
)
from agent_runtime.tracing import RunTrace, TraceWriter, current_trace
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def fail(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why it fails.
    """
    raise LookupError(f"no such thing: {reason}")


def context(arguments: str = "") -> ToolContext[None]:
    return ToolContext(context=None, tool_name="t", tool_call_id="call_1", tool_arguments=arguments)


async def invoke(function: Any, arguments: str, **options: Any) -> Any:
    tool = build_function_tool(function, **options)
    return await tool.on_invoke_tool(context(arguments), arguments)


@pytest.fixture
def guard() -> Iterator[CallGuard]:
    """A run's trace with a strict guard (2 repeats, 2 invalid calls) for the tool to consult."""
    trace = RunTrace(TraceWriter(None), guard=CallGuard(2, 2))
    token = current_trace.set(trace)
    try:
        yield trace.guard
    finally:
        current_trace.reset(token)


# -- the tool the model sees ------------------------------------------------------------------


def test_schema_name_and_description_come_from_the_function() -> None:
    tool = build_function_tool(add)
    assert tool.name == "add"
    assert tool.description == "Add two integers."
    assert tool.strict_json_schema is True
    assert tool.params_json_schema == {
        "properties": {
            "a": {"description": "The first number.", "title": "A", "type": "integer"},
            "b": {"description": "The second number.", "title": "B", "type": "integer"},
        },
        "required": ["a", "b"],
        "title": "add_args",
        "type": "object",
        "additionalProperties": False,
    }


def test_name_description_and_strictness_can_be_overridden() -> None:
    def merge(values: dict) -> str:  # type: ignore[type-arg]  # a plain dict: not strict
        """Doc."""
        return json.dumps(values)

    tool = build_function_tool(merge, name="merge_values", description="Merge.", strict=False)
    assert (tool.name, tool.description, tool.strict_json_schema) == (
        "merge_values",
        "Merge.",
        False,
    )
    assert tool.params_json_schema["properties"]["values"]["additionalProperties"] is True


async def test_a_valid_call_returns_the_functions_value_as_text() -> None:
    assert await invoke(add, '{"a": 2, "b": 3}') == "5"


async def test_the_run_context_goes_to_a_first_parameter_typed_for_it() -> None:
    def whoami(ctx: RunContextWrapper[None], suffix: str) -> str:
        """Who called."""
        return f"{type(ctx).__name__} {ctx.tool_call_id}{suffix}"  # type: ignore[attr-defined]

    tool = build_function_tool(whoami)
    assert list(tool.params_json_schema["properties"]) == ["suffix"]
    assert await tool.on_invoke_tool(context(), '{"suffix": "!"}') == "ToolContext call_1!"


# -- what the model is told when its call is wrong ----------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param(
            '{"bad json',
            "Error: the arguments for `add` are not valid JSON (Unterminated string starting at "
            "line 1 column 2): '{\"bad json'. Call `add` again with a JSON object of its "
            "parameters.",
            id="unterminated-string",
        ),
        pytest.param(
            '{"a": 1 "b": 2}',
            "Error: the arguments for `add` are not valid JSON (Expecting ',' delimiter at line 1 "
            'column 9): \'{"a": 1 "b": 2}\'. Call `add` again with a JSON object of its '
            "parameters.",
            id="missing-comma",
        ),
        pytest.param(
            '{"a": 1,\n "b": 2\n',
            "Error: the arguments for `add` are not valid JSON (Expecting ',' delimiter at line 3 "
            'column 1): \'{"a": 1,\\n "b": 2\\n\'. Call `add` again with a JSON object of its '
            "parameters.",
            id="second-line",
        ),
        pytest.param(
            "[" * 250,
            "Error: the arguments for `add` are not valid JSON (Expecting value at line 1 column "
            f"251): '{'[' * 200}…'. Call `add` again with a JSON object of its parameters.",
            id="long-arguments-shortened",
        ),
        pytest.param(
            "42",
            "Error: the arguments for `add` must be a JSON object, not int: '42'.",
            id="number",
        ),
        pytest.param(
            "null",
            "Error: the arguments for `add` must be a JSON object, not NoneType: 'null'.",
            id="null",
        ),
        pytest.param(
            '{"a": "x", "b": [1]}',
            "Error: invalid arguments for `add`: a: Input should be a valid integer, unable to "
            "parse string as an integer (got 'x'); b: Input should be a valid integer (got [1]). "
            "Call `add` again with corrected arguments.",
            id="two-wrong-types",
        ),
        pytest.param(
            "",
            "Error: invalid arguments for `add`: a: Field required; b: Field required. Call `add` "
            "again with corrected arguments.",
            id="no-arguments",
        ),
        pytest.param(
            "  \n",
            "Error: invalid arguments for `add`: a: Field required; b: Field required. Call `add` "
            "again with corrected arguments.",
            id="blank-arguments",
        ),
    ],
)
async def test_bad_arguments_are_explained(arguments: str, expected: str) -> None:
    assert await invoke(add, arguments) == expected


async def test_empty_arguments_are_an_empty_object() -> None:
    def ping() -> str:
        """Answers pong."""
        return "pong"

    assert [await invoke(ping, text) for text in ("", "{}")] == ["pong", "pong"]


async def test_an_exception_is_named_with_its_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agent_runtime.tools")
    assert await invoke(fail, '{"reason": "gone"}') == (
        "Error: `fail` raised LookupError: no such thing: gone"
    )
    # The log says what failed, never with the arguments.
    assert caplog.record_tuples == [
        ("agent_runtime.tools", logging.INFO, "tool fail raised LookupError")
    ]


async def test_a_sync_tool_past_its_time_limit_is_abandoned_in_its_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def wait(label: str) -> str:
        """Blocks until released."""
        started.set()
        release.wait(timeout=30)
        finished.set()
        return label

    answer = await invoke(wait, '{"label": "x"}', timeout_s=0.05)
    assert answer == (
        "Error: `wait` did not finish within 0.05 s and was abandoned (it keeps running in its "
        "thread). Try again later or with simpler arguments, or answer without it."
    )
    assert started.is_set()
    assert not finished.is_set()  # still running: Python cannot stop a thread
    release.set()
    assert await asyncio.to_thread(finished.wait, 30)
    assert caplog.record_tuples == [
        ("agent_runtime.tools", logging.WARNING, "tool wait timed out after 0.05 s")
    ]


async def test_an_async_tool_past_its_time_limit_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def wait(label: str) -> str:
        """Waits forever."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return label

    answer = await invoke(wait, '{"label": "x"}', timeout_s=0.05)
    assert answer == (
        "Error: `wait` did not finish within 0.05 s and was stopped. Try again later or with "
        "simpler arguments, or answer without it."
    )
    assert cancelled.is_set()


async def test_no_time_limit() -> None:
    async def quick(label: str) -> str:
        """Answers at once."""
        return label

    assert await invoke(quick, '{"label": "done"}', timeout_s=None) == "done"


async def test_long_output_is_cut_with_a_note() -> None:
    def big(size: int) -> str:
        """A long text."""
        return "x" * size

    assert await invoke(big, '{"size": 12}', max_output_chars=12) == "x" * 12
    assert await invoke(big, '{"size": 12345}', max_output_chars=10) == (
        "xxxxxxxxxx\n[output truncated: 12,345 characters, showing the first 10]"
    )


# -- the loop guard, as the tool consults it ----------------------------------------------------


async def test_without_a_run_there_is_no_guard() -> None:
    calls = []

    def note(value: int) -> int:
        """Notes a value."""
        calls.append(value)
        return value

    tool = build_function_tool(note)
    for _ in range(7):
        assert await tool.on_invoke_tool(context(), '{"value": 1}') == "1"
    for _ in range(7):
        assert (await tool.on_invoke_tool(context(), "nope")).startswith("Error: ")
    assert calls == [1] * 7


async def test_a_repeated_call_is_refused_without_running(guard: CallGuard) -> None:
    calls = []

    def note(value: int) -> int:
        """Notes a value."""
        calls.append(value)
        return value

    tool = build_function_tool(note)
    answers = [await tool.on_invoke_tool(context(), '{"value": 1}') for _ in range(3)]
    assert answers == [
        "1",
        *(
            f"Error: you called `note` with these same arguments {times} times in a row; it was "
            "not run again, the result would not change. Use the results you already have, call "
            "something else, or answer."
            for times in (2, 3)
        ),
    ]
    assert calls == [1]
    with pytest.raises(RunLimitError) as error:
        await tool.on_invoke_tool(context(), '{"value": 1}')
    assert str(error.value) == (
        'loop guard: the model called `note` with the same arguments 4 times in a row ({"value": '
        "1}); it was told to stop after 2. Raise `max_repeated_calls` in agents.yaml if the "
        "repetition is intended."
    )


async def test_invalid_calls_count_and_a_valid_one_starts_over(guard: CallGuard) -> None:
    tool = build_function_tool(add)
    assert (await tool.on_invoke_tool(context(), "{")).startswith("Error: ")
    assert await tool.on_invoke_tool(context(), '{"a": 1, "b": 1}') == "2"
    assert (await tool.on_invoke_tool(context(), '{"a": 1}')).startswith("Error: ")
    with pytest.raises(RunLimitError) as error:
        await tool.on_invoke_tool(context(), "[]")
    assert str(error.value) == (
        "the model made 2 invalid tool calls in a row; the last one, to `add`: the arguments "
        "for `add` must be a JSON object, not list: '[]'. Raise `max_invalid_calls` in "
        "agents.yaml, or check that the tools' names and schemas are clear."
    )


# -- output as text ---------------------------------------------------------------------------


class Shown:
    def __str__(self) -> str:
        return "shown"


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("plain text", "plain text", id="str"),
        pytest.param(b"caf\xc3\xa9 \xff", "café \ufffd", id="bytes"),
        pytest.param({"t": "21 °C", "n": None}, '{"t": "21 °C", "n": null}', id="dict"),
        pytest.param([1, 2.5, True], "[1, 2.5, true]", id="list"),
        pytest.param(None, "null", id="none"),
        pytest.param({"x": Shown()}, '{"x": "shown"}', id="not-json-inside"),
        pytest.param(_circular(), "[[...]]", id="circular"),
    ],
)
def test_format_tool_output(value: Any, expected: str) -> None:
    assert format_tool_output(value, max_chars=100) == expected


def test_format_tool_output_cap() -> None:
    assert format_tool_output("abc", max_chars=3) == "abc"
    assert format_tool_output("abcd", max_chars=3) == (
        "abc\n[output truncated: 4 characters, showing the first 3]"
    )
    assert format_tool_output(10**1200, max_chars=1000).endswith(
        "\n[output truncated: 1,201 characters, showing the first 1,000]"
    )


# -- calls of tools that do not exist -----------------------------------------------------------


def test_tool_not_found_message() -> None:
    assert tool_not_found_message("get_wether", ["get_weather", "add"]) == (
        "Error: there is no tool named `get_wether`. Available tools: `get_weather`, `add`."
    )
    assert tool_not_found_message("search", []) == (
        "Error: there is no tool named `search`; this agent has no tools. Answer directly."
    )


# -- blocking functions in their own thread ---------------------------------------------------


async def test_run_in_daemon_thread_returns_the_result_from_another_daemon_thread() -> None:
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="unset")
    variable.set("caller's")
    seen: list[tuple[threading.Thread, str]] = []

    def work() -> int:
        seen.append((threading.current_thread(), variable.get()))
        return 42

    assert await run_in_daemon_thread(work) == 42
    [(thread, value)] = seen
    assert thread is not threading.current_thread()
    assert thread.daemon
    assert value == "caller's"  # the caller's context goes along


async def test_run_in_daemon_thread_raises_the_functions_exception() -> None:
    problem = ValueError("bad")

    def work() -> None:
        raise problem

    with pytest.raises(ValueError) as error:
        await run_in_daemon_thread(work)
    assert error.value is problem


@pytest.mark.parametrize("outcome", ["value", "exception"])
def test_an_abandoned_thread_may_finish_after_its_loop_closed(
    outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unhandled: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", unhandled.append)
    release = threading.Event()
    threads: list[threading.Thread] = []

    def work() -> str:
        threads.append(threading.current_thread())
        release.wait(timeout=30)
        if outcome == "exception":
            raise LookupError("late")
        return "late"

    async def abandon() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run_in_daemon_thread(work), timeout=0.01)

    asyncio.run(abandon())  # the loop is closed when this returns
    release.set()
    threads[0].join(timeout=30)
    assert not threads[0].is_alive()
    assert unhandled == []


# -- what the model reads, on the wire ----------------------------------------------------------


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(PROJECT, environ=environ) as rt:
        yield rt


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            call("add", '{"a": 1, "b": '),
            "Error: the arguments for `add` are not valid JSON (Expecting value at line 1 "
            'column 15): \'{"a": 1, "b": \'. Call `add` again with a JSON object of its '
            "parameters.",
            id="invalid-json",
        ),
        pytest.param(
            call("add", a="two", b=3),
            "Error: invalid arguments for `add`: a: Input should be a valid integer, unable "
            "to parse string as an integer (got 'two'). Call `add` again with corrected "
            "arguments.",
            id="invalid-arguments",
        ),
        pytest.param(
            call("add", a=1),
            "Error: invalid arguments for `add`: b: Field required. Call `add` again with "
            "corrected arguments.",
            id="missing-argument",
        ),
        pytest.param(
            call("add", "[1, 2]"),
            "Error: the arguments for `add` must be a JSON object, not list: '[1, 2]'.",
            id="not-an-object",
        ),
        pytest.param(
            call("fail", reason="gone"),
            "Error: `fail` raised LookupError: no such thing: gone",
            id="exception",
        ),
        pytest.param(
            call("slow_sync", seconds=2),
            "Error: `slow_sync` did not finish within 0.2 s and was abandoned (it keeps "
            "running in its thread). Try again later or with simpler arguments, or answer "
            "without it.",
            id="sync-timeout",
        ),
        pytest.param(
            call("slow_async", seconds=2),
            "Error: `slow_async` did not finish within 0.2 s and was stopped. Try again later "
            "or with simpler arguments, or answer without it.",
            id="async-timeout",
        ),
        pytest.param(
            call("big_output", size=1000),
            "x" * 50 + "\n[output truncated: 1,000 characters, showing the first 50]",
            id="output-cap",
        ),
        pytest.param(
            call("get_wether", city="Tokyo"),
            "Error: there is no tool named `get_wether`. Available tools: `get_weather`, "
            "`add`, `fail`, `slow_sync`, `slow_async`, `big_output`, `meet`, `whoami`.",
            id="unknown-tool",
        ),
        pytest.param(
            call("whoami"),
            "context: ToolContext",
            id="run-context",
        ),
    ],
)
async def test_tool_failures_go_back_to_the_model(
    mock: MockVLLM, runtime: Runtime, reply: Any, expected: str
) -> None:
    mock.add(Reply(reasoning="Try it.", calls=[reply]), Reply(final="recovered"))
    result = await runtime.run("toolbox", "go")
    assert result.final_output == "recovered"
    assert helpers.outputs_sent(mock, 1) == [expected]
