"""The loop guard and the invalid-call limit: `CallGuard` alone, and as a run meets it."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime import RunLimitError, Runtime
from agent_runtime.guards import CallGuard
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers

FAULTS = helpers.PROJECT / "faults.yaml"
OSLO = '{"city": "Oslo"}'


def refusal(times: int) -> str:
    return (
        f"Error: you called `get_weather` with these same arguments {times} times in a row; it "
        "was not run again, the result would not change. Use the results you already have, call "
        "something else, or answer."
    )


def too_many(times: int, problem: str = "wrong.") -> str:
    return (
        f"the model made {times} invalid tool calls in a row; the last one, to `add`: {problem} "
        "Raise `max_invalid_calls` in agents.yaml, or check that the tools' names and schemas are "
        "clear."
    )


def echo(text: str) -> str:
    """Says the text back.

    Args:
        text: What to say.
    """
    return text


# -- repeated calls ---------------------------------------------------------------------------


def test_the_same_call_is_refused_then_ends_the_run_at_twice_the_limit() -> None:
    guard = CallGuard(max_repeated_calls=3)
    answers = [guard.before_call("get_weather", OSLO) for _ in range(5)]
    assert answers == [None, None, refusal(3), refusal(4), refusal(5)]
    with pytest.raises(RunLimitError) as error:
        guard.before_call("get_weather", OSLO)
    assert str(error.value) == (
        "loop guard: the model called `get_weather` with the same arguments 6 times in a row "
        '({"city": "Oslo"}); it was told to stop after 3. Raise `max_repeated_calls` in '
        "agents.yaml if the repetition is intended."
    )


def test_the_same_arguments_written_differently_are_the_same_call() -> None:
    guard = CallGuard(max_repeated_calls=3)
    assert guard.before_call("f", '{"a": 1, "b": [1, 2]}') is None
    assert guard.before_call("f", '{"b":[1,2],"a":1}') is None
    assert guard.before_call("f", ' { "a" : 1 , "b" : [ 1, 2 ] } ') == (
        refusal(3).replace("get_weather", "f")
    )


def test_unparsable_arguments_are_compared_as_text() -> None:
    guard = CallGuard(max_repeated_calls=2)
    assert guard.before_call("f", '{"a": ') is None
    assert guard.before_call("f", ' {"a": \n') == refusal(2).replace("get_weather", "f")
    assert guard.before_call("f", '{"b": ') is None  # other text: another call


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        pytest.param("get_weather", '{"city": "Bergen"}', id="other-arguments"),
        pytest.param("get_forecast", OSLO, id="other-tool"),
    ],
)
def test_another_call_in_between_starts_the_count_over(tool: str, arguments: str) -> None:
    guard = CallGuard(max_repeated_calls=2)
    assert guard.before_call("get_weather", OSLO) is None
    assert guard.before_call(tool, arguments) is None
    assert guard.before_call("get_weather", OSLO) is None
    assert guard.before_call("get_weather", OSLO) == refusal(2)


def test_max_repeated_calls_zero_turns_the_loop_guard_off() -> None:
    guard = CallGuard(max_repeated_calls=0)
    assert [guard.before_call("get_weather", OSLO) for _ in range(50)] == [None] * 50


# -- invalid calls ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "problem",
    [
        pytest.param("invalid arguments for `add`: b: Field required.", id="sentence"),
        pytest.param("invalid arguments for `add`: b: Field required", id="no-full-stop"),
    ],
)
def test_invalid_calls_in_a_row_end_the_run(problem: str) -> None:
    guard = CallGuard(max_invalid_calls=3)
    guard.invalid_call("add", "first")
    guard.invalid_call("add", "second")
    with pytest.raises(RunLimitError) as error:
        guard.invalid_call("add", problem)
    assert str(error.value) == (
        "the model made 3 invalid tool calls in a row; the last one, to `add`: invalid arguments "
        "for `add`: b: Field required. Raise `max_invalid_calls` in agents.yaml, or check that "
        "the tools' names and schemas are clear."
    )
    assert guard.tripped is None


def test_a_valid_call_starts_the_invalid_count_over() -> None:
    guard = CallGuard(max_invalid_calls=2)
    for _ in range(3):
        guard.invalid_call("add", "wrong")
        guard.valid_call()
    guard.invalid_call("add", "wrong")
    with pytest.raises(RunLimitError) as error:
        guard.invalid_call("add", "wrong")
    assert str(error.value) == too_many(2)


def test_max_invalid_calls_zero_is_no_limit() -> None:
    guard = CallGuard(max_invalid_calls=0)
    for _ in range(50):
        guard.invalid_call("add", "wrong")
    guard.raise_if_tripped()
    assert guard.tripped is None


def test_a_deferred_limit_is_kept_and_raised_later() -> None:
    guard = CallGuard(max_invalid_calls=2)
    guard.invalid_call("nope", "there is no tool named `nope`.", defer=True)
    assert guard.tripped is None
    guard.raise_if_tripped()  # nothing to raise yet
    guard.invalid_call("nope", "there is no tool named `nope`.", defer=True)
    tripped = guard.tripped
    assert isinstance(tripped, RunLimitError)
    assert str(tripped) == (
        "the model made 2 invalid tool calls in a row; the last one, to `nope`: there is no tool "
        "named `nope`. Raise `max_invalid_calls` in agents.yaml, or check that the tools' names "
        "and schemas are clear."
    )
    with pytest.raises(RunLimitError) as error:
        guard.raise_if_tripped()
    assert error.value is tripped


def test_calls_from_several_threads_are_all_counted() -> None:
    guard = CallGuard(max_invalid_calls=401)
    start = threading.Barrier(4)

    def invalid_calls() -> None:
        start.wait(timeout=30)
        for _ in range(100):
            guard.invalid_call("add", "wrong")

    threads = [threading.Thread(target=invalid_calls) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with pytest.raises(RunLimitError) as error:
        guard.invalid_call("add", "wrong")
    assert str(error.value) == too_many(401)


# -- in a run ---------------------------------------------------------------------------------


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


async def run(mock: MockVLLM, tmp_path: Path, config: Path = FAULTS, agent: str = "worker") -> str:
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(config, environ=environ) as runtime:
        result = await runtime.run(agent, "go")
    assert isinstance(result.final_output, str)
    return result.final_output


async def test_calls_of_unknown_tools_count_as_invalid_calls(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(*[Reply(calls=[call("get_wether", city="Oslo")])] * 6, Reply(final="never"))
    with pytest.raises(RunLimitError) as error:
        await run(mock, tmp_path)
    assert str(error.value) == (
        "the model made 5 invalid tool calls in a row; the last one, to `get_wether`: there is no "
        "tool named `get_wether`. Available tools: `get_weather`, `count`, `add`, `slow_sync`, "
        "`slow_async`, `hang`. Raise `max_invalid_calls` in agents.yaml, or check that the "
        "tools' names and schemas are clear."
    )
    assert len(mock.model_requests) == 5  # the limit ended the run before the next model call


async def test_a_valid_call_between_unknown_ones_starts_over(
    mock: MockVLLM, tmp_path: Path
) -> None:
    unknown = Reply(calls=[call("get_wether", city="Oslo")])
    mock.add(
        *[unknown] * 4,
        Reply(calls=[call("add", a=1, b=2)]),
        *[unknown] * 4,
        Reply(final="done"),
    )
    assert await run(mock, tmp_path) == "done"
    assert helpers.outputs_sent(mock, 5) == ["3"]


async def test_an_agents_own_limits_come_from_agents_yaml(mock: MockVLLM, tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends: {b: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 0}}\n"
        "tools: {echo: {function: 'tests.test_guards:echo'}}\n"
        "defaults: {max_invalid_calls: 1}\n"
        "agents:\n"
        "  strict: {tools: [echo]}\n"
        "  lenient: {tools: [echo], max_repeated_calls: 0, max_invalid_calls: 0}\n"
    )
    again = Reply(calls=[call("echo", text="hi")])
    mock.add(*[again] * 7, Reply(final="done"))
    assert await run(mock, tmp_path, config, agent="lenient") == "done"
    assert helpers.outputs_sent(mock, 7) == ["hi"]  # the seventh repetition still ran

    mock.add(Reply(calls=[call("echo", "{")]))
    with pytest.raises(RunLimitError) as error:
        await run(mock, tmp_path, config, agent="strict")
    assert str(error.value) == (
        "the model made 1 invalid tool call in a row; the last one, to `echo`: the arguments for "
        "`echo` are not valid JSON (Expecting property name enclosed in double quotes at line 1 "
        "column 2): '{'. Call `echo` again with a JSON object of its parameters. Raise "
        "`max_invalid_calls` in agents.yaml, or check that the tools' names and schemas are "
        "clear."
    )


AGENT_TOOLS = (
    "version: 1\n"
    "backends: {b: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 0}}\n"
    "tools: {echo: {function: 'tests.test_guards:echo'}}\n"
    "agents:\n"
    "  top: {tools: [echo], agent_tools: [helper]}\n"
    "  helper: {instructions: Help.}\n"
)


async def test_a_call_of_an_agent_tool_ends_a_run_of_repeated_calls(
    mock: MockVLLM, tmp_path: Path
) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(AGENT_TOOLS)
    echo_hi = Reply(calls=[call("echo", text="hi")])
    mock.add(
        echo_hi,
        echo_hi,
        Reply(calls=[call("helper", input="q")]),
        Reply(final="h"),  # the helper's nested run
        echo_hi,  # not three in a row: the helper was asked in between
        Reply(final="done"),
    )
    assert await run(mock, tmp_path, config, agent="top") == "done"
    assert [mock.model_requests[n].function_outputs[-1].output for n in (4, 5)] == ["h", "hi"]


async def test_asking_an_agent_the_same_again_and_again_is_refused(
    mock: MockVLLM, tmp_path: Path
) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(AGENT_TOOLS)
    ask = Reply(calls=[call("helper", input="q")])
    mock.add(ask, Reply(final="h"), ask, Reply(final="h"), ask, Reply(final="done"))
    assert await run(mock, tmp_path, config, agent="top") == "done"
    assert len(mock.model_requests) == 6  # the third question did not reach the helper
    assert mock.model_requests[5].function_outputs[-1].output == (
        refusal(3).replace("get_weather", "helper")
    )
