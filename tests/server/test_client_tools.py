"""Function tools sent by the client to `POST /v1/responses`: the served agent calls them, the
response ends with the `function_call`, the client runs it and continues. Through the official
`openai` client and the Agents SDK (a served agent as the model of an SDK agent with its own
function tool), over real HTTP, against the mock vLLM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseFunctionToolCall,
    ResponseStreamEvent,
)
from openai.types.responses.response_input_param import FunctionCallOutput
from pydantic import TypeAdapter

from agent_runtime.testing import MockVLLM, Reply, call
from tests.server.helpers import project_app, served

WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
GET_TIME: FunctionToolParam = {
    "type": "function",
    "name": "get_time",
    "description": "The local time in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def script() -> list[Reply]:
    """The served agent calls its own tool, then the client's, then answers."""
    return [
        Reply(reasoning="Weather first.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(reasoning="Now the time.", calls=(call("get_time", city="Tokyo"),)),
        Reply(reasoning="Both known.", final="Sunny at 9 am."),
    ]


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def url(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[str]:
    async with served(project_app(mock, tmp_path)) as base:
        yield base


@pytest.fixture
async def client(url: str) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as openai_client:
        yield openai_client


def function_output(call_id: str, output: str) -> FunctionCallOutput:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


async def test_a_client_tool_call_ends_the_response_and_its_output_continues_it(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*script())
    first = await client.responses.create(
        model="weather-haiku",
        input="Weather and time in Tokyo?",
        tools=[GET_TIME],
    )

    Response.model_validate(first.model_dump(exclude_unset=True))
    assert first.status == "completed"
    assert [item.type for item in first.output] == [
        "reasoning",
        "mcp_call",
        "reasoning",
        "function_call",
    ]
    assert first.output_text == ""
    pending = first.output[-1]
    assert isinstance(pending, ResponseFunctionToolCall)
    assert pending.model_dump(exclude_none=True) == {
        "id": pending.id,
        "type": "function_call",
        "call_id": pending.call_id,
        "name": "get_time",
        "arguments": '{"city":"Tokyo"}',
        "status": "completed",
    }
    assert [tool.name for tool in first.tools] == ["get_time"]  # type: ignore[union-attr]
    assert "get_time" in mock.model_requests[1].tool_names
    assert len(mock.model_requests) == 2  # stopped at the client's call

    second = await client.responses.create(
        model="weather-haiku",
        input=[function_output(pending.call_id, "09:00")],
        previous_response_id=first.id,
        tools=[GET_TIME],
    )
    assert second.output_text == "Sunny at 9 am."
    sent = mock.model_requests[-1].json["input"]
    assert sent[0] == {"role": "user", "content": "Weather and time in Tokyo?"}
    call_item = sent[-2]
    assert (call_item["type"], call_item["name"], call_item["call_id"]) == (
        "function_call",
        "get_time",
        pending.call_id,
    )
    assert sent[-1] == function_output(pending.call_id, "09:00")
    assert sent[-3]["type"] == "reasoning"  # the reasoning that led to the call
    assert any(item.get("output") == WEATHER for item in sent)


async def test_a_streamed_response_ends_with_the_function_call_events(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*script())
    stream = await client.responses.create(
        model="weather-haiku",
        input="Weather and time in Tokyo?",
        tools=[GET_TIME],
        stream=True,
    )
    events = [event.model_dump(exclude_unset=True) async for event in stream]

    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    tail = [e["type"] for e in events[-6:]]
    assert tail == [
        "response.output_item.done",  # the reasoning before the call
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, delta, done, item_done = events[-5:-1]
    assert added["item"]["type"] == "function_call"
    assert (added["item"]["status"], added["item"]["arguments"]) == ("in_progress", "")
    assert delta["delta"] == done["arguments"] == '{"city":"Tokyo"}'
    assert delta["item_id"] == done["item_id"] == added["item"]["id"] == item_done["item"]["id"]
    assert item_done["item"]["status"] == "completed"
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"][-1] == item_done["item"]
    assert [item["type"] for item in final["output"]] == [
        "reasoning",
        "mcp_call",
        "reasoning",
        "function_call",
    ]

    mock.add(Reply(final="Sunny at 9 am."))
    call_id = item_done["item"]["call_id"]
    async with client.responses.stream(
        model="weather-haiku",
        input=[function_output(call_id, "09:00")],
        previous_response_id=final["id"],
        tools=[GET_TIME],
    ) as again:
        answer = await again.get_final_response()
    assert answer.output_text == "Sunny at 9 am."
    assert mock.model_requests[-1].json["input"][-1] == function_output(call_id, "09:00")


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
async def test_the_agents_sdk_runs_its_own_tool_for_a_served_agent(
    mock: MockVLLM, url: str, streamed: bool
) -> None:
    from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool

    looked_up: list[str] = []

    @function_tool
    def get_time(city: str) -> str:
        """The local time in a city.

        Args:
            city: The city.
        """
        looked_up.append(city)
        return "09:00"

    mock.add(*script())
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as openai_client:
        model = OpenAIResponsesModel(model="weather-haiku", openai_client=openai_client)
        agent = Agent(name="outer", model=model, tools=[get_time])
        config = RunConfig(tracing_disabled=True)
        question = "Weather and time in Tokyo?"
        if streamed:
            result: Any = Runner.run_streamed(agent, question, run_config=config)
            async for _ in result.stream_events():
                pass
        else:
            result = await Runner.run(agent, question, run_config=config)

    assert looked_up == ["Tokyo"]  # the SDK ran its own tool
    assert result.final_output == "Sunny at 9 am."
    assert len(mock.model_requests) == 3
    sent = mock.model_requests[-1].json["input"]  # the SDK sent the whole conversation again
    assert sent[0]["content"] == "Weather and time in Tokyo?"
    assert [item.get("type") for item in sent[1:]] == [
        "reasoning",
        "function_call",
        "function_call_output",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    assert sent[3]["output"] == WEATHER  # the served agent's own call, from its mcp_call
    assert (sent[5]["name"], sent[6]["output"]) == ("get_time", "09:00")
    assert sent[6]["call_id"] == sent[5]["call_id"]


@pytest.mark.parametrize(
    ("tools", "param", "words"),
    [
        pytest.param(
            [{"type": "web_search"}],
            "tools[0].type",
            "tools of type `web_search` are not supported",
            id="other-type",
        ),
        pytest.param(
            [GET_TIME, {**GET_TIME, "name": "get_weather"}],
            "tools[1].name",
            "agent `weather-haiku` has a tool of its own named `get_weather`",
            id="own-name",
        ),
        pytest.param([{"type": "function"}], "tools[0].name", "Field required", id="no-name"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
async def test_bad_client_tools_are_a_400_naming_them(
    mock: MockVLLM, url: str, tools: list[Any], param: str, words: str, stream: bool
) -> None:
    body = {"model": "weather-haiku", "input": "hi", "tools": tools, "stream": stream}
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{url}/v1/responses", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param
    assert words in error["message"]
    assert mock.model_requests == []


@pytest.mark.parametrize(
    "choice",
    [
        pytest.param({"type": "function", "name": "get_time"}, id="a-tool"),
        pytest.param("always", id="not-a-mode"),
    ],
)
async def test_a_tool_choice_that_is_not_a_mode_is_a_400(url: str, choice: Any) -> None:
    body = {"model": "weather-haiku", "input": "hi", "tools": [GET_TIME], "tool_choice": choice}
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{url}/v1/responses", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "tool_choice"


async def test_a_tool_choice_mode_reaches_the_model(mock: MockVLLM, client: AsyncOpenAI) -> None:
    mock.add(Reply(calls=(call("get_time", city="Oslo"),)))
    response = await client.responses.create(
        model="weather-haiku", input="Time in Oslo?", tools=[GET_TIME], tool_choice="required"
    )
    assert mock.model_requests[0].json["tool_choice"] == "required"
    assert response.tool_choice == "required"


async def test_a_function_output_given_as_parts_reaches_the_model_as_text(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(Reply(calls=(call("get_time", city="Oslo"),)), Reply(final="9 am."))
    first = await client.responses.create(
        model="weather-haiku",
        input="Time in Oslo?",
        tools=[GET_TIME],
    )
    pending = first.output[-1]
    assert isinstance(pending, ResponseFunctionToolCall)
    parts: FunctionCallOutput = {
        "type": "function_call_output",
        "call_id": pending.call_id,
        "output": [{"type": "input_text", "text": "09"}, {"type": "input_text", "text": ":00"}],
    }
    await client.responses.create(
        model="weather-haiku",
        input=[parts],
        previous_response_id=first.id,
        tools=[GET_TIME],
    )
    assert mock.model_requests[-1].json["input"][-1]["output"] == "09:00"
