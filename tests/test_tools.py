"""Tools: typed Python functions as SDK function tools whose failures are text for the model."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime
import decimal
import enum
import importlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pydantic
import pytest
from agents import FunctionTool, RunContextWrapper
from agents.tool_context import ToolContext

from agent_runtime import ToolRetry
from agent_runtime.config import DefaultsSpec, parse_config
from agent_runtime.errors import RunLimitError
from agent_runtime.guards import CallGuard
from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from agent_runtime.tools import (
    DEFAULT_TOOL_THREADS,
    ToolThreads,
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
            f"251): '{'[' * 200}'… [50 more characters]. Call `add` again with a JSON object of "
            "its parameters.",
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


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: Colour


class Line(pydantic.BaseModel):
    start: Point
    end: Point
    when: datetime.datetime


class Anything(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    value: Any
    raw: bytes = b""


POINT = Point(1, 2.5, Colour.RED)
LINE = Line(
    start=POINT,
    end=Point(3, 4.0, Colour.BLUE),
    when=datetime.datetime(2026, 12, 2, 9, 30, tzinfo=datetime.UTC),
)


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
        pytest.param(POINT, '{"x": 1, "y": 2.5, "label": "red"}', id="dataclass-with-an-enum"),
        pytest.param(
            LINE,
            '{"start": {"x": 1, "y": 2.5, "label": "red"}, "end": {"x": 3, "y": 4.0, "label": 2}, '
            '"when": "2026-12-02T09:30:00Z"}',
            id="pydantic-model-with-dataclasses",
        ),
        pytest.param(
            {"lines": [LINE.start, (POINT,)], "n": 1},
            '{"lines": [{"x": 1, "y": 2.5, "label": "red"}, [{"x": 1, "y": 2.5, "label": "red"}]], '
            '"n": 1}',
            id="dataclasses-nested-in-dict-list-tuple",
        ),
        pytest.param(
            {
                "colour": Colour.BLUE,
                "day": datetime.date(2026, 12, 2),
                "time": datetime.time(9, 30),
                "id": uuid.UUID(int=1),
                "price": decimal.Decimal("3.50"),
                "path": PurePosixPath("/srv/data"),
                "span": datetime.timedelta(minutes=90),
                "tags": frozenset({"a"}),
                "raw": b"caf\xc3\xa9",
            },
            '{"colour": 2, "day": "2026-12-02", "time": "09:30:00", '
            '"id": "00000000-0000-0000-0000-000000000001", "price": "3.50", '
            '"path": "/srv/data", "span": "1:30:00", "tags": ["a"], "raw": "café"}',
            id="enums-dates-uuids-decimals-paths-sets-bytes",
        ),
        pytest.param(
            Anything(value=Shown()),
            '{"value": "shown", "raw": ""}',
            id="model-with-an-unknown-value",
        ),
        pytest.param(
            Anything(value=[POINT], raw=b"\xff"),
            '{"value": [{"x": 1, "y": 2.5, "label": "red"}], "raw": "\ufffd"}',
            id="model-that-pydantic-cannot-write-as-json",
        ),
    ],
)
def test_format_tool_output(value: Any, expected: str) -> None:
    assert format_tool_output(value, max_chars=200) == expected
    if not isinstance(value, str | bytes) and expected != "[[...]]":
        json.loads(expected)  # what the model reads is JSON


def test_structured_output_is_cut_like_text() -> None:
    assert format_tool_output(LINE, max_chars=20) == (
        '{"start": {"x": 1, "\n[output truncated: 116 characters, showing the first 20]'
    )


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


ORDERS = """
version: 1
defaults: {backend: mock}
backends:
  mock: {base_url: "${MOCK_URL}", model: openai/gpt-oss-20b, max_retries: 0}
tools:
  lookup_order: {function: "fixture_tools.orders:lookup_order"}
agents:
  shop:
    instructions: Look orders up.
    tools: [lookup_order]
