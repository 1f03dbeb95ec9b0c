"""Ready-made responders: `ToolLoop` over real HTTP, and the arguments it makes up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from agent_runtime import Runtime, SessionStore
from agent_runtime.results import Handoff, ToolCall
from agent_runtime.testing import MockVLLM, ToolLoop
from agent_runtime.testing.responders import example_arguments
from tests import helpers

MODEL = "openai/gpt-oss-20b"
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TIME_TOOL: Any = {
    "type": "function",
    "name": "get_time",
    "description": "Get the current time.",
    "parameters": {"type": "object", "properties": {}, "required": []},
}


def chat_tool(tool: dict[str, Any]) -> Any:
    return {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}


async def converse_responses(client: AsyncOpenAI, prompts: list[str]) -> list[list[str]]:
    """Each prompt as a new user message of one conversation; per prompt, what the model did:
    its calls (`name({arguments})`) and then its answer."""
    history: list[Any] = []
    turns: list[list[str]] = []
    for prompt in prompts:
        history.append({"role": "user", "content": prompt})
        seen: list[str] = []
        while True:
            response = await client.responses.create(
                model=MODEL, input=history, tools=[WEATHER_TOOL]
            )
            history += [item.model_dump(exclude_none=True) for item in response.output]
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                seen.append(response.output_text)
                break
            for item in calls:
                seen.append(f"{item.name}({json.loads(item.arguments)})")
                output = f"sunny in {json.loads(item.arguments)['city']} ({prompt})"
                history.append(
                    {"type": "function_call_output", "call_id": item.call_id, "output": output}
                )
        turns.append(seen)
    return turns


async def converse_chat(client: AsyncOpenAI, prompts: list[str]) -> list[list[str]]:
    """As `converse_responses`, over Chat Completions."""
    messages: list[Any] = []
    turns: list[list[str]] = []
    for prompt in prompts:
        messages.append({"role": "user", "content": prompt})
        seen: list[str] = []
        while True:
            completion = await client.chat.completions.create(
                model=MODEL, messages=messages, tools=[chat_tool(WEATHER_TOOL)]
            )
            message = completion.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                seen.append(message.content or "")
                break
            for tool_call in message.tool_calls:
                function = tool_call.function  # type: ignore[union-attr]
                seen.append(f"{function.name}({json.loads(function.arguments)})")
                output = f"sunny in {json.loads(function.arguments)['city']} ({prompt})"
                messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": output})
        turns.append(seen)
    return turns


@pytest.mark.parametrize("converse", [converse_responses, converse_chat], ids=["responses", "chat"])
async def test_tool_loop_calls_the_tool_again_after_each_user_message(converse: Any) -> None:
    async with (
        MockVLLM(default=ToolLoop(steps=2)) as mock,
        AsyncOpenAI(base_url=mock.url, api_key="EMPTY") as client,
    ):
        turns = await converse(client, ["first", "second"])
    call = "get_weather({'city': 'Tokyo'})"
    assert turns == [
        [call, call, "Done: sunny in Tokyo (first)"],
        [call, call, "Done: sunny in Tokyo (second)"],
    ]


async def test_tool_loop_serves_every_run_of_a_runtime_session(tmp_path: Path) -> None:
    async with (
        MockVLLM(default=ToolLoop()) as mock,
        Runtime.from_yaml(
            helpers.PROJECT / "agents.yaml",
            environ={"MOCK_URL": mock.url},
            sessions=SessionStore(tmp_path / "sessions.sqlite3"),
            trace_path=tmp_path / "trace.jsonl",
        ) as runtime,
    ):
        first = await runtime.run("weather-haiku", "Tokyo?", session="s")
        second = await runtime.run("weather-haiku", "And now?", session="s")
    weather = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'
    for result in (first, second):
        assert [item.name for item in result.items if isinstance(item, ToolCall)] == ["get_weather"]
        assert result.final_output == f"Done: {weather}"
    assert mock.model_requests[-1].user_texts == ["Tokyo?", "And now?"]


async def test_tool_loop_calls_an_offered_tool_when_its_own_is_not_offered() -> None:
    async with (
        MockVLLM(default=ToolLoop()) as mock,
        AsyncOpenAI(base_url=mock.url, api_key="EMPTY") as client,
    ):
        response = await client.responses.create(
            model=MODEL, input="What time is it?", tools=[TIME_TOOL]
        )
        completion = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What time is it?"}],
            tools=[chat_tool(TIME_TOOL)],
        )
        bare = await client.responses.create(model=MODEL, input="Hi")
    calls = [(i.name, i.arguments) for i in response.output if i.type == "function_call"]
    assert calls == [("get_time", "{}")]
    function = completion.choices[0].message.tool_calls[0].function  # type: ignore[index,union-attr]
    assert (function.name, function.arguments) == ("get_time", "{}")
    assert bare.output_text == "Done: "


async def test_tool_loop_hands_off_then_calls_the_tool_of_the_agent_handed_to(
    tmp_path: Path,
) -> None:
    async with (
        MockVLLM(default=ToolLoop()) as mock,
        Runtime.from_yaml(
            helpers.PROJECT / "agents.yaml",
            environ={"MOCK_URL": mock.url},
            trace_path=tmp_path / "trace.jsonl",
        ) as runtime,
    ):
        result = await runtime.run("triage", "A haiku about Tokyo's weather, please.")
    steps = [item for item in result.items if isinstance(item, Handoff | ToolCall)]
    assert [(type(step).__name__, step.agent) for step in steps] == [
        ("Handoff", "triage"),
        ("ToolCall", "weather-haiku"),
    ]
    assert steps[0] == Handoff(agent="triage", to_agent="weather-haiku")
    assert mock.model_requests[0].function_calls == ()
    assert mock.model_requests[1].function_calls[0].name == "transfer_to_weather_haiku"
    assert mock.model_requests[2].function_calls[-1].name == "get_weather"
    assert result.agent == "weather-haiku"
    assert result.final_output.startswith('Done: {"city": "Tokyo"')


class Stop(BaseModel):
    name: str
    minutes: int


class Trip(BaseModel):
    stops: list[Stop]
    first: Stop
    note: str | None
    mode: str = "train"


@pytest.mark.parametrize(
    ("schema", "known", "arguments"),
    [
        pytest.param(None, {}, {}, id="no-schema"),
        pytest.param({"type": "object", "properties": {}}, {}, {}, id="no-parameters"),
        pytest.param(
            {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
            {"city": "Tokyo", "unknown": 1},
            {"city": "Tokyo"},
            id="known-values-for-required-only",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {
                    "n": {"type": "integer", "minimum": 3},
                    "x": {"type": "number", "exclusiveMinimum": 0.5},
                    "low": {"type": "integer", "maximum": -2},
                    "flag": {"type": "boolean"},
                    "when": {"type": "string", "format": "date"},
                    "code": {"type": "string", "minLength": 9},
                    "unit": {"enum": ["c", "f"]},
                    "kind": {"const": "k"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "pair": {"type": "array", "items": {"type": "integer"}, "minItems": 2},
                    "maybe": {"type": ["null", "integer"]},
                    "loose": {},
                },
                "required": [
                    "n",
                    "x",
                    "low",
                    "flag",
                    "when",
                    "code",
                    "unit",
                    "kind",
                    "tags",
                    "pair",
                    "maybe",
                    "loose",
                    "missing",
                ],
            },
            {},
            {
                "n": 3,
                "x": 1.5,
                "low": -2,
                "flag": True,
                "when": "2026-01-01",
                "code": "examplexx",
                "unit": "c",
                "kind": "k",
                "tags": [],
                "pair": [1, 1],
                "maybe": 1,
                "loose": "example",
            },
            id="types-and-bounds",
        ),
        pytest.param(
            Trip.model_json_schema(),
            {},
            {"stops": [], "first": {"name": "example", "minutes": 1}, "note": "example"},
            id="pydantic-refs",
        ),
    ],
)
def test_example_arguments_fill_the_required_properties(
    schema: dict[str, Any] | None, known: dict[str, Any], arguments: dict[str, Any]
) -> None:
    assert example_arguments(schema, known=known) == arguments
    if schema is not None and schema.get("title") == "Trip":
        Trip.model_validate(arguments)  # what a tool with that signature accepts


def test_example_arguments_stop_at_a_recursive_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "required": ["node"],
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/Node"}},
                "required": ["child"],
            }
        },
    }
    arguments = example_arguments(schema)
    depth = 0
    node: Any = arguments["node"]
    while isinstance(node, dict):
        node, depth = node["child"], depth + 1
    assert node is None
    assert 1 < depth < 10
