"""Turns cut at the output token limit, and tool_choice, end to end: agents.yaml → the runtime →
the mock imitating vLLM 0.33 (a cut turn ends as `response.incomplete` / `finish_reason:
"length"`) over real HTTP, on both APIs, streamed or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent_runtime import RunError, RunLimitError
from agent_runtime.cli import cli
from agent_runtime.results import RunFinished
from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call

CONFIG = """\
version: 1
defaults:
  backend: responses
backends:
  responses:
    base_url: ${MOCK_URL}
    model: openai/gpt-oss-20b
    max_retries: 2
  chat:
    api: chat_completions
    base_url: ${MOCK_URL}
    model: openai/gpt-oss-20b
    max_retries: 2
tools:
  get_weather: {function: "cut_tools:get_weather"}
agents:
  poet:
    instructions: Answer in one line.
    model_settings: {max_tokens: 40}
    tools: [get_weather]
  chat-poet:
    instructions: Answer in one line.
    backend: chat
    model_settings: {max_tokens: 40}
    tools: [get_weather]
  caller:
    instructions: Always look the weather up.
    model_settings: {tool_choice: required}
    tools: [get_weather]
  chat-caller:
    instructions: Always look the weather up.
    backend: chat
    model_settings: {tool_choice: get_weather}
    tools: [get_weather]
"""
ANSWER = "Sunny in Tokyo."
THOUGHT = "The user asks about the weather, so I should think about it at length first."
FIX = (
    "raise `model_settings.max_tokens` of the agent (or `defaults.model_settings`) in "
    "agents.yaml, or lower its `reasoning_effort`."
)
AGENTS = [
    pytest.param("poet", False, id="responses"),
    pytest.param("poet", True, id="responses-stream"),
    pytest.param("chat-poet", False, id="chat"),
    pytest.param("chat-poet", True, id="chat-stream"),
]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One folder for the module: a tool module is imported once per process.
    tmp_path = tmp_path_factory.mktemp("cut")
    (tmp_path / "cut_tools.py").write_text(
        "def get_weather(city: str) -> str:\n    return f'sunny in {city}'\n"
    )
    path = tmp_path / "agents.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(config: Path, mock: MockVLLM) -> AsyncIterator[Runtime]:
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}, trace_path=False) as rt:
        yield rt


async def run(runtime: Runtime, agent: str, stream: bool) -> Any:
    if not stream:
        return await runtime.run(agent, "Weather?")
    events = [event async for event in runtime.stream(agent, "Weather?")]
    assert isinstance(events[-1], RunFinished)
    return events[-1].result


def cut_status(mock: MockVLLM, index: int) -> Any:
    """How the mock ended model request `index`: the Responses status or Chat finish_reason."""
    record = mock.model_requests[index]
    if record.api == "responses":
        return record.response["status"] if record.response else None
    last = record.response if record.response else record.events[-2]
    return last["choices"][0]["finish_reason"]


@pytest.mark.parametrize(("agent", "stream"), AGENTS)
async def test_a_turn_cut_while_reasoning_is_asked_again(
    mock: MockVLLM, runtime: Runtime, agent: str, stream: bool
) -> None:
    mock.add(Reply(reasoning=THOUGHT, final=ANSWER, cut_at=6), Reply(final=ANSWER))
    result = await run(runtime, agent, stream)
    assert result.final_output == ANSWER
    assert len(mock.model_requests) == 2
    assert cut_status(mock, 0) in ("incomplete", "length")
    if mock.model_requests[0].api == "responses" and stream:
        assert mock.model_requests[0].events[-1]["type"] == "response.incomplete"


@pytest.mark.parametrize(("agent", "stream"), AGENTS)
@pytest.mark.parametrize(
    ("reply", "what"),
    [
        pytest.param(
            Reply(reasoning="Easy.", final=ANSWER, incomplete=True), "its answer", id="text"
        ),
        pytest.param(
            Reply(
                reasoning="Look it up.", calls=[call("get_weather", city="Tokyo")], incomplete=True
            ),
            "a tool call",
            id="call",
        ),
    ],
)
async def test_a_turn_cut_part_way_fails_the_run_naming_the_limit(
    mock: MockVLLM, runtime: Runtime, agent: str, stream: bool, reply: Reply, what: str
) -> None:
    mock.add(reply)
    with pytest.raises(RunLimitError) as caught:
        await run(runtime, agent, stream)
    assert isinstance(caught.value, RunError)
    assert str(caught.value) == (
        "the model's answer was cut at the output token limit (max_output_tokens=40) in the "
        f"middle of {what}: {FIX}"
    )
    assert len(mock.model_requests) == 1  # not asked again: it would be cut again
    mock.assert_script_consumed()


async def test_turns_cut_while_reasoning_every_time_name_the_limit(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(*[Reply(reasoning=THOUGHT, final=ANSWER, cut_at=6)] * 3)
    with pytest.raises(RunLimitError) as caught:
        await runtime.run("poet", "Weather?")
    assert str(caught.value) == (
        "the model used all of its output tokens (max_output_tokens=40) without answering, "
        f"3 times: {FIX}"
    )


def test_the_cli_reports_a_cut_turn_without_a_traceback(config: Path) -> None:
    with MockVLLM([Reply(reasoning="Easy.", final=ANSWER, incomplete=True)]) as mock:
        result = CliRunner().invoke(
            cli, ["run", "-c", str(config), "poet", "Weather?"], env={"MOCK_URL": mock.url}
        )
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "max_output_tokens=40" in result.output
    assert "raise `model_settings.max_tokens`" in result.output


@pytest.mark.parametrize(
    ("agent", "wire"),
    [
        pytest.param("caller", "required", id="responses-required"),
        pytest.param(
            "chat-caller",
            {"type": "function", "function": {"name": "get_weather"}},
            id="chat-named",
        ),
    ],
)
async def test_tool_choice_reaches_the_wire(
    mock: MockVLLM, runtime: Runtime, agent: str, wire: Any
) -> None:
    mock.add(
        Reply(reasoning="Look it up.", calls=[call("get_weather", city="Tokyo")]),
        Reply(final=ANSWER),
    )
    result = await runtime.run(agent, "Weather?")
    assert result.final_output == ANSWER
    assert mock.model_requests[0].json["tool_choice"] == wire
