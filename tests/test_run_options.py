"""What one call of run / stream / run_sync adds to agents.yaml: a context for tools, more
instructions, other model settings; checked on the wire of the mock vLLM server."""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agents import RunContextWrapper

from agent_runtime import ConfigError, Runtime, ToolResult
from agent_runtime.config import ModelSettingsSpec
from agent_runtime.results import RunFinished
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"
HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."


@dataclass
class Shop:
    """What a service hands its tools for one request: who asks, and its database."""

    user: str
    orders: Mapping[str, list[str]]
    both_in: asyncio.Barrier = field(default_factory=lambda: asyncio.Barrier(1))
    secret: str = "db-password-not-for-the-model"


async def list_orders(context: RunContextWrapper[Shop]) -> str:
    """The orders of the user who asks."""
    shop = context.context
    await shop.both_in.wait()  # with a barrier of 2: both runs' calls are in flight together
    return f"{shop.user}: {', '.join(shop.orders[shop.user])}"


ORDERS = {"ann": ["a book"], "bob": ["a kettle", "tea"]}


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime.from_yaml(
        PROJECT,
        environ={"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)},
    ) as rt:
        yield rt


@pytest.fixture
async def shop(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime whose `shop` agent has the `list_orders` tool above."""
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        f"backends: {{mock: {{base_url: '{mock.url}', model: openai/gpt-oss-20b}}}}\n"
        f"tools: {{list_orders: {{function: '{__name__}:list_orders'}}}}\n"
        "agents: {shop: {instructions: Help with orders., tools: [list_orders]}}\n"
        "tracing: {path: traces.jsonl, include_sensitive_data: true}\n"
    )
    async with Runtime.from_yaml(config) as rt:
        yield rt


def trace_text(tmp_path: Path) -> str:
    return "".join(path.read_text() for path in tmp_path.rglob("*.jsonl"))


# -- context --------------------------------------------------------------------------------


async def test_a_tool_reads_the_run_context(mock: MockVLLM, shop: Runtime, tmp_path: Path) -> None:
    mock.add(Reply(calls=[call("list_orders")]), Reply(final="You ordered a book."))
    result = await shop.run("shop", "My orders?", context=Shop(user="ann", orders=ORDERS))
    assert result.final_output == "You ordered a book."
    assert helpers.outputs_sent(mock, 1) == ["ann: a book"]
    # The context stays in the process: not sent, not traced.
    assert all(b"db-password" not in request.body for request in mock.model_requests)
    traced = trace_text(tmp_path)
    assert "ann: a book" in traced
    assert "db-password" not in traced


async def test_concurrent_runs_keep_their_own_context(mock: MockVLLM, shop: Runtime) -> None:
    mock.add(*[Reply(calls=[call("list_orders")])] * 2, *[Reply(final="Done.")] * 2)
    both_in = asyncio.Barrier(2)
    runs = [
        shop.run(
            "shop", f"Orders of {user}?", context=Shop(user=user, orders=ORDERS, both_in=both_in)
        )
        for user in ("ann", "bob")
    ]
    ann, bob = await asyncio.gather(*runs)
    assert [i.output for i in ann.items if isinstance(i, ToolResult)] == ["ann: a book"]
    assert [i.output for i in bob.items if isinstance(i, ToolResult)] == ["bob: a kettle, tea"]


async def test_streamed_and_sync_runs_pass_the_context_too(mock: MockVLLM, shop: Runtime) -> None:
    mock.add(Reply(calls=[call("list_orders")]), Reply(final="Tea."))
    events = [
        event
        async for event in shop.stream("shop", "Mine?", context=Shop(user="bob", orders=ORDERS))
    ]
    assert isinstance(events[-1], RunFinished)
    assert helpers.outputs_sent(mock, 1) == ["bob: a kettle, tea"]


def test_run_sync_passes_the_context(tmp_path: Path) -> None:
    with MockVLLM([Reply(calls=[call("list_orders")]), Reply(final="A book.")]) as mock:
        config = tmp_path / "agents.yaml"
        config.write_text(
            "version: 1\n"
            f"backends: {{mock: {{base_url: '{mock.url}', model: openai/gpt-oss-20b}}}}\n"
            f"tools: {{list_orders: {{function: '{__name__}:list_orders'}}}}\n"
            "agents: {shop: {tools: [list_orders]}}\n"
        )
        runtime = Runtime.from_yaml(config, trace_path=False)
        result = runtime.run_sync("shop", "Mine?", context=Shop(user="ann", orders=ORDERS))
        assert result.final_output == "A book."
        assert helpers.outputs_sent(mock, 1) == ["ann: a book"]


# -- instructions ---------------------------------------------------------------------------


async def test_instructions_are_added_for_one_run(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final=HAIKU), Reply(final=HAIKU), Reply(final=HAIKU))
    await runtime.run("weather-haiku", "Hi", instructions="The user's name is Ann.")
    await runtime.run("chat-haiku", "Hi", instructions="The user's name is Ann.")
    await runtime.run("weather-haiku", "Hi")
    with_addition, on_chat, next_run = (r.json for r in mock.model_requests)
    assert with_addition["instructions"] == "You only respond in haikus.\n\nThe user's name is Ann."
    assert on_chat["messages"][0] == {
        "role": "system",
        "content": "You only respond in haikus.\n\nThe user's name is Ann.",
    }
    assert next_run["instructions"] == "You only respond in haikus."


async def test_instructions_reach_the_agent_handed_to(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(calls=[call("transfer_to_weather_haiku")]), Reply(final=HAIKU))
    events = [
        event async for event in runtime.stream("triage", "A poem.", instructions="Mention Oslo.")
    ]
    assert isinstance(events[-1], RunFinished)
    triage, haiku = (r.json["instructions"] for r in mock.model_requests)
    assert triage == "Hand the user to the right agent.\n\nMention Oslo."
    assert haiku == "You only respond in haikus.\n\nMention Oslo."


# -- model settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"temperature": 0.2, "max_tokens": 64, "reasoning_effort": "high"}, id="map"),
        pytest.param(
            ModelSettingsSpec(temperature=0.2, max_tokens=64, reasoning_effort="high"), id="spec"
        ),
    ],
)
async def test_model_settings_override_the_agents_for_one_run(
    mock: MockVLLM, runtime: Runtime, settings: Any
) -> None:
    mock.add(Reply(final=HAIKU), Reply(final=HAIKU))
    await runtime.run("weather-haiku", "Hi", model_settings=settings)
    await runtime.run("weather-haiku", "Hi")
    overridden, declared = (r.json for r in mock.model_requests)
    assert overridden["temperature"] == 0.2
    assert overridden["max_output_tokens"] == 64
    assert overridden["reasoning"] == {"effort": "high"}
    assert declared["reasoning"] == {"effort": "low"}  # agents.yaml's, again
    assert "temperature" not in declared
    assert "max_output_tokens" not in declared


async def test_model_settings_on_chat_completions(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final=HAIKU))
    await runtime.run("chat-haiku", "Hi", model_settings={"max_tokens": 32, "top_p": 0.5})
    body = mock.model_requests[0].json
    assert (body["max_tokens"], body["top_p"]) == (32, 0.5)


async def test_a_run_can_name_the_tool_to_call(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(calls=[call("get_weather", city="Oslo")]), Reply(final=HAIKU))
    await runtime.run("weather-haiku", "Oslo?", model_settings={"tool_choice": "get_weather"})
    assert mock.model_requests[0].json["tool_choice"] == {"type": "function", "name": "get_weather"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"temprature": 0.2},
            "run(): model_settings.temprature: unknown setting. Did you mean `temperature`?",
            id="misspelt",
        ),
        pytest.param(
            {"seed": 1},
            "run(): model_settings.seed: unknown setting (settings: `temperature`, `top_p`, "
            "`max_tokens`, `reasoning_effort`, `tool_choice`, `parallel_tool_calls`, "
            "`truncation`, `extra_body`, `extra_headers`)",
            id="unknown",
        ),
        pytest.param(
            {"temperature": 5},
            "run(): model_settings.temperature: input should be less than or equal to 2, got 5",
            id="out-of-range",
        ),
        pytest.param(
            {"reasoning_effort": "max"},
            "run(): model_settings.reasoning_effort: input should be 'low', 'medium' or 'high', "
            "got 'max'",
            id="not-a-choice",
        ),
        pytest.param(
            {"tool_choice": "get_wether"},
            "run(): model_settings.tool_choice: agent `weather-haiku` has no tool named "
            "`get_wether`. Did you mean `get_weather`? Its tools: `get_weather`.",
            id="unknown-tool",
        ),
        pytest.param(
            [("temperature", 1)],
            "run(): model_settings: expected a mapping of settings or a `ModelSettingsSpec`, "
            "got a list",
            id="not-a-mapping",
        ),
        pytest.param(
            {"temperature": "hot", "max_tokens": 0},
            "run() has 2 problems:\n"
            "  run()  model_settings.max_tokens: input should be greater than 0, got 0\n"
            "  run()  model_settings.temperature: input should be a valid number, unable to "
            "parse string as a number, got 'hot'",
            id="two-problems",
        ),
    ],
)
async def test_bad_model_settings_are_refused_before_the_run(
    mock: MockVLLM, runtime: Runtime, settings: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        await runtime.run("weather-haiku", "Hi", model_settings=settings)
    assert str(error.value) == message
    assert mock.model_requests == []


async def test_a_stream_refuses_bad_model_settings_when_read(runtime: Runtime) -> None:
    stream = runtime.stream("weather-haiku", "Hi", model_settings={"temprature": 1})
    with pytest.raises(ConfigError, match=r"^stream\(\): model_settings\.temprature: unknown"):
        await anext(stream)  # type: ignore[call-overload]


# -- the public signatures ------------------------------------------------------------------


@pytest.mark.parametrize("method", [Runtime.run, Runtime.stream, Runtime.run_sync])
def test_run_stream_and_run_sync_take_the_same_options(method: Any) -> None:
    parameters = inspect.signature(method).parameters
    hints = typing.get_type_hints(method)
    options = ["session", "max_turns", "context", "instructions", "model_settings", "tools"]
    assert list(parameters)[3:] == options
    assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in options)
    assert all(parameters[name].default is None for name in options)
    assert hints["context"] is object
    assert hints["instructions"] == str | None
    assert hints["model_settings"] == ModelSettingsSpec | Mapping[str, Any] | None
