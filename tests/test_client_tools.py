"""Client tools (`Runtime.run(..., tools=[ClientTool(...)])`): offered to the model, never run
by the runtime; the run stops at their calls and the session continues with their outputs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import ConfigError, RunFinished, ToolCall, ToolResult
from agent_runtime.runtime import Runtime
from agent_runtime.sessions import SessionStore
from agent_runtime.testing import MockVLLM, Reply, call
from agent_runtime.tools import ClientTool
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"
WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'
GET_TIME = ClientTool(
    name="get_time",
    description="The time in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime.from_yaml(
        PROJECT,
        environ={"MOCK_URL": mock.url},
        sessions=SessionStore(tmp_path / "sessions.sqlite3"),
        trace_path=False,
    ) as rt:
        yield rt


def script() -> list[Reply]:
    """The model calls its own tool and the client's in one turn."""
    return [
        Reply(
            reasoning="Weather and time.",
            calls=(call("get_weather", city="Tokyo"), call("get_time", city="Tokyo")),
        ),
        Reply(reasoning="Both known.", final="Sunny, 9 am."),
    ]


def output(call_id: str, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


async def test_a_run_stops_at_a_client_call_and_the_session_continues_with_its_output(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(*script())
    stopped = await runtime.run(
        "weather-haiku", "Weather and time in Tokyo?", session="s", tools=[GET_TIME]
    )

    sent = mock.model_requests[0].json
    offered = {tool["name"]: tool for tool in sent["tools"]}
    assert offered["get_time"] == {
        "type": "function",
        "name": "get_time",
        "description": "The time in a city.",
        "parameters": GET_TIME.parameters,
        "strict": False,
    }
    assert "get_weather" in offered
    assert len(mock.model_requests) == 1  # stopped: no model call after the client's
    assert stopped.final_output is None
    (pending,) = stopped.pending_calls
    assert (pending.name, json.loads(pending.arguments)) == ("get_time", {"city": "Tokyo"})
    kinds = [(type(item).__name__, getattr(item, "name", "")) for item in stopped.items]
    assert kinds == [
        ("Reasoning", ""),
        ("ToolCall", "get_weather"),
        ("ToolResult", "get_weather"),  # the agent's own tool of that turn ran
    ]
    assert stopped.to_dict()["pending_calls"] == [
        {
            "agent": "weather-haiku",
            "name": "get_time",
            "arguments": pending.arguments,
            "call_id": pending.call_id,
            "type": "tool_call",
        }
    ]
    stored = await runtime.session_items("s")
    assert stopped.session_items == len(stored)
    assert [item.get("type", "message") for item in stored] == [
        "message",
        "reasoning",
        "function_call",
        "function_call",
        "function_call_output",  # get_weather's; get_time's comes from the client
    ]

    done = await runtime.run(
        "weather-haiku", [output(pending.call_id, "09:00")], session="s", tools=[GET_TIME]
    )
    assert done.final_output == "Sunny, 9 am."
    assert done.pending_calls == ()
    resent = mock.model_requests[1].json["input"]
    assert [item.get("type") for item in resent[-4:]] == [
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    assert resent[-1] == output(pending.call_id, "09:00")
    assert any(item.get("type") == "reasoning" for item in resent)  # the turn's reasoning


async def test_a_streamed_run_ends_with_the_pending_calls(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(*script())
    events = [event async for event in runtime.stream("weather-haiku", "Hi", tools=[GET_TIME])]

    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert [call.name for call in finished.result.pending_calls] == ["get_time"]
    assert finished.result.final_output is None
    streamed = [e.name for e in events if isinstance(e, ToolCall | ToolResult)]
    assert streamed == ["get_weather", "get_weather"]  # the client's call is not an item
    assert len(mock.model_requests) == 1


async def test_without_a_client_call_the_run_goes_on_as_usual(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(
        Reply(calls=(call("get_weather", city="Tokyo"),)),
        Reply(final="Sunny."),
    )
    result = await runtime.run("weather-haiku", "Hi", tools=[GET_TIME])
    assert (result.final_output, result.pending_calls) == ("Sunny.", ())
    assert len(mock.model_requests) == 2


def test_run_sync_takes_client_tools(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(Reply(calls=(call("get_time", city="Oslo"),)))
    runtime = Runtime.from_yaml(
        PROJECT,
        environ={"MOCK_URL": mock.url},
        sessions=SessionStore(tmp_path / "sessions.sqlite3"),
        trace_path=False,
    )
    result = runtime.run_sync("weather-haiku", "Time in Oslo?", tools=[GET_TIME])
    assert [call.name for call in result.pending_calls] == ["get_time"]


@pytest.mark.parametrize(
    ("tools", "problems"),
    [
        pytest.param(
            [ClientTool(name="get_weather")],
            "run(): tools[0].name: agent `weather-haiku` has a tool of its own named "
            "`get_weather`: give the client tool another name",
            id="own-tool",
        ),
        pytest.param(
            [GET_TIME, GET_TIME],
            "run(): tools[1].name: another client tool is named `get_time` too",
            id="twice",
        ),
        pytest.param(
            [ClientTool(name="get time")],
            "run(): tools[0].name: 'get time' is not a tool name: use letters, digits, `_` "
            "and `-` (at most 64)",
            id="name",
        ),
        pytest.param(
            [
                ClientTool(
                    name="get_time",
                    parameters={"type": "object", "additionalProperties": True},
                    strict=True,
                )
            ],
            "run(): tools[0].parameters: cannot use the schema: additionalProperties should "
            "not be set for object types. Make it strict-compatible, or set `strict` to false",
            id="not-strict",
        ),
        pytest.param(
            ["get_time"],
            "run(): tools[0]: expected a `ClientTool`, got a string",
            id="not-a-tool",
        ),
    ],
)
async def test_bad_client_tools_are_config_errors(
    mock: MockVLLM, runtime: Runtime, tools: list[Any], problems: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        await runtime.run("weather-haiku", "Hi", tools=tools)
    assert str(caught.value).endswith(problems)
    assert mock.model_requests == []


async def test_a_client_tool_cannot_take_a_handoffs_name(runtime: Runtime) -> None:
    with pytest.raises(ConfigError) as caught:
        runtime.check_tools("triage", [ClientTool(name="transfer_to_toolbox")])
    assert caught.value.problems[0].path == "tools[0].name"
