"""The mock's `/v1/chat/completions`, through the official `openai` client over real HTTP."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import pytest
from openai import AsyncOpenAI, OpenAI

from agent_runtime.testing import VLLM_0_21, MockVLLM, Reply, call

MODEL = "openai/gpt-oss-20b"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_tool_call_turn_shape() -> None:
    reply = Reply(
        reasoning="User asks weather in Berlin; call tool.",
        calls=[call("get_weather", city="Berlin")],
    )
    with MockVLLM([reply]) as mock:
        body = httpx2.post(
            f"{mock.url}/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "Berlin?"}],
                "tools": TOOLS,
            },
        ).json()
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{16}", body["id"])
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["stop_reason"] == 200012
    message = choice["message"]
    assert message["content"] is None
    assert message["reasoning"] == "User asks weather in Berlin; call tool."
    assert "reasoning_content" not in message
    (tool_call,) = message["tool_calls"]
    assert re.fullmatch(r"chatcmpl-tool-[0-9a-f]{16}", tool_call["id"])
    # vLLM re-dumps valid JSON arguments with json.dumps (spaces after separators).
    assert tool_call["function"] == {"name": "get_weather", "arguments": '{"city": "Berlin"}'}
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_final_answer_and_finish_reason_stop() -> None:
    with (
        MockVLLM([Reply(reasoning="Easy.", final="Hello!")]) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY") as client,
    ):
        completion = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "Hello!"
    assert choice.message.tool_calls == []
    assert choice.message.reasoning == "Easy."  # type: ignore[attr-defined]


def test_preamble_is_content_when_there_is_no_final_text() -> None:
    reply = Reply(preamble="Let me check.", calls=[call("get_weather", city="Oslo")])
    with MockVLLM([reply]) as mock, OpenAI(base_url=mock.url, api_key="EMPTY") as client:
        completion = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Oslo?"}], tools=TOOLS
        )
    assert completion.choices[0].message.content == "Let me check."


def chat_tool_loop(assistant_content: dict[str, Any]) -> MockVLLM:
    """Two chat turns where the client sends the assistant's tool call back with `reasoning`."""
    script = [
        Reply(reasoning="Need the tool.", calls=[call("get_weather", city="Oslo")]),
        Reply(reasoning="Cold.", final="Oslo is cold."),
    ]
    with MockVLLM(script) as mock, OpenAI(base_url=mock.url, api_key="EMPTY") as client:
        first = (
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Oslo?"}], tools=TOOLS
            )
            .choices[0]
            .message
        )
        assert first.tool_calls
        messages: list[Any] = [
            {"role": "user", "content": "Oslo?"},
            {
                "role": "assistant",
                **assistant_content,
                "tool_calls": [tc.model_dump() for tc in first.tool_calls],
                "reasoning": first.reasoning,  # type: ignore[attr-defined]
            },
            {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "-3 °C"},
        ]
        client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    return mock


def test_reasoning_sent_back_in_reasoning_field_reaches_the_conversation() -> None:
    mock = chat_tool_loop({})  # no `content` key
    mock.assert_reasoning_returned(reply=0, request=1)
    second = mock.model_requests[1]
    assert [(m.role, m.channel) for m in second.messages] == [
        ("user", None),
        ("assistant", "analysis"),
        ("assistant", "commentary"),
        ("tool", "commentary"),
    ]
    assert second.function_outputs[0].name == "get_weather"
    assert second.messages[3].name == "functions.get_weather"


def test_reasoning_is_lost_when_content_is_null() -> None:
    # vLLM v0.21: `"content": null` selects openai's assistant TypedDict, which has no
    # `reasoning` key, so the reasoning is silently dropped (the Agents SDK sends null).
    mock = chat_tool_loop({"content": None})
    assert mock.model_requests[1].reasoning_texts == []
    with pytest.raises(AssertionError, match="not sent back"):
        mock.assert_reasoning_returned(reply=0, request=1)


async def test_streaming_chunks_reasoning_tool_calls_usage_and_done() -> None:
    reply = Reply(reasoning="Call it.", calls=[call("get_weather", city="Lima")])
    async with MockVLLM([reply]) as mock, AsyncOpenAI(base_url=mock.url, api_key="EMPTY") as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Lima?"}],
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.content == ""
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning", None) or "" for c in chunks if c.choices
    )
    assert reasoning == "Call it."
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id is not None
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    assert all(tc.id is None for tc in calls[1:])
    assert {tc.index for tc in calls} == {0}
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert json.loads(arguments) == {"city": "Lima"}
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == "tool_calls"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_stream_ends_with_done_line() -> None:
    with (
        MockVLLM([Reply(final="ok")]) as mock,
        httpx2.stream(
            "POST",
            f"{mock.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "stream": True},
        ) as response,
    ):
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_include_reasoning_false_hides_reasoning() -> None:
    with MockVLLM([Reply(reasoning="secret", final="ok")]) as mock:
        body = httpx2.post(
            f"{mock.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "include_reasoning": False},
        ).json()
    assert "reasoning" not in body["choices"][0]["message"]


def test_older_vllm_reasoning_content_field() -> None:
    profile = VLLM_0_21.but(chat_reasoning_field="reasoning_content")
    with MockVLLM([Reply(reasoning="old", final="ok")], profile=profile) as mock:
        body = httpx2.post(
            f"{mock.url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        ).json()
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "old"
    assert "reasoning" not in message


def test_server_without_tool_parser_returns_no_tool_calls() -> None:
    profile = VLLM_0_21.but(chat_tool_parser=False)
    reply = Reply(reasoning="call", calls=[call("get_weather", city="Oslo")])
    with MockVLLM([reply], profile=profile) as mock:
        body = httpx2.post(
            f"{mock.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "tools": TOOLS},
        ).json()
    choice = body["choices"][0]
    assert choice["message"]["tool_calls"] == []
    assert choice["finish_reason"] == "stop"
