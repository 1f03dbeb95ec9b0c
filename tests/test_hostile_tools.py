"""Tools that misbehave cannot end the run or the program: what tries to exit, results without a
text, arguments nested too deeply, unknown tools called over and over, and tools that do not
stop at the run's deadline (tests/project/hostile_tools.yaml)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import RunFinished, RunLimitError, Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from agent_runtime.tools import build_function_tool
from tests import helpers

CONFIG = helpers.PROJECT / "hostile_tools.yaml"


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(CONFIG, environ=environ) as rt:
        yield rt


@pytest.fixture
def released() -> Iterator[Any]:
    """Lets the stuck test tools end when the test is over (they are abandoned by then)."""
    import fixture_tools.hostile_tools as tools

    tools.released.clear()
    try:
        yield tools.released
    finally:
        tools.released.set()


def trace_records(tmp_path: Path, kind: str) -> list[dict[str, Any]]:
    lines = (tmp_path / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for line in lines if (record := json.loads(line))["type"] == kind]


def exit_message(tool: str, what: str, error: str) -> str:
    return (
        f"Error: `{tool}` tried to {what} the program ({error}); it was stopped, and the run "
        f"goes on. Call `{tool}` with other arguments, or answer without it."
    )


def unsendable_message(error: str) -> str:
    return (
        "Error: the result of `unsendable` cannot be sent: it cannot be written as JSON or text "
        f"({error}). Call `unsendable` with other arguments, or answer without it."
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            call("exits", code=2), exit_message("exits", "exit", "SystemExit: 2"), id="sys-exit"
        ),
        pytest.param(
            call("exits_async", code=3),
            exit_message("exits_async", "exit", "SystemExit: 3"),
            id="async-system-exit",
        ),
        pytest.param(
            call("interrupts"),
            exit_message("interrupts", "interrupt", "KeyboardInterrupt"),
            id="keyboard-interrupt-in-thread",
        ),
        pytest.param(
            call("interrupts_async"),
            exit_message("interrupts_async", "interrupt", "KeyboardInterrupt"),
            id="async-keyboard-interrupt",
        ),
        pytest.param(
            call("unsendable", kind="huge"),
            unsendable_message(
                "ValueError: Exceeds the limit (4300 digits) for integer string conversion; "
                "use sys.set_int_max_str_digits() to increase the limit"
            ),
            id="int-past-the-digit-limit",
        ),
        pytest.param(
            call("unsendable", kind="unprintable"),
            unsendable_message("RuntimeError: no text for this object"),
            id="str-raises",
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_a_misbehaving_tool_is_an_error_for_the_model(
    mock: MockVLLM, runtime: Runtime, tmp_path: Path, reply: Any, expected: str, stream: bool
) -> None:
    mock.add(Reply(reasoning="Try it.", calls=[reply]), Reply(final="recovered"))
    if stream:
        events = [event async for event in runtime.stream("hostile", "go", session="s")]
        assert isinstance(events[-1], RunFinished)
        result = events[-1].result
    else:
        result = await runtime.run("hostile", "go", session="s")
    assert result.final_output == "recovered"
    assert helpers.outputs_sent(mock, 1) == [expected]
    assert [r["name"] for r in trace_records(tmp_path, "tool_error")] == [reply.name]
    stored = await runtime.session_items("s")
    assert [i["output"] for i in stored if i.get("type") == "function_call_output"] == [expected]


async def test_a_result_that_contains_itself_is_sent_as_its_text(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(Reply(calls=[call("unsendable", kind="cycle")]), Reply(final="recovered"))
    result = await runtime.run("hostile", "go")
    assert result.final_output == "recovered"
    assert helpers.outputs_sent(mock, 1) == ["Node(name='loop', next=...)"]


@pytest.fixture
def sync_mock() -> Iterator[MockVLLM]:
    with MockVLLM() as server:
        yield server


def test_a_tool_that_exits_leaves_the_cli_run_alone(sync_mock: MockVLLM, tmp_path: Path) -> None:
    mock = sync_mock
    mock.add(Reply(reasoning="Parse.", calls=[call("exits", code=2)]), Reply(final="Answered."))
    command = [sys.executable, "-m", "agent_runtime", "run", "-c", str(CONFIG), "hostile", "go"]
    environment = {**os.environ, "MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "Answered.\n", "")
    assert [r["error"] for r in trace_records(tmp_path, "tool_error")] == ["SystemExit"]


@pytest.mark.parametrize("tool", ["ignores_cancel", "stuck_sync"])
def test_the_cli_ends_at_the_deadline_when_a_tool_is_left_behind(
    sync_mock: MockVLLM, tmp_path: Path, tool: str
) -> None:
    # The tool would go on for 600 s; the command ends with the run's time-out (exit 4),
    # without waiting for it as `asyncio.run` would.
    sync_mock.add(Reply(calls=[call(tool, seconds=600)]), Reply(final="too late"))
    command = [sys.executable, "-m", "agent_runtime", "run", "-c", str(CONFIG), "deadline", "go"]
    environment = {**os.environ, "MOCK_URL": sync_mock.url, "STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 4, done.stderr
    assert f"`{tool}` did not" in done.stderr
    assert done.stdout == ""


# -- arguments the model wrote ------------------------------------------------------------------


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


async def invoke(arguments: str) -> Any:
    from agents.tool_context import ToolContext

    tool = build_function_tool(add)
    context = ToolContext(
        context=None, tool_name="add", tool_call_id="call_1", tool_arguments=arguments
    )
    return await tool.on_invoke_tool(context, arguments)


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_a_run_goes_on_when_the_model_nests_arguments_too_deeply(
    mock: MockVLLM, runtime: Runtime, stream: bool
) -> None:
    # Python's JSON reader gives up (RecursionError) where the Agents SDK reads them first.
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + ', "b": 1}'
    mock.add(Reply(calls=[call("add", deep)]), Reply(calls=[call("add", a=1, b=2)]))
    mock.add(Reply(final="3"))
    if stream:
        finished = [e async for e in runtime.stream("picky", "add") if isinstance(e, RunFinished)]
        result = finished[0].result
    else:
        result = await runtime.run("picky", "add")
    assert result.final_output == "3"
    sent = json.dumps(mock.model_requests[1].json)
    assert "the arguments for `add` are not valid JSON" in sent
    assert "nested too deeply to read: 200,015 characters" in sent
    assert "[[[[" not in sent


async def test_arguments_nested_too_deeply_are_an_error_for_the_model() -> None:
    arguments = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert await invoke(arguments) == (
        "Error: the arguments for `add` are nested too deeply to read (200,007 characters). "
        "Call `add` again with a JSON object of its parameters."
    )


async def test_long_arguments_are_quoted_shortened_with_a_note() -> None:
    value = "x" * 10_000
    assert await invoke(json.dumps({"a": value, "b": 1})) == (
        "Error: invalid arguments for `add`: a: Input should be a valid integer, unable to "
        f"parse string as an integer (got '{'x' * 200}'… [9,800 more characters]). Call "
        "`add` again with corrected arguments."
    )
    broken = '{"a": "' + value
    assert await invoke(broken) == (
        "Error: the arguments for `add` are not valid JSON (Unterminated string starting at "
        f"line 1 column 7): '{broken[:200]}'… [9,807 more characters]. Call `add` again with "
        "a JSON object of its parameters."
    )


# -- unknown tools count as invalid calls -------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_calling_an_unknown_tool_every_turn_ends_at_max_invalid_calls(
    mock: MockVLLM, runtime: Runtime, stream: bool
) -> None:
    mock.add(*(Reply(reasoning="Try.", calls=[call("nope", n=n)]) for n in range(20)))
    with pytest.raises(RunLimitError) as error:
        if stream:
            async for _ in runtime.stream("picky", "go"):
                pass
        else:
            await runtime.run("picky", "go")
    assert str(error.value) == (
        "the model made 3 invalid tool calls in a row; the last one, to `nope`: there is no "
        "tool named `nope`. Available tools: `add`. Raise `max_invalid_calls` in agents.yaml, "
        "or check that the tools' names and schemas are clear."
    )
    assert len(mock.model_requests) == 3
    assert error.value.__cause__ is not error.value


# -- run_timeout_s against tools that do not stop ------------------------------------------------


BUDGET = (
    "the run of agent `deadline` took longer than its time budget (run_timeout_s=2 s) and was "
    "stopped. Tools running then: "
)


@pytest.mark.parametrize(
    ("reply", "left_behind"),
    [
        pytest.param(
            call("ignores_cancel", seconds=60),
            "`ignores_cancel` did not stop when cancelled and was abandoned (it keeps running "
            "in the event loop).",
            id="async-ignores-cancellation",
        ),
        pytest.param(
            call("stuck_sync", seconds=60),
            "`stuck_sync` did not return and was abandoned (it keeps running in its thread).",
            id="sync-never-returns",
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_the_run_ends_at_its_deadline_and_names_the_tool_left_behind(
    mock: MockVLLM,
    runtime: Runtime,
    tmp_path: Path,
    released: Any,
    reply: Any,
    left_behind: str,
    stream: bool,
) -> None:
    mock.add(Reply(calls=[reply]), Reply(final="too late"))
    started = time.monotonic()
    with pytest.raises(RunLimitError) as error:
        if stream:
            async for _ in runtime.stream("deadline", "go", session="s"):
                pass
        else:
            await runtime.run("deadline", "go", session="s")
    assert time.monotonic() - started < 30  # the tool alone would take 60 s
    assert str(error.value) == BUDGET + left_behind
    assert [r["detail"] + "." for r in trace_records(tmp_path, "tool_abandoned")] == [left_behind]
    assert (await runtime.session_items("s"))[0] == {"role": "user", "content": "go"}


async def test_an_async_tool_that_blocks_the_loop_ends_the_run_once_it_returns(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(Reply(calls=[call("blocks_loop", seconds=4)]), Reply(final="too late"))
    with pytest.raises(RunLimitError) as error:
        await runtime.run("deadline", "go")
    assert re.fullmatch(
        re.escape(BUDGET)
        + r"`blocks_loop` blocked the event loop until \d+\.\d s past the deadline \(an async "
        r"tool must not make blocking calls: make it a plain `def` function, which runs in a "
        r"thread\)\.",
        str(error.value),
    )
    assert len(mock.model_requests) == 1
