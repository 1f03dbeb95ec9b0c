"""What a run produces: plain values made from the SDK's run items and results."""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.items import (
    HandoffCallItem,
    HandoffOutputItem,
    MessageOutputItem,
    ReasoningItem,
    ToolCallItem,
    ToolCallOutputItem,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage as SDKUsage
from openai.types.responses import (
    ResponseFunctionToolCallOutputItem,
    ResponseFunctionWebSearch,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
)
from openai.types.responses.response_function_web_search import ActionSearch
from openai.types.responses.response_reasoning_item import Content, Summary
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from agent_runtime.results import (
    Handoff,
    Message,
    Reasoning,
    RunResult,
    ToolCall,
    ToolResult,
    Usage,
    run_item,
    run_result,
)

AGENT = Agent(name="worker")
OTHER = Agent(name="other")


def test_total_tokens_are_input_plus_output() -> None:
    assert Usage(input_tokens=120, output_tokens=30, reasoning_tokens=20).total_tokens == 150
    assert Usage().total_tokens == 0


def test_to_dict_is_the_json_object_of_a_result() -> None:
    result = RunResult(
        final_output="3",
        items=(
            Reasoning(agent="worker", text="Add."),
            ToolCall(agent="worker", name="add", arguments='{"a":1}', call_id="c1"),
            ToolResult(agent="worker", name="add", call_id="c1", output="3"),
            Handoff(agent="worker", to_agent="other"),
            Message(agent="other", text="3"),
        ),
        usage=Usage(
            requests=2, input_tokens=50, output_tokens=9, reasoning_tokens=4, cached_tokens=32
        ),
        turns=2,
        trace_id="trace_1",
        agent="other",
    )
    expected = {
        "final_output": "3",
        "items": [
            {"agent": "worker", "text": "Add.", "type": "reasoning"},
            {
                "agent": "worker",
                "name": "add",
                "arguments": '{"a":1}',
                "call_id": "c1",
                "type": "tool_call",
            },
            {
                "agent": "worker",
                "name": "add",
                "call_id": "c1",
                "output": "3",
                "type": "tool_result",
            },
            {"agent": "worker", "to_agent": "other", "type": "handoff"},
            {"agent": "other", "text": "3", "type": "message"},
        ],
        "usage": {
            "requests": 2,
            "input_tokens": 50,
            "output_tokens": 9,
            "reasoning_tokens": 4,
            "cached_tokens": 32,
            "total_tokens": 59,
        },
        "turns": 2,
        "trace_id": "trace_1",
        "agent": "other",
    }
    assert result.to_dict() == expected
    assert json.loads(json.dumps(result.to_dict())) == expected


def test_a_structured_final_output_stays_a_value() -> None:
    result = RunResult(
        final_output={"city": "Tokyo"}, items=(), usage=Usage(), turns=1, trace_id="t", agent="a"
    )
    assert result.to_dict()["final_output"] == {"city": "Tokyo"}


# -- SDK run items ----------------------------------------------------------------------------


def reasoning_item(content: list[str], summary: list[str] = ()) -> ReasoningItem:  # type: ignore[assignment]
    raw = ResponseReasoningItem(
        id="rs_1",
        type="reasoning",
        content=[Content(text=text, type="reasoning_text") for text in content],
        summary=[Summary(text=text, type="summary_text") for text in summary],
    )
    return ReasoningItem(agent=AGENT, raw_item=raw)


def message_item(*texts: str) -> MessageOutputItem:
    raw = ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[
            ResponseOutputText(type="output_text", text=text, annotations=[]) for text in texts
        ],
    )
    return MessageOutputItem(agent=AGENT, raw_item=raw)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param(
            reasoning_item(["First.", "Second."]),
            Reasoning(agent="worker", text="First.\nSecond."),
            id="reasoning",
        ),
        pytest.param(
            reasoning_item([], ["A summary.", "More."]),
            Reasoning(agent="worker", text="A summary.\nMore."),
            id="reasoning-summary-only",
        ),
        pytest.param(
            reasoning_item(["Content wins."], ["Not this."]),
            Reasoning(agent="worker", text="Content wins."),
            id="reasoning-content-first",
        ),
        pytest.param(reasoning_item([]), Reasoning(agent="worker", text=""), id="reasoning-empty"),
        pytest.param(
            message_item("Sun over ", "Tokyo."),
            Message(agent="worker", text="Sun over Tokyo."),
            id="message",
        ),
        pytest.param(
            ToolCallItem(
                agent=AGENT,
                raw_item=function_call("get_weather", {"city": "Oslo"}, call_id="call_7"),
            ),
            ToolCall(
                agent="worker", name="get_weather", arguments='{"city":"Oslo"}', call_id="call_7"
            ),
            id="tool-call",
        ),
        pytest.param(
            ToolCallItem(
                agent=AGENT,
                raw_item=ResponseFunctionWebSearch(
                    id="ws_1",
                    type="web_search_call",
                    status="completed",
                    action=ActionSearch(type="search", query="weather"),
                ),
            ),
            ToolCall(agent="worker", name="ResponseFunctionWebSearch", arguments="", call_id=""),
            id="hosted-tool-call",
        ),
        pytest.param(
            HandoffOutputItem(
                agent=AGENT,
                raw_item={"call_id": "h1", "output": "{}", "type": "function_call_output"},
                source_agent=AGENT,
                target_agent=OTHER,
            ),
            Handoff(agent="worker", to_agent="other"),
            id="handoff",
        ),
        pytest.param(
            HandoffCallItem(
                agent=AGENT, raw_item=function_call("transfer_to_other", {}, call_id="h1")
            ),
            None,
            id="handoff-call-not-reported",
        ),
    ],
)
def test_run_item(item: Any, expected: Any) -> None:
    assert run_item(item, {}) == expected


