"""`RunResult.tool_calls` and `ToolCall.parsed_arguments`, from a real run against the mock."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime import Runtime
from agent_runtime.results import ToolCall
from agent_runtime.testing import MockVLLM, Reply, call

YAML = """\
version: 1
backends:
  mock: {base_url: "${MOCK_URL}", model: openai/gpt-oss-20b, max_retries: 0}
tools:
  get_weather: {function: "tools.weather:get_weather"}
agents:
  weather:
    instructions: Weather.
    tools: [get_weather]
"""


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        pytest.param('{"city": "Tokyo", "days": [1]}', {"city": "Tokyo", "days": [1]}, id="object"),
        pytest.param("[1, 2]", "[1, 2]", id="array"),
        pytest.param('{"city": ', '{"city": ', id="broken"),
        pytest.param("", "", id="empty"),
    ],
)
def test_parsed_arguments(text: str, parsed: object) -> None:
    item = ToolCall(agent="a", name="f", arguments=text, call_id="c")
    assert item.parsed_arguments == parsed


async def test_tool_calls_of_a_run(tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(YAML)
    script = [
        Reply(reasoning="Look.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(reasoning="Again.", calls=(call("get_weather", city="Paris"),)),
        Reply(reasoning="Done.", final="Sunny twice."),
    ]
    async with (
        MockVLLM(script) as mock,
        Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime,
    ):
        result = await runtime.run("weather", "Tokyo and Paris?")
    assert [(c.name, c.parsed_arguments) for c in result.tool_calls] == [
        ("get_weather", {"city": "Tokyo"}),
        ("get_weather", {"city": "Paris"}),
    ]
    assert all(c in result.items for c in result.tool_calls)
    document = result.to_dict()
    assert "tool_calls" not in document
    assert document["items"][1] == {
        "agent": "weather",
        "name": "get_weather",
        "arguments": '{"city":"Tokyo"}',
        "call_id": result.tool_calls[0].call_id,
        "type": "tool_call",
    }
