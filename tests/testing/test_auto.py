"""`AutoModel`: every offered tool called once with schema-valid arguments, then an answer that
fits the output schema; through a real `Runtime`, the OpenAI client, the CLI and the plugin."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx2
import jsonschema
import pytest
from openai import OpenAI
from pydantic import BaseModel, Field

from agent_runtime import Runtime
from agent_runtime.testing import (
    AutoModel,
    MockVLLM,
    RecordedRequest,
    Reply,
    handoff_tool_name,
)
from agent_runtime.testing.auto import output_schema_of

M = "tests.testing.test_auto"


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    city: str = Field(min_length=2)
    country_code: str = Field(pattern=r"^[A-Z]{2}$")


class Forecast(BaseModel):
    place: Place
    unit: Unit
    days: list[Annotated[int, Field(ge=1, le=14)]] = Field(min_length=1)
    summary: str | None
    kind: Literal["daily", "hourly"]


def get_weather(city: str, unit: Unit, when: Place | None) -> str:
    """The weather in a city.

    Args:
        city: The city.
        unit: The unit of temperatures.
        when: Where, exactly.
    """
    return f"21 degrees in {city} ({unit.value})"


def plan_trip(days: Annotated[int, Field(gt=2, le=9)], stops: list[Place]) -> str:
    """Plan a trip.

    Args:
        days: How long.
        stops: Where to stop.
    """
    return f"{days} days, {len(stops)} stop(s)"


YAML = f"""\
version: 1
defaults: {{backend: mock}}
backends:
  mock: {{base_url: "${{MOCK_URL}}", model: openai/gpt-oss-20b, max_retries: 0}}
  chat:
    base_url: "${{MOCK_URL}}"
    model: openai/gpt-oss-20b
    api: chat_completions
    max_retries: 0
tools:
  get_weather: {{function: "{M}:get_weather"}}
  plan_trip: {{function: "{M}:plan_trip"}}
agents:
  forecaster:
    instructions: Forecast.
    tools: [get_weather, plan_trip]
    output_schema: "{M}:Forecast"
  chatty:
    instructions: Chat.
    tools: [get_weather]
  triage:
    instructions: Route.
    tools: [get_weather]
    handoffs: [billing-desk]
  billing-desk:
    instructions: Bill.
  lead:
    instructions: Delegate.
    agent_tools: [{{agent: forecaster, name: ask_forecaster, description: Ask the forecaster.}}]
  chat-forecaster:
    instructions: Forecast.
    backend: chat
    tools: [get_weather, plan_trip]
    output_schema: "{M}:Forecast"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(YAML)
    return path


@pytest.fixture
async def auto() -> AsyncIterator[MockVLLM]:
    async with MockVLLM(auto=True) as server:
        yield server


def offered_schema(mock: MockVLLM, name: str) -> dict[str, Any]:
    schema = mock.model_requests[0].tool_parameters[name]
    assert schema is not None
    return dict(schema)


async def test_each_tool_once_then_a_typed_final_output(auto: MockVLLM, config: Path) -> None:
    async with Runtime.from_yaml(config, environ={"MOCK_URL": auto.url}) as runtime:
        result = await runtime.run("forecaster", "Plan a week in Tokyo.")
    assert isinstance(result.final_output, Forecast)
    assert result.final_output.kind == "daily"
    assert [call.name for call in result.tool_calls] == ["get_weather", "plan_trip"]
    assert result.turns == 3
    for call in result.tool_calls:
        jsonschema.validate(call.parsed_arguments, offered_schema(auto, call.name))
    assert result.tool_calls[1].parsed_arguments["days"] == 3
    auto.assert_tool_calls(
        [{"name": "get_weather", "arguments": {"unit": "celsius"}}, {"name": "plan_trip"}]
    )
    outputs = [item.output for item in result.items if item.type == "tool_result"]
    assert outputs == ["21 degrees in example (celsius)", "3 days, 1 stop(s)"]
    for turn in (1, 2):
        auto.assert_reasoning_returned(reply=turn - 1, request=turn)
    answer_format = auto.model_requests[2].json["text"]["format"]
    jsonschema.validate(json.loads(auto.model_requests[2].reply.final), answer_format["schema"])