sessions: {path: "${STATE_DIR}/sessions.sqlite3"}
tracing: {enabled: false}
"""

ORDER_JSON = (
    '{"order": {"id": "00000000-0000-0000-0000-00000000002a", "customer": "Ann", '
    '"status": "open", "placed": "2026-12-02", "lines": [{"sku": "tea", "quantity": 2, '
    '"price": "3.50"}]}, "looked_up": "2026-12-02T09:30:00+00:00"}'
)


@pytest.fixture
async def shop(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    config = parse_config(ORDERS, base_dir=helpers.PROJECT, environ=environ)
    async with Runtime(config) as rt:
        yield rt


async def test_a_structured_result_reaches_the_model_as_json(mock: MockVLLM, shop: Runtime) -> None:
    mock.add(Reply(calls=[call("lookup_order", order_id="A-42")]), Reply(final="Ann's tea."))
    result = await shop.run("shop", "Where is my order A-42?")
    assert result.final_output == "Ann's tea."
    assert helpers.outputs_sent(mock, 1) == [ORDER_JSON]


async def test_a_tool_asks_for_a_corrected_call_and_the_run_goes_on(
    mock: MockVLLM, shop: Runtime
) -> None:
    mock.add(
        Reply(reasoning="Look it up.", calls=[call("lookup_order", order_id="42")]),
        Reply(reasoning="Use the A- form.", calls=[call("lookup_order", order_id="A-42")]),
        Reply(final="Ann's tea."),
    )
    result = await shop.run("shop", "Where is my order 42?")
    assert result.final_output == "Ann's tea."
    assert helpers.outputs_sent(mock, 1) == [
        "Error: `lookup_order` asks for a corrected call: order ids start with 'A-', e.g. "
        "'A-42'; '42' does not. Call `lookup_order` again with corrected arguments."
    ]
    assert helpers.outputs_sent(mock, 2) == [ORDER_JSON]


async def test_corrected_calls_asked_for_too_often_end_the_run(
    mock: MockVLLM, shop: Runtime
) -> None:
    mock.add(*(Reply(calls=[call("lookup_order", order_id=str(n))]) for n in range(5)))
    with pytest.raises(RunLimitError) as error:
        await shop.run("shop", "Where is my order?")
    assert str(error.value) == (
        "the model made 5 invalid tool calls in a row; the last one, to `lookup_order`: "
        "`lookup_order` asks for a corrected call: order ids start with 'A-', e.g. 'A-42'; '4' "
        "does not. Call `lookup_order` again with corrected arguments. Raise `max_invalid_calls` "
        "in agents.yaml, or check that the tools' names and schemas are clear."
    )


# -- ToolRetry: the tool asks the model for a corrected call -----------------------------------


def pick(colour: str) -> str:
    """Picks a colour.

    Args:
        colour: red or blue.
    """
    if colour not in {"red", "blue"}:
        raise ToolRetry(f"{colour!r} is not a colour I have; choose red or blue")
    return colour


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_tool_retry_is_an_error_to_fix(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent_runtime.tools")

    async def pick_async(colour: str) -> str:
        """Picks a colour."""
        return pick(colour)

    function = pick_async if is_async else pick
    tool = build_function_tool(function, name="pick")
    assert await tool.on_invoke_tool(context(), '{"colour": "green"}') == (
        "Error: `pick` asks for a corrected call: 'green' is not a colour I have; choose red or "
        "blue. Call `pick` again with corrected arguments."
    )
    assert await tool.on_invoke_tool(context(), '{"colour": "red"}') == "red"
    assert caplog.record_tuples == [
        ("agent_runtime.tools", logging.INFO, "tool pick asked for a corrected call")
    ]


async def test_tool_retry_without_a_message() -> None:
    def refuse() -> str:
        """Always refuses."""
        raise ToolRetry

    assert await invoke(refuse, "{}") == (
        "Error: `refuse` asks for a corrected call. Call `refuse` again with corrected arguments."
    )


async def test_tool_retries_count_as_invalid_calls(guard: CallGuard) -> None:
    tool = build_function_tool(pick)
    assert (await tool.on_invoke_tool(context(), '{"colour": "green"}')).startswith("Error: ")
    assert await tool.on_invoke_tool(context(), '{"colour": "blue"}') == "blue"
    assert (await tool.on_invoke_tool(context(), '{"colour": "green"}')).startswith("Error: ")
    with pytest.raises(RunLimitError) as error:
        await tool.on_invoke_tool(context(), '{"colour": "pink"}')
    assert str(error.value) == (
        "the model made 2 invalid tool calls in a row; the last one, to `pick`: `pick` asks for "
        "a corrected call: 'pink' is not a colour I have; choose red or blue. Call `pick` again "
        "with corrected arguments. Raise `max_invalid_calls` in agents.yaml, or check that the "
        "tools' names and schemas are clear."
    )


async def test_a_tools_own_timeout_error_is_not_its_time_limit() -> None:
    def connect(host: str) -> str:
        """Connects."""
        raise TimeoutError(f"{host} did not answer")

    assert await invoke(connect, '{"host": "db"}', timeout_s=30) == (
        "Error: `connect` raised TimeoutError: db did not answer"
    )


# -- the thread limit of sync tools -----------------------------------------------------------


class Gate:
    """A sync tool's body that counts who is inside and blocks until opened."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.entered = 0
        self.opened = threading.Event()
        self.threads: list[threading.Thread] = []
        self._changed = threading.Condition()

    def enter(self, label: str) -> str:
        """Waits at the gate.

        Args:
            label: Who waits.
        """
        with self._changed:
            self.inside += 1
            self.entered += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.threads.append(threading.current_thread())
            self._changed.notify_all()
        self.opened.wait(timeout=30)
        with self._changed:
            self.inside -= 1
        return label

    async def until_entered(self, count: int) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: self.entered >= count, timeout=30)

        assert await asyncio.to_thread(wait)


