"""The runtime's request path sends exactly what the official client sends (JSON-equal)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import ResponseReasoningItem
from openai.types.shared import Reasoning

from agent_runtime import RunLimitError
from agent_runtime.backends.client import RuntimeClient
from agent_runtime.testing import MockVLLM, Reply, call

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city — or a pôle.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "東京 or Zürich"},
            "units": {"enum": ["c", "f"], "type": "string"},
            "days": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["city", "units", "days"],
        "additionalProperties": False,
    },
    "strict": True,
}


def transcript(steps: int, output_size: int = 1000, text: str = "sunny") -> list[Any]:
    items: list[Any] = [{"role": "user", "content": "Weather in Tokyo, then Zürich? 🌤"}]
    for n in range(steps):
        items += [
            {
                "id": f"rs_{n:016x}",
                "summary": [],
                "type": "reasoning",
                "content": [{"text": f"Step {n}: call the tool. 考える", "type": "reasoning_text"}],
                "encrypted_content": None,
            },
            {
                "arguments": json.dumps({"city": "東京", "units": "c", "days": n}),
                "call_id": f"call_{n:016x}",
                "name": "get_weather",
                "type": "function_call",
                "id": f"fc_{n:016x}",
            },
            {
                "call_id": f"call_{n:016x}",
                "output": (text * (output_size // len(text) + 1))[:output_size],
                "type": "function_call_output",
            },
        ]
    return items


RESPONSES_CORPUS = [
    pytest.param({"model": "openai/gpt-oss-20b", "input": "hi"}, id="plain-string"),
    pytest.param(
        {
            "model": "openai/gpt-oss-20b",
            "include": [],
            "input": transcript(3),
            "instructions": "You only respond in haikus.",
            "tools": [TOOL],
        },
        id="tool-loop",
    ),
    pytest.param(
        {"model": "openai/gpt-oss-20b", "input": transcript(1, 100_000), "tools": [TOOL]},
        id="large-output",
    ),
    pytest.param(
        {
            "model": "openai/gpt-oss-20b",
            "input": [
                *transcript(1, text='é\u2028\x00"\\</script>'),
                {"role": "assistant", "content": [{"type": "output_text", "text": "ok ✓"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "more ☃"}]},
            ],
            "reasoning": Reasoning(effort="low"),
            "max_output_tokens": 512,
            "temperature": 0.2,
            "parallel_tool_calls": True,
            "metadata": {"team": "ops"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
            "extra_body": {"top_k": 20},
            "extra_headers": {"X-Trace": "abc"},
        },
        id="unicode-settings-and-extras",
    ),
    pytest.param(
        {
            "model": "openai/gpt-oss-20b",
            "input": [
                {"role": "user", "content": "hi"},
                ResponseReasoningItem(
                    id="rs_1",
                    summary=[],
                    type="reasoning",
                    content=[{"text": "thinking", "type": "reasoning_text"}],  # type: ignore[list-item]
                ),
            ],
        },
        id="typed-item",
    ),
    pytest.param(
        {
            "model": "openai/gpt-oss-20b",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                    ],
                }
            ],
        },
        id="image",
    ),
]

CHAT_CORPUS = [
    pytest.param(
        {"model": "openai/gpt-oss-20b", "messages": [{"role": "user", "content": "hi"}]},
        id="plain",
    ),
    pytest.param(
        {
            "model": "openai/gpt-oss-20b",
            "messages": [
                {"content": "You only respond in haikus.", "role": "system"},
                {"role": "user", "content": "Weather? 🌤"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "東京"}'},
                        }
                    ],
                    "reasoning": "Call the tool.",
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "x" * 50_000},
            ],
            "tools": [
                {"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}
            ],
            "stream_options": {"include_usage": True},
            "reasoning_effort": "low",
            "extra_body": {"top_k": 5},
        },
        id="tool-loop",
    ),
]


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM(default=Reply(final="ok")) as server:
        yield server


async def sent_bodies(mock: MockVLLM, send: Any, kwargs: dict[str, Any]) -> Any:
    before = len(mock.requests)
    try:
        result = await send(**kwargs)
        if kwargs.get("stream"):
            async for _ in result:
                pass
    except openai.APIError:
        pass  # refused by the mock (as by vLLM): the request body was still recorded
    (request,) = list(mock.requests)[before:]
    return request.json, request.headers


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("kwargs", RESPONSES_CORPUS)
async def test_responses_bodies_equal_the_official_clients(
    mock: MockVLLM, kwargs: dict[str, Any], stream: bool
) -> None:
    kwargs = {**kwargs, "stream": True} if stream else kwargs
    async with AsyncOpenAI(base_url=mock.url, api_key="k", max_retries=0) as official:
        expected, expected_headers = await sent_bodies(mock, official.responses.create, kwargs)
        ours = RuntimeClient(official)
        got, got_headers = await sent_bodies(mock, ours.responses.create, kwargs)
    assert got == expected
    assert got_headers == expected_headers  # content-length too: the same JSON, as long
    assert got_headers["authorization"] == "Bearer k"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("kwargs", CHAT_CORPUS)
async def test_chat_bodies_equal_the_official_clients(
    mock: MockVLLM, kwargs: dict[str, Any], stream: bool
) -> None:
    if not stream:
        kwargs = {k: v for k, v in kwargs.items() if k != "stream_options"}
    kwargs = {**kwargs, "stream": True} if stream else kwargs
    async with AsyncOpenAI(base_url=mock.url, api_key="k", max_retries=0) as official:
        expected, expected_headers = await sent_bodies(
            mock, official.chat.completions.create, kwargs
        )
        ours = RuntimeClient(official).chat.completions.create
        got, got_headers = await sent_bodies(mock, ours, kwargs)
    assert got == expected
    assert got_headers == expected_headers


async def test_answers_are_typed(mock: MockVLLM) -> None:
    async with AsyncOpenAI(base_url=mock.url, api_key="k") as official:
        client = RuntimeClient(official)
        response = await client.responses.create(model="openai/gpt-oss-20b", input="hi")
        completion = await client.chat.completions.create(
            model="openai/gpt-oss-20b", messages=[{"role": "user", "content": "hi"}]
        )
    assert type(response).__name__ == "Response"
    assert response.output_text == "ok"
    assert type(completion).__name__ == "ChatCompletion"
    assert completion.choices[0].message.content == "ok"


# -- the Responses model's request input -----------------------------------------------------------


def test_responses_model_passes_plain_items_through_uncopied() -> None:
    from agent_runtime.backends.client import request_input

    items = transcript(3)
    sent = request_input(items)
    assert sent == items
    assert sent is not items and all(a is b for a, b in zip(sent, items, strict=True))
    assert request_input(({"role": "user", "content": "hi"},)) is None


# -- answers cut at the output token limit ---------------------------------------------------------

REASONING = "one two three four five six"
CUT_FIX = (
    "raise `model_settings.max_tokens` of the agent (or `defaults.model_settings`) in "
    "agents.yaml, or lower its `reasoning_effort`."
)


async def create(client: RuntimeClient, api: str, limit: int, stream: bool) -> Any:
    """One model call cut at `limit` output tokens, its stream read to the end. Chat declares
    the tool: without tools, vLLM 0.33 drops the calls the model writes."""
    if api == "responses":
        return await client.responses.create(
            model="openai/gpt-oss-20b", input="hi", max_output_tokens=limit
        )
    answer = await client.chat.completions.create(
        model="openai/gpt-oss-20b",
        messages=[{"role": "user", "content": "hi"}],
        tools=[{"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}],
        max_tokens=limit,
        stream=stream,
    )
    if stream:
        async for _ in answer:
            pass
    return answer


APIS = [
    pytest.param("responses", False, id="responses"),
    pytest.param("chat", False, id="chat"),
    pytest.param("chat", True, id="chat-stream"),
]


@pytest.mark.parametrize(("api", "stream"), APIS)
async def test_an_answer_cut_while_reasoning_is_worth_asking_again(
    mock: MockVLLM, api: str, stream: bool
) -> None:
    from agent_runtime.backends.client import CutAnswerError

    mock.add(Reply(reasoning=REASONING, final="alpha beta gamma delta"))
    async with AsyncOpenAI(base_url=mock.url, api_key="k", max_retries=0) as official:
        with pytest.raises(CutAnswerError) as caught:
            await create(RuntimeClient(official), api, 8, stream)
    assert str(caught.value) == (
        "the answer was cut at the output token limit (max_output_tokens=8) while the model "
        "was still reasoning"
    )
    assert str(caught.value.limit_error(3)) == (
        "the model used all of its output tokens (max_output_tokens=8) without answering, "
        f"3 times: {CUT_FIX}"
    )


@pytest.mark.parametrize(("api", "stream"), APIS)
@pytest.mark.parametrize(
    ("reply", "limit", "what"),
    [
        pytest.param(
            Reply(reasoning=REASONING, final="alpha beta gamma delta"), 16, "its answer", id="text"
        ),
        pytest.param(
            Reply(reasoning=REASONING, calls=[call("get_weather", city="Paris, France")]),
            22,
            "a tool call",
            id="call",
        ),
    ],
)
async def test_an_answer_cut_part_way_is_a_run_limit(
    mock: MockVLLM, api: str, stream: bool, reply: Reply, limit: int, what: str
) -> None:
    mock.add(reply)
    async with AsyncOpenAI(base_url=mock.url, api_key="k", max_retries=0) as official:
        with pytest.raises(RunLimitError) as caught:
            await create(RuntimeClient(official), api, limit, stream)
    assert str(caught.value) == (
        f"the model's answer was cut at the output token limit (max_output_tokens={limit}) in "
        f"the middle of {what}: {CUT_FIX}"
    )
    assert len(mock.model_requests) == 1