async def test_chat_completions_backend(auto: MockVLLM, config: Path) -> None:
    async with Runtime.from_yaml(config, environ={"MOCK_URL": auto.url}) as runtime:
        result = await runtime.run("chat-forecaster", "Plan a week in Tokyo.")
    assert isinstance(result.final_output, Forecast)
    assert [call.name for call in result.tool_calls] == ["get_weather", "plan_trip"]
    assert {r.api for r in auto.model_requests} == {"chat_completions"}
    assert auto.model_requests[2].json["response_format"]["type"] == "json_schema"
    auto.assert_reasoning_returned(reply=1, request=2)


async def test_a_streamed_run(auto: MockVLLM, config: Path) -> None:
    async with Runtime.from_yaml(config, environ={"MOCK_URL": auto.url}) as runtime:
        events = [event async for event in runtime.stream("forecaster", "Plan.")]
    finished = events[-1]
    assert finished.type == "run_finished"
    assert isinstance(finished.result.final_output, Forecast)
    assert [call.name for call in finished.result.tool_calls] == ["get_weather", "plan_trip"]
    assert all(r.stream for r in auto.model_requests)


async def test_an_agent_offered_as_a_tool(auto: MockVLLM, config: Path) -> None:
    async with Runtime.from_yaml(config, environ={"MOCK_URL": auto.url}) as runtime:
        result = await runtime.run("lead", "Plan a trip.")
    assert [call.name for call in result.tool_calls] == ["ask_forecaster"]
    assert [call.parsed_arguments for call in result.tool_calls] == [{"input": "example"}]
    # the forecaster's own run: its two tools, then its typed answer, returned as the output
    assert [c.name for c in auto.tool_calls] == [
        "ask_forecaster",
        "get_weather",
        "plan_trip",
    ]
    output = next(item.output for item in result.items if item.type == "tool_result")
    assert output.endswith("kind='daily'")
    assert result.final_output == f"Done. ask_forecaster: {output}"


async def test_the_same_arguments_every_time(config: Path) -> None:
    seen = []
    for _ in range(2):
        async with MockVLLM(auto=True) as mock:
            async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
                result = await runtime.run("forecaster", "Plan.")
            seen.append(([c.arguments for c in result.tool_calls], result.final_output))
    assert seen[0] == seen[1]


async def test_a_text_answer_quotes_the_results(auto: MockVLLM, config: Path) -> None:
    async with Runtime.from_yaml(config, environ={"MOCK_URL": auto.url}) as runtime:
        result = await runtime.run("chatty", "Weather?", session="s")
        again = await runtime.run("chatty", "And now?", session="s")
    assert result.final_output == "Done. get_weather: 21 degrees in example (celsius)"
    # a new user message starts a new round of calls
    assert [call.name for call in again.tool_calls] == ["get_weather"]
    assert len(auto.tool_calls) == 2


async def test_handoffs_are_left_out_by_default(auto: MockVLLM, config: Path) -> None:
    async with Runtime.from_yaml(config, environ={"MOCK_URL": auto.url}) as runtime:
        result = await runtime.run("triage", "My bill?")
    assert auto.model_requests[0].tool_names == ("get_weather", "transfer_to_billing_desk")
    assert [call.name for call in result.tool_calls] == ["get_weather"]
    assert result.agent == "triage"


@pytest.mark.parametrize("handoffs", [True, ["billing-desk"], ["transfer_to_billing_desk"]])
async def test_handoffs_when_asked_for(config: Path, handoffs: Any) -> None:
    async with (
        MockVLLM(auto=AutoModel(handoffs=handoffs)) as mock,
        Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime,
    ):
        result = await runtime.run("triage", "My bill?")
    assert [call.name for call in result.tool_calls] == ["get_weather"]
    assert [item.to_agent for item in result.items if item.type == "handoff"] == ["billing-desk"]
    assert result.agent == "billing-desk"
    mock.assert_tool_calls(
        [{"name": "get_weather"}, {"name": "transfer_to_billing_desk", "arguments": {}}]
    )