async def test_sync_calls_beyond_the_thread_limit_wait_for_a_thread() -> None:
    gate, threads = Gate(), ToolThreads(2)
    tool = build_function_tool(gate.enter, name="gate", threads=threads)
    calls = [
        asyncio.create_task(tool.on_invoke_tool(context(), json.dumps({"label": str(n)})))
        for n in range(5)
    ]
    await gate.until_entered(2)
    await asyncio.sleep(0)  # the other calls reach the limit
    assert (gate.inside, threads.running, threads.waiting) == (2, 2, 3)
    gate.opened.set()
    assert await asyncio.gather(*calls) == ["0", "1", "2", "3", "4"]
    assert (gate.entered, gate.most_inside) == (5, 2)
    for thread in gate.threads:
        await asyncio.to_thread(thread.join, 30)
    assert (threads.running, threads.waiting) == (0, 0)


async def test_an_abandoned_call_keeps_its_thread_until_its_function_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate, threads = Gate(), ToolThreads(1)
    slow = build_function_tool(gate.enter, name="slow", timeout_s=0.05, threads=threads)
    quick = build_function_tool(pick, timeout_s=0.05, threads=threads)
    assert await slow.on_invoke_tool(context(), '{"label": "a"}') == (
        "Error: `slow` did not finish within 0.05 s and was abandoned (it keeps running in its "
        "thread). Try again later or with simpler arguments, or answer without it."
    )
    assert threads.running == 1
    assert await quick.on_invoke_tool(context(), '{"colour": "red"}') == (
        "Error: `pick` could not start within 0.05 s: too many tool calls are running. Try "
        "again later, or answer without it."
    )
    assert (threads.running, threads.waiting) == (1, 0)
    gate.opened.set()
    await asyncio.to_thread(gate.threads[0].join, 30)
    assert threads.running == 0
    assert await quick.on_invoke_tool(context(), '{"colour": "red"}') == "red"
    assert caplog.record_tuples == [
        ("agent_runtime.tools", logging.WARNING, "tool slow timed out after 0.05 s"),
        (
            "agent_runtime.tools",
            logging.WARNING,
            "tool pick found no free thread within 0.05 s (all 1 in use)",
        ),
    ]


