"""The mock's `/v1/chat/completions`, through the official `openai` client over real HTTP."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import pytest
from openai import AsyncOpenAI, OpenAI

from agent_runtime.testing import (
    VLLM_0_22,
    VLLM_0_33,
    MockVLLM,
    Reply,
    VLLMProfile,
    call,
)

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
    assert choice.message.tool_calls is None  # vLLM 0.33 leaves an empty `tool_calls` out
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
    message = body["choices"][0]["message"]
    assert message["reasoning"] is None
    assert message["content"] == "ok"


def test_include_reasoning_false_streams_no_reasoning() -> None:
    with MockVLLM([Reply(reasoning="secret", final="ok")]) as mock:
        text = httpx2.post(
            f"{mock.url}/chat/completions",
            json={
                "messages": [{"role": "user", "content": "x"}],
                "include_reasoning": False,
                "stream": True,
            },
        ).text
    deltas = [
        json.loads(line.removeprefix("data: "))["choices"][0]["delta"]
        for line in text.splitlines()
        if line.startswith("data: {")
    ]
    # vLLM 0.33 writes `reasoning: null` beside each content delta; the last token (the end
    # of the message) says nothing, on the chunk with the finish reason.
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "ok", "reasoning": None},
        {},
    ]


def test_older_vllm_reasoning_content_field() -> None:
    profile = VLLM_0_33.but(chat_reasoning_field="reasoning_content")
    with MockVLLM([Reply(reasoning="old", final="ok")], profile=profile) as mock:
        body = httpx2.post(
            f"{mock.url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        ).json()
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "old"
    assert "reasoning" not in message


def test_server_without_tool_parser_returns_no_tool_calls() -> None:
    profile = VLLM_0_33.but(chat_tool_parser=False)
    reply = Reply(reasoning="call", calls=[call("get_weather", city="Oslo")])
    with MockVLLM([reply], profile=profile) as mock:
        body = httpx2.post(
            f"{mock.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "tools": TOOLS},
        ).json()
    choice = body["choices"][0]
    assert "tool_calls" not in choice["message"]  # 0.33 leaves an empty list out
    assert choice["finish_reason"] == "stop"


def chat_answer(profile: VLLMProfile, reply: Reply, **body: Any) -> Any:
    """The non-streamed answer of a mock imitating `profile` to a request about Oslo."""
    with MockVLLM([reply], profile=profile) as mock:
        return httpx2.post(
            f"{mock.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "Oslo?"}], "tools": TOOLS, **body},
        ).json()["choices"][0]


PREAMBLE_AND_FINAL = Reply(reasoning="Easy.", preamble="Let me check.", final="It is cold.")
TWO_CALLS = Reply(calls=[call("get_weather", city="Oslo"), call("get_weather", city="Bergen")])


@pytest.mark.parametrize(
    ("profile", "content"),
    [
        pytest.param(VLLM_0_33, "Let me check.\nIt is cold.", id="0.33"),
        pytest.param(VLLM_0_22, "It is cold.", id="0.22"),
    ],
)
def test_content_joins_preamble_and_final_answer_since_0_33(
    profile: VLLMProfile, content: str
) -> None:
    assert chat_answer(profile, PREAMBLE_AND_FINAL)["message"]["content"] == content


@pytest.mark.parametrize(
    ("profile", "cities", "finish"),
    [
        pytest.param(VLLM_0_33, [], "stop", id="0.33"),
        pytest.param(VLLM_0_22, ["Oslo", "Bergen"], "tool_calls", id="0.22"),
    ],
)
def test_tool_choice_none_drops_the_models_calls_since_0_33(
    profile: VLLMProfile, cities: list[str], finish: str
) -> None:
    choice = chat_answer(profile, TWO_CALLS, tool_choice="none")
    calls = choice["message"].get("tool_calls") or []
    assert [json.loads(c["function"]["arguments"])["city"] for c in calls] == cities
    assert choice["finish_reason"] == finish


@pytest.mark.parametrize(
    ("profile", "cities"),
    [
        pytest.param(VLLM_0_33, ["Oslo"], id="0.33"),
        pytest.param(VLLM_0_22, ["Oslo", "Bergen"], id="0.22"),
    ],
)
def test_parallel_tool_calls_false_keeps_the_first_call_since_0_33(
    profile: VLLMProfile, cities: list[str]
) -> None:
    calls = chat_answer(profile, TWO_CALLS, parallel_tool_calls=False)["message"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"])["city"] for c in calls] == cities


@pytest.mark.parametrize("profile", [VLLM_0_33, VLLM_0_22], ids=["0.33", "0.22"])
def test_parallel_tool_calls_false_streams_the_first_call_only(profile: VLLMProfile) -> None:
    with MockVLLM([TWO_CALLS], profile=profile) as mock:
        text = httpx2.post(
            f"{mock.url}/chat/completions",
            json={
                "messages": [{"role": "user", "content": "Oslo?"}],
                "tools": TOOLS,
                "parallel_tool_calls": False,
                "stream": True,
            },
        ).text
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: {")
    ]
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert {tc["index"] for tc in calls} == {0}
    assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"city": "Oslo"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("profile", "content", "finish"),
    [
        pytest.param(VLLM_0_33, "", "stop", id="0.33"),
        pytest.param(VLLM_0_22, None, "tool_calls", id="0.22"),
    ],
)
def test_named_tool_choice_finishes_with_stop_since_0_33(
    profile: VLLMProfile, content: str | None, finish: str
) -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    reply = Reply(calls=[call("get_weather", city="Oslo")])
    choice = chat_answer(profile, reply, tool_choice=named)
    assert choice["message"]["content"] == content
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["get_weather"]
    assert choice["finish_reason"] == finish