@pytest.mark.parametrize("name", ["billing", "Weather Haiku", "billing-desk", "Ünïcode.Agent 2"])
def test_handoff_tool_name_is_the_sdks(name: str) -> None:
    from agents import Agent, Handoff

    assert handoff_tool_name(name) == Handoff.default_tool_name(Agent(name=name))


def test_handoff_tool_name_example() -> None:
    assert handoff_tool_name("Weather Haiku") == "transfer_to_weather_haiku"


# -- options ----------------------------------------------------------------------------------


def request_for(body: dict[str, Any]) -> RecordedRequest:
    """A request as the mock records it, enough for calling a responder directly."""
    with MockVLLM() as mock:
        httpx2.post(f"{mock.url}/responses", json=body)
        return mock.model_requests[0]


TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    },
    {"type": "function", "name": "ping", "description": "Ping.", "parameters": None},
    {"type": "function", "name": "transfer_to_x", "description": "Go.", "parameters": None},
]


def test_options_for_arguments_skip_together_and_answer() -> None:
    request = request_for({"input": "Go.", "tools": TOOLS})
    model = AutoModel(
        arguments={"get_weather": {"city": "Paris"}}, together=True, answer="Fine.", handoffs=True
    )
    reply = model(request)
    assert reply.reasoning == "I should call `get_weather`, `ping`, `transfer_to_x` now."
    assert [(c.name, c.arguments) for c in reply.calls] == [
        ("get_weather", {"city": "Paris", "days": 1}),
        ("ping", {}),
        ("transfer_to_x", {}),
    ]
    skipping = AutoModel(skip=["get_weather", "ping"], answer="Fine.")
    assert skipping(request) == Reply(
        reasoning="Every tool has been called; answer.", final="Fine."
    )


def test_one_call_per_turn_when_parallel_calls_are_off() -> None:
    request = request_for({"input": "Go.", "tools": TOOLS, "parallel_tool_calls": False})
    assert [c.name for c in AutoModel(together=True)(request).calls] == ["get_weather"]


def test_tool_choice_none_answers_at_once() -> None:
    request = request_for({"input": "Go.", "tools": TOOLS, "tool_choice": "none"})
    assert AutoModel()(request).final == "Done."


def test_a_schema_no_value_fits_is_a_clear_error() -> None:
    impossible = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 1}},
        "required": ["n"],
    }
    tools = [{"type": "function", "name": "f", "description": "F.", "parameters": impossible}]
    request = request_for({"input": "Go.", "tools": tools})
    with pytest.raises(ValueError) as error:
        AutoModel()(request)
    assert str(error.value) == (
        "AutoModel cannot make up arguments for the tool `f`: n: no value found for "
        '{"type": "integer", "minimum": 5, "maximum": 1}. Give them: '
        "AutoModel(arguments={'f': {...}})."
    )
    assert AutoModel(arguments={"f": {"n": 3}})(request).calls[0].arguments == {"n": 3}


SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@pytest.mark.parametrize(
    ("body", "found"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"text": {"format": {"type": "text"}}}, None, id="text"),
        pytest.param(
            {"text": {"format": {"type": "json_schema", "name": "v", "schema": SCHEMA}}},
            ("v", SCHEMA),
            id="responses",
        ),
        pytest.param(
            {"text": {"format": {"type": "json_object"}}}, ("json_object", None), id="obj"
        ),
        pytest.param(
            {"response_format": {"type": "json_schema", "json_schema": {"schema": SCHEMA}}},
            ("output", SCHEMA),
            id="chat",
        ),
        pytest.param({"response_format": {"type": "json_object"}}, ("json_object", None), id="c"),
    ],
)
def test_output_schema_of(body: dict[str, Any], found: Any) -> None:
    assert output_schema_of(body) == found


@pytest.mark.parametrize(
    ("text_format", "final"),
    [
        pytest.param({"type": "json_object"}, "{}", id="json-object"),
        pytest.param(
            {"type": "json_schema", "name": "v", "schema": SCHEMA}, '{"ok": true}', id="s"
        ),
    ],
)
def test_a_structured_answer(text_format: dict[str, Any], final: str) -> None:
    request = request_for({"input": "Go.", "text": {"format": text_format}})
    reply = AutoModel(answer="ignored")(request)
    assert reply.final == final
    assert reply.reasoning is not None


