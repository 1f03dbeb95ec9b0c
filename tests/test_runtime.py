"""The runtime end to end: agents.yaml → SDK agents → the mock vLLM server over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import (
    AgentRuntimeError,
    BackendError,
    ConfigError,
    RunLimitError,
)
from agent_runtime.results import (
    AgentChanged,
    Handoff,
    Message,
    Reasoning,
    ReasoningDelta,
    RunFinished,
    TextDelta,
    ToolCall,
    ToolResult,
)
from agent_runtime.runtime import Runtime
from agent_runtime.sessions import SessionStore
from agent_runtime.testing import MockVLLM, Reply, call, fault
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"
HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."
WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'


def haiku_script() -> list[Reply]:
    return [
        Reply(
            reasoning="User wants Tokyo weather; call get_weather.",
            calls=[call("get_weather", city="Tokyo")],
        ),
        Reply(reasoning="Sunny and 21 °C. Write the haiku.", final=HAIKU),
    ]


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
        trace_path=tmp_path / "trace.jsonl",
    ) as rt:
        yield rt


def trace_records(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "trace.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# -- the loop on the wire ---------------------------------------------------------------------


async def test_weather_haiku_over_responses(
    mock: MockVLLM, runtime: Runtime, tmp_path: Path
) -> None:
    mock.add(*haiku_script())
    result = await runtime.run("weather-haiku", "What's the weather in Tokyo?")

    assert result.final_output == HAIKU
    assert result.turns == 2
    assert result.agent == "weather-haiku"
    assert result.items == (
        Reasoning(agent="weather-haiku", text="User wants Tokyo weather; call get_weather."),
        ToolCall(
            agent="weather-haiku",
            name="get_weather",
            arguments='{"city":"Tokyo"}',
            call_id=result.items[1].call_id,  # type: ignore[union-attr]
        ),
        ToolResult(
            agent="weather-haiku",
            name="get_weather",
            call_id=result.items[1].call_id,  # type: ignore[union-attr]
            output=WEATHER,
        ),
        Reasoning(agent="weather-haiku", text="Sunny and 21 °C. Write the haiku."),
        Message(agent="weather-haiku", text=HAIKU),
    )
    assert result.usage.requests == 2
    assert result.usage.input_tokens > 0
    assert 0 < result.usage.reasoning_tokens < result.usage.output_tokens

    first, second = (r.json for r in mock.model_requests)
    for body in (first, second):
        assert body["model"] == "openai/gpt-oss-20b"
        assert body["instructions"] == "You only respond in haikus."
        assert body["reasoning"] == {"effort": "low"}
        assert [t["name"] for t in body["tools"]] == ["get_weather"]
        assert "previous_response_id" not in body
        assert "store" not in body
    assert first["input"] == [{"content": "What's the weather in Tokyo?", "role": "user"}]
    reasoning, function_call, output = second["input"][1:]
    assert reasoning["type"] == "reasoning"
    assert reasoning["content"] == [
        {"text": "User wants Tokyo weather; call get_weather.", "type": "reasoning_text"}
    ]
    assert function_call["type"] == "function_call"
    assert output == {
        "call_id": function_call["call_id"],
        "output": WEATHER,
        "type": "function_call_output",
    }
    mock.assert_reasoning_returned(reply=0, request=1)

    records = trace_records(tmp_path)
    assert [r["type"] for r in records] == [
        "run_start",
        "model_call",
        "tool_call",
        "model_call",
        "run_end",
    ]
    assert {r["trace_id"] for r in records} == {result.trace_id}
    assert records[2]["name"] == "get_weather"
    assert records[2]["output"] == WEATHER
    assert records[1]["usage"]["reasoning_tokens"] > 0


async def test_streamed_run_yields_deltas_items_and_the_result(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(*haiku_script())
    events = [e async for e in runtime.stream("weather-haiku", "Weather in Tokyo?")]

    assert events[0] == AgentChanged(agent="weather-haiku")
    kinds = [type(e).__name__ for e in events]
    first_tool = kinds.index("ToolCall")
    assert set(kinds[1 : kinds.index("Reasoning")]) == {"ReasoningDelta"}
    assert kinds[first_tool : first_tool + 2] == ["ToolCall", "ToolResult"]
    reasoning = "".join(e.text for e in events[:first_tool] if isinstance(e, ReasoningDelta))
    assert reasoning == "User wants Tokyo weather; call get_weather."
    answer = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert answer == HAIKU
    assert isinstance(events[-1], RunFinished)
    assert events[-1].result.final_output == HAIKU
    assert all(r.stream for r in mock.model_requests)
    mock.assert_reasoning_returned(reply=0, request=1)


async def test_chat_completions_keeps_reasoning_on_vllm(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(*haiku_script())
    result = await runtime.run("chat-haiku", "What's the weather in Tokyo?")

    assert result.final_output == HAIKU
    second = mock.model_requests[1]
    assert second.api == "chat_completions"
    messages = second.json["messages"]
    call_id = messages[2]["tool_calls"][0]["id"]
    assert messages == [
        {"content": "You only respond in haikus.", "role": "system"},
        {"role": "user", "content": "What's the weather in Tokyo?"},
        {
            "role": "assistant",
            "content": "",  # not null: vLLM would drop the reasoning
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
                }
            ],
            "reasoning": "User wants Tokyo weather; call get_weather.",
        },
        {"role": "tool", "tool_call_id": call_id, "content": WEATHER},
    ]
    assert [t["function"]["name"] for t in second.json["tools"]] == ["get_weather"]
    assert "previous_response_id" not in second.json
    mock.assert_reasoning_returned(reply=0, request=1)


async def test_chat_completions_streaming(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(*haiku_script())
    events = [e async for e in runtime.stream("chat-haiku", "Weather?")]
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.final_output == HAIKU
    assert finished.result.usage.output_tokens > 0
    assert mock.model_requests[1].json["stream_options"] == {"include_usage": True}
    mock.assert_reasoning_returned(reply=0, request=1)


async def test_harmony_prompt_of_turn_two_holds_reasoning_and_tool_result(
    tmp_path: Path,
) -> None:
    async with (
        MockVLLM(haiku_script(), harmony=True) as mock,
        Runtime.from_yaml(PROJECT, environ={"MOCK_URL": mock.url}, trace_path=False) as runtime,
    ):
        await runtime.run("weather-haiku", "What's the weather in Tokyo?")
    prompt = mock.model_requests[1].prompt or ""
    assert (
        "<|start|>assistant<|channel|>analysis<|message|>"
        "User wants Tokyo weather; call get_weather.<|end|>"
    ) in prompt
    assert (
        f"<|start|>functions.get_weather<|channel|>commentary to=assistant<|message|>{WEATHER}"
        in prompt
    )
    assert prompt.endswith("<|start|>assistant")


# -- tools --------------------------------------------------------------------------------


async def test_tools_in_sequence_and_in_parallel(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(
        Reply(reasoning="Add first.", calls=[call("add", a=2, b=3)]),
        Reply(
            reasoning="Now meet in parallel.",
            calls=[
                call("meet", token="t1", who="a", other="b"),
                call("meet", token="t1", who="b", other="a"),
            ],
        ),
        Reply(final="5, and they met."),
    )
    result = await runtime.run("toolbox", "go")
    assert result.final_output == "5, and they met."
    assert helpers.outputs_sent(mock, 1) == ["5"]
    # Each `meet` waits for the other: both finish only if they run at the same time.
    assert helpers.outputs_sent(mock, 2) == ["a met b", "b met a"]


# -- agents working together ----------------------------------------------------------------


async def test_handoff(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(
        Reply(reasoning="A poem: hand over.", calls=[call("transfer_to_weather_haiku")]),
        *haiku_script(),
    )
    result = await runtime.run("triage", "A haiku about Tokyo's weather, please.")
    assert result.final_output == HAIKU
    assert result.agent == "weather-haiku"
    assert Handoff(agent="triage", to_agent="weather-haiku") in result.items
    assert mock.model_requests[1].json["instructions"] == "You only respond in haikus."


async def test_agent_used_as_a_tool(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(
        Reply(reasoning="Need a poem.", calls=[call("weather_haiku", input="Tokyo weather")]),
        *haiku_script(),
        Reply(reasoning="Got it.", final=f"Here it is:\n{HAIKU}"),
    )
    result = await runtime.run("planner", "Write me a weather poem for Tokyo.")
    assert result.final_output == f"Here it is:\n{HAIKU}"
    nested = mock.model_requests[1].json
    assert nested["instructions"] == "You only respond in haikus."
    assert helpers.outputs_sent(mock, 3) == [HAIKU]


# -- limits and failures --------------------------------------------------------------------


async def test_max_turns(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(*[Reply(calls=[call("add", a=1, b=1)]) for _ in range(3)])
    with pytest.raises(RunLimitError) as error:
        await runtime.run("toolbox", "loop", max_turns=2)
    assert str(error.value) == (
        "agent `toolbox` used all its turns without a final answer (Max turns (2) exceeded). "
        "Raise `max_turns` for the agent in agents.yaml, or pass --max-turns."
    )


async def test_unknown_agent(runtime: Runtime) -> None:
    with pytest.raises(ConfigError) as error:
        await runtime.run("weather-haiku2", "hi")
    assert str(error.value) == (
        f"{PROJECT}: agents: no agent named 'weather-haiku2'. Did you mean 'weather-haiku'? "
        "Agents: weather-haiku, toolbox, chat-haiku, triage, planner, extractor, patient."
    )


def test_run_sync_and_the_sdk_agent(tmp_path: Path) -> None:
    with MockVLLM(haiku_script() * 2) as mock:
        runtime = Runtime.from_yaml(PROJECT, environ={"MOCK_URL": mock.url}, trace_path=False)
        assert runtime.run_sync("weather-haiku", "Weather?").final_output == HAIKU
        assert runtime.run_sync("weather-haiku", "Again?").final_output == HAIKU
        agent = runtime.agent("weather-haiku")
        assert agent.name == "weather-haiku"
        assert [tool.name for tool in agent.tools] == ["get_weather"]


async def test_overrides_reach_the_wire(mock: MockVLLM, tmp_path: Path) -> None:
    mock = MockVLLM(haiku_script(), served_model_names=["my-model"], api_key="sekret")
    async with (
        mock,
        Runtime.from_yaml(
            PROJECT,
            environ={"MOCK_URL": "http://127.0.0.1:9/v1"},
            base_url=mock.url,
            model="my-model",
            api_key="sekret",
            trace_path=tmp_path / "t.jsonl",
        ) as runtime,
    ):
        await runtime.run("weather-haiku", "Weather?")
    assert mock.model_requests[0].json["model"] == "my-model"
    assert mock.model_requests[0].headers["authorization"] == "Bearer sekret"
    assert "sekret" not in (tmp_path / "t.jsonl").read_text()


# -- sessions -------------------------------------------------------------------------------


async def test_session_continues_without_finished_reasoning(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(*haiku_script(), Reply(reasoning="Answer from memory.", final="It was sunny."))
    await runtime.run("weather-haiku", "Weather in Tokyo?", session="s1")
    result = await runtime.run("weather-haiku", "What did you say?", session="s1")
    assert result.final_output == "It was sunny."
    sent = mock.model_requests[2].json["input"]
    kinds = [item.get("type", "message") for item in sent]
    # The first turn's reasoning ended in an answer: harmony drops it, so the runtime does too.
    assert kinds == ["message", "function_call", "function_call_output", "message", "message"]
    assert sent[-1] == {"content": "What did you say?", "role": "user"}
    assert sent[3]["role"] == "assistant"


async def test_failed_run_leaves_the_session_consistent(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(
        Reply(reasoning="Call it.", calls=[call("get_weather", city="Tokyo")]),
        fault(status=500),
        Reply(reasoning="Fresh start.", final="Hello again."),
    )
    with pytest.raises(BackendError):
        await runtime.run("weather-haiku", "Weather in Tokyo?", session="s2")
    result = await runtime.run("weather-haiku", "Still there?", session="s2")
    assert result.final_output == "Hello again."
    sent = mock.model_requests[2].json["input"]
    kinds = [item.get("type", "message") for item in sent]
    # The failed turn kept its call with its output; nothing orphaned was stored.
    assert kinds == ["message", "function_call", "function_call_output", "message"]


# -- problems found when the runtime is built or used -----------------------------------------


@pytest.mark.parametrize("store", ["sessions", "tracing"])
async def test_unwritable_state_files_say_which_setting_to_fix(
    mock: MockVLLM, tmp_path: Path, store: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        f"backends: {{b: {{base_url: '{mock.url}', model: m}}}}\n"
        "agents: {a: {}}\n"
        f"{store}: {{path: file/inside/x.db}}\n"
    )
    mock.add(Reply(final="hi"))
    async with Runtime.from_yaml(config) as runtime:
        with pytest.raises(AgentRuntimeError) as error:
            await runtime.run("a", "hello", session="s")
    what = "session database" if store == "sessions" else "trace file"
    assert str(error.value).startswith(
        f"cannot open the {what} {tmp_path}/file/inside/x.db: Not a directory. Set `{store}.path` "
        "in agents.yaml"
    )


# -- runs of one session take turns -----------------------------------------------------------


async def test_concurrent_runs_of_one_session_take_turns(mock: MockVLLM, runtime: Runtime) -> None:
    runs = 6
    mock.add(*[Reply(reasoning=f"Turn {n}.", final=f"answer {n}") for n in range(runs)])
    results = await asyncio.gather(
        *(runtime.run("weather-haiku", f"question {n}", session="one") for n in range(runs))
    )
    stored = await runtime.session_items("one")
    # One turn after another: each question followed by the answer to it.
    questions = [item["content"] for item in stored if item.get("role") == "user"]
    assert sorted(questions) == [f"question {n}" for n in range(runs)]
    assert [(item.get("role"), item.get("type", "message")) for item in stored] == [
        ("user", "message"),
        (None, "reasoning"),
        ("assistant", "message"),
    ] * runs
    answers = [item["content"][0]["text"] for item in stored if item.get("role") == "assistant"]
    assert answers == [f"answer {n}" for n in range(runs)]
    assert sorted(r.final_output for r in results) == answers
    # Each request carried the turns before it (their reasoning dropped, as harmony does).
    for n, request in enumerate(mock.model_requests):
        assert request.user_texts == questions[: n + 1]
        sent = request.json["input"]
        assert len(sent) == 2 * n + 1
        assert [item["content"][0]["text"] for item in sent if item.get("role") == "assistant"] == (
            answers[:n]
        )


async def test_runs_of_other_sessions_go_on_at_the_same_time(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(
        Reply(calls=[call("meet", token="s", who="a", other="b")]),
        Reply(calls=[call("meet", token="s", who="b", other="a")]),
        Reply(final="met"),
        Reply(final="met"),
    )
    # Each `meet` call waits for the other: both runs finish only if they run at once.
    first, second = await asyncio.gather(
        runtime.run("toolbox", "meet b", session="a"),
        runtime.run("toolbox", "meet a", session="b"),
    )
    outputs = sorted(
        item.output
        for result in (first, second)
        for item in result.items
        if isinstance(item, ToolResult)
    )
    assert outputs == ["a met b", "b met a"]


async def test_a_stream_and_a_run_of_one_session_take_turns(
    mock: MockVLLM, runtime: Runtime
) -> None:
    mock.add(Reply(final="first"), Reply(final="second"))

    async def streamed() -> list[Any]:
        return [e async for e in runtime.stream("weather-haiku", "one", session="mixed")]

    events, result = await asyncio.gather(
        streamed(), runtime.run("weather-haiku", "two", session="mixed")
    )
    assert isinstance(events[-1], RunFinished)
    assert {events[-1].result.final_output, result.final_output} == {"first", "second"}
    first, second = (request.user_texts for request in mock.model_requests)
    assert len(first) == 1
    assert second == [*first, "one" if first == ["two"] else "two"]