def test_tool_results_are_named_by_their_calls() -> None:
    names: dict[str, str] = {}
    call = ToolCallItem(agent=AGENT, raw_item=function_call("add", {"a": 1}, call_id="c1"))
    assert run_item(call, names) == ToolCall(
        agent="worker", name="add", arguments='{"a":1}', call_id="c1"
    )
    assert names == {"c1": "add"}
    as_dict = ToolCallOutputItem(
        agent=AGENT,
        raw_item={"call_id": "c1", "output": "2", "type": "function_call_output"},
        output=2,
    )
    as_object = ToolCallOutputItem(
        agent=AGENT,
        raw_item=ResponseFunctionToolCallOutputItem(
            id="fco_1",
            call_id="c1",
            output="2",
            type="function_call_output",
            status="completed",
        ),
        output="2",
    )
    unknown = ToolCallOutputItem(
        agent=AGENT,
        raw_item={"call_id": "c9", "output": "x", "type": "function_call_output"},
        output="x",
    )
    assert [run_item(item, names) for item in (as_dict, as_object, unknown)] == [
        ToolResult(agent="worker", name="add", call_id="c1", output="2"),
        ToolResult(agent="worker", name="add", call_id="c1", output="2"),
        ToolResult(agent="worker", name="", call_id="c9", output="x"),
    ]


# -- SDK run results --------------------------------------------------------------------------


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def usage(input_tokens: int, output_tokens: int, reasoning: int, cached: int) -> SDKUsage:
    return SDKUsage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
    )


def agents_with(model: ScriptedModel) -> Agent[Any]:
    other = Agent(name="other", model=model)
    return Agent(name="worker", model=model, tools=[add], handoffs=[other])


def script() -> list[ModelStep]:
    thinking = ResponseReasoningItem(
        id="rs_1",
        type="reasoning",
        summary=[],
        content=[Content(text="Add.", type="reasoning_text")],
    )
    return [
        ModelStep(
            output=[thinking, function_call("add", {"a": 1, "b": 2}, call_id="c1")],
            usage=usage(10, 5, 2, 0),
        ),
        ModelStep(
            output=[function_call("transfer_to_other", {}, call_id="h1")], usage=usage(20, 3, 0, 8)
        ),
        ModelStep(output=[assistant_message("3")], usage=usage(30, 4, 1, 16)),
    ]


EXPECTED = RunResult(
    final_output="3",
    items=(
        Reasoning(agent="worker", text="Add."),
        ToolCall(agent="worker", name="add", arguments='{"a":1,"b":2}', call_id="c1"),
        ToolResult(agent="worker", name="add", call_id="c1", output="3"),
        Handoff(agent="worker", to_agent="other"),
        Message(agent="other", text="3"),
    ),
    usage=Usage(
        requests=3, input_tokens=60, output_tokens=12, reasoning_tokens=3, cached_tokens=24
    ),
    turns=3,
    trace_id="trace_x",
    agent="other",
)


async def test_run_result_of_a_finished_run() -> None:
    model = ScriptedModel(script())
    result = await Runner.run(
        agents_with(model), "1+2?", run_config=RunConfig(tracing_disabled=True)
    )
    assert run_result(result, trace_id="trace_x") == EXPECTED
    model.assert_complete()


async def test_run_result_of_a_finished_stream() -> None:
    model = ScriptedModel(script())
    streamed = Runner.run_streamed(
        agents_with(model), "1+2?", run_config=RunConfig(tracing_disabled=True)
    )
    async for _ in streamed.stream_events():
        pass
    assert run_result(streamed, trace_id="trace_x") == EXPECTED