def test_an_output_schema_no_value_fits_is_a_clear_error() -> None:
    text_format = {
        "type": "json_schema",
        "name": "v",
        "schema": {"type": "string", "pattern": "(?=x)y"},
    }
    request = request_for({"input": "Go.", "text": {"format": text_format}})
    with pytest.raises(ValueError) as error:
        AutoModel()(request)
    assert str(error.value) == (
        "AutoModel cannot make up an answer for the output schema `v`: the schema: the group "
        "`(?=...` in '(?=x)y' is not supported (lookarounds, flags and conditionals are not)"
    )


def test_the_error_reaches_the_client_as_a_500() -> None:
    impossible = {"type": "object", "properties": {"n": {"not": {}}}, "required": ["n"]}
    tools = [{"type": "function", "name": "f", "description": "F.", "parameters": impossible}]
    with MockVLLM(auto=True) as mock:
        answer = httpx2.post(f"{mock.url}/responses", json={"input": "Go.", "tools": tools})
    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert "AutoModel cannot make up arguments for the tool `f`: n: no value found" in message


def test_auto_and_default_together_is_an_error() -> None:
    with pytest.raises(ValueError, match="give either default or auto, not both"):
        MockVLLM(default=Reply(final="x"), auto=True)


# -- wire: Chat Completions, harmony, structured output ------------------------------------


def test_chat_completions_with_a_response_format() -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "enum": ["yes", "no"]},
            "n": {"type": "number"},
        },
        "required": ["answer", "n"],
        "additionalProperties": False,
    }
    tools = [{"type": "function", "function": {k: v for k, v in TOOLS[0].items() if k != "type"}}]
    with MockVLLM(auto=True) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY")
        messages: list[Any] = [{"role": "user", "content": "Weather?"}]
        response_format: Any = {
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema, "strict": True},
        }
        first = (
            client.chat.completions.create(
                model="openai/gpt-oss-20b",
                messages=messages,
                tools=tools,
                response_format=response_format,
            )
            .choices[0]
            .message
        )
        assert first.tool_calls is not None
        call = first.tool_calls[0]
        assert json.loads(call.function.arguments) == {"city": "example", "days": 1}
        messages += [
            {"role": "assistant", "tool_calls": [call.model_dump()], "reasoning": "x"},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ]
        final = (
            client.chat.completions.create(
                model="openai/gpt-oss-20b",
                messages=messages,
                tools=tools,
                response_format=response_format,
            )
            .choices[0]
            .message
        )
    assert json.loads(final.content or "") == {"answer": "yes", "n": 1}


def test_harmony_mode() -> None:
    with MockVLLM(auto=True, harmony=True) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY")
        response = client.responses.create(
            model="openai/gpt-oss-20b",
            input="Weather?",
            tools=TOOLS[:1],  # type: ignore[list-item]
        )
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "function_call"]
    assert mock.model_requests[0].prompt is not None
    assert "get_weather" in mock.model_requests[0].prompt


@pytest.mark.mock_vllm(auto=True)
def test_the_plugin_marker(mock_vllm: MockVLLM) -> None:
    client = OpenAI(base_url=mock_vllm.url, api_key="EMPTY")
    response = client.responses.create(model="openai/gpt-oss-20b", input="Hi.")
    assert response.output_text == "Done."
    assert mock_vllm.tool_calls == []


def test_the_mock_command_with_auto() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_runtime.testing", "--port", "0", "--auto"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        body = httpx2.post(f"{url}/responses", json={"input": "x", "tools": TOOLS[:1]}).json()
    finally:
        process.kill()
        _, stderr = process.communicate()
    assert body["output"][1]["name"] == "get_weather"
    assert json.loads(body["output"][1]["arguments"]) == {"city": "example", "days": 1}
    assert "then the auto model" in stderr


def test_the_mock_command_refuses_auto_with_a_tool_loop() -> None:
    from click.testing import CliRunner

    from agent_runtime.cli import cli

    result = CliRunner().invoke(cli, ["mock", "--port", "0", "--auto", "--tool-loop"])
    assert result.exit_code == 2
    assert result.output.endswith("Error: give either --auto or --tool-loop, not both\n")