async def test_a_call_cancelled_while_waiting_for_a_thread_starts_nothing() -> None:
    gate, threads = Gate(), ToolThreads(1)
    tool = build_function_tool(gate.enter, name="gate", threads=threads)
    first = asyncio.create_task(tool.on_invoke_tool(context(), '{"label": "first"}'))
    await gate.until_entered(1)
    second = asyncio.create_task(tool.on_invoke_tool(context(), '{"label": "second"}'))
    await asyncio.sleep(0)  # it reaches the limit
    assert threads.waiting == 1
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert threads.waiting == 0
    gate.opened.set()
    assert await first == "first"
    assert await tool.on_invoke_tool(context(), '{"label": "third"}') == "third"
    assert gate.entered == 2  # first and third; second never ran
    for thread in gate.threads:
        await asyncio.to_thread(thread.join, 30)
    assert threads.running == 0


@pytest.mark.parametrize("when", ["before-it-resumes", "before-it-is-told"])
async def test_a_thread_handed_to_a_call_cancelled_meanwhile_goes_to_the_next(when: str) -> None:
    threads = ToolThreads(1)
    release = threading.Event()
    holders: list[threading.Thread] = []

    def hold() -> str:
        holders.append(threading.current_thread())
        release.wait(timeout=30)
        return "held"

    holder = await threads.start(hold)
    waiters = [asyncio.create_task(threads.start(lambda: "ran")) for _ in range(2)]
    await asyncio.sleep(0)  # both reach the limit
    assert threads.waiting == 2
    release.set()
    # Blocking the loop on purpose: the thread has ended and chosen the first waiter, and the
    # loop has not yet run what it scheduled.
    holders[0].join(timeout=30)
    if when == "before-it-is-told":
        waiters[0].cancel()
    else:  # told, but cancelled before its task resumes
        asyncio.get_running_loop().call_soon(waiters[0].cancel)
    assert await holder == "held"
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]
    assert await (await waiters[1]) == "ran"
    assert threads.waiting == 0


def test_the_thread_limit_is_a_positive_number() -> None:
    with pytest.raises(ValueError) as error:
        ToolThreads(0)
    assert str(error.value) == "ToolThreads needs a limit of at least 1, not 0"
    assert DefaultsSpec().tool_threads == DEFAULT_TOOL_THREADS == 32


THREADS = """
version: 1
defaults: {backend: mock, tool_threads: 1}
backends:
  mock: {base_url: "http://127.0.0.1:9/v1", model: openai/gpt-oss-20b}
tools:
  hold: {function: "fixture_tools.gates:wait_at_gate"}
  quick: {function: "fixture_tools.basic:get_weather", timeout_s: 0.05}
agents:
  one: {instructions: Hold., tools: [hold]}
  two: {instructions: Be quick., tools: [quick]}
sessions: {path: "${STATE_DIR}/sessions.sqlite3"}
tracing: {enabled: false}
"""


async def test_the_sync_tools_of_a_runtime_share_its_thread_limit(tmp_path: Path) -> None:
    config = parse_config(THREADS, base_dir=helpers.PROJECT, environ={"STATE_DIR": str(tmp_path)})
    gates = importlib.import_module("fixture_tools.gates")  # imported by the config, from there
    gates.reset()
    async with Runtime(config) as runtime:
        hold, quick = (runtime.agent(name).tools[0] for name in ("one", "two"))
        assert isinstance(hold, FunctionTool)
        assert isinstance(quick, FunctionTool)
        holding = asyncio.create_task(hold.on_invoke_tool(context(), '{"label": "a"}'))
        try:
            assert await asyncio.to_thread(gates.entered.wait, 30)
            assert await quick.on_invoke_tool(context(), '{"city": "Oslo"}') == (
                "Error: `get_weather` could not start within 0.05 s: too many tool calls are "
                "running. Try again later, or answer without it."
            )
        finally:
            gates.opened.set()
        assert await holding == "a"
