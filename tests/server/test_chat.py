"""`POST /v1/chat/completions` through the official openai client (and raw HTTP for bodies the
client would not send)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from agent_runtime.testing import MockVLLM, Reply, call
from tests.server.ops_helpers import WAIT_S, Held, metric, post, served, state_of, until

HAIKU = "Rain on Tokyo\nUmbrellas bloom like flowers\nPuddles hold the sky"

AGENTS = "weather-haiku, toolbox, chat-haiku, triage, planner, extractor, patient"


def _client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


async def _create(url: str, **params: Any) -> Any:
    """One chat completion by a client closed afterwards (a stream: its chunks)."""
    async with _client(url) as client:
        answer = await client.chat.completions.create(**params)
        if params.get("stream"):
            return [chunk async for chunk in answer]
        return answer


def _tool_script() -> list[Reply]:
    return [
        Reply(reasoning="Look up Tokyo.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="It rains.", final=HAIKU),
    ]


async def test_an_agent_answers_a_chat_completion_with_reasoning_and_usage(
    tmp_path: Path,
) -> None:
    with MockVLLM(_tool_script()) as mock:
        async with served(mock.url, tmp_path) as (url, _):
            completion = await _create(
                url,
                model="weather-haiku",
                messages=[
                    {"role": "system", "content": "Mention the city."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."},
                    {"role": "user", "content": "Weather in Tokyo?"},
                ],
            )
    assert completion.object == "chat.completion"
    assert completion.model == "weather-haiku"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == HAIKU
    assert choice.message.tool_calls is None  # the agent's own calls are not the client's
    assert choice.message.model_extra == {"reasoning": "Look up Tokyo.\n\nIt rains."}
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.prompt_tokens > 0
    first = mock.model_requests[0].json
    assert first["instructions"] == "You only respond in haikus.\n\nMention the city."
    assert [(m["role"], m["content"]) for m in first["input"]] == [
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "Weather in Tokyo?"),
    ]


async def test_a_streamed_chat_completion_has_reasoning_and_content_deltas_and_usage(
    tmp_path: Path,
) -> None:
    with MockVLLM(_tool_script()) as mock:
        async with served(mock.url, tmp_path) as (url, _):
            chunks = await _create(
                url,
                model="weather-haiku",
                messages=[{"role": "user", "content": "Weather in Tokyo?"}],
                stream=True,
                stream_options={"include_usage": True},
            )
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert deltas[0].role == "assistant"
    content = "".join(delta.content or "" for delta in deltas)
    reasoning = "".join((delta.model_extra or {}).get("reasoning") or "" for delta in deltas)
    assert content == HAIKU
    assert reasoning == "Look up Tokyo.\n\nIt rains."
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] == "stop"
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_a_streamed_chat_completion_has_no_usage_chunk_unless_asked(
    tmp_path: Path,
) -> None:
    with MockVLLM([Reply(reasoning="Easy.", final="Done.")]) as mock:
        async with served(mock.url, tmp_path) as (url, _):
            chunks = await _create(
                url,
                model="weather-haiku",
                messages=[{"role": "user", "content": "Go"}],
                stream=True,
            )
    assert all(chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Done."


async def test_an_unknown_agent_is_404_listing_the_agents(tmp_path: Path) -> None:
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path) as (url, _):
            with pytest.raises(openai.NotFoundError) as caught:
                await _create(
                    url, model="weather-haik", messages=[{"role": "user", "content": "Hi"}]
                )
    assert caught.value.status_code == 404
    assert caught.value.body == {
        "message": "no agent named 'weather-haik'. Did you mean 'weather-haiku'? The models "
        f"here are the agents: {AGENTS}.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert mock.model_requests == []


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        pytest.param(
            {"model": "weather-haiku"},
            "messages",
            "invalid request body: messages: Field required.",
            id="missing-messages",
        ),
        pytest.param(
            {"model": "weather-haiku", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "invalid request body: messages[0].role: Input should be 'system', 'developer', "
            "'user', 'assistant', 'tool' or 'function'.",
            id="bad-role",
        ),
        pytest.param(
            {"model": "weather-haiku", "messages": [{"role": "assistant", "content": "x"}]},
            "messages[0].role",
            "the last message must be the user's prompt, not a 'assistant' message.",
            id="last-not-user",
        ),
        pytest.param(
            {
                "model": "weather-haiku",
                "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "tool", "content": "y", "tool_call_id": "c"},
                    {"role": "user", "content": "z"},
                ],
            },
            "messages[1].role",
            "messages with role 'tool' answer client tool calls, which this endpoint never "
            "makes: the agent runs its own tools. Use /v1/responses for client function tools.",
            id="tool-message",
        ),
        pytest.param(
            {
                "model": "weather-haiku",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
            "tools",
            "client tools are not taken on /v1/chat/completions: the agent runs its own tools. "
            "Send function tools to /v1/responses, which returns the agent's calls of them.",
            id="client-tools",
        ),
        pytest.param(
            {
                "model": "weather-haiku",
                "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
            },
            "messages[0].content[0]",
            "content parts of type 'image_url' are not supported; send text.",
            id="image-part",
        ),
        pytest.param(
            {
                "model": "weather-haiku",
                "messages": [{"role": "user", "content": "x"}],
                "reasoning_effort": "extreme",
            },
            "model_settings.reasoning_effort",
            "input should be 'low', 'medium' or 'high', got 'extreme'",
            id="bad-setting",
        ),
    ],
)
async def test_a_bad_body_is_400_naming_the_field(
    tmp_path: Path, body: dict[str, Any], param: str, message: str
) -> None:
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path) as (url, _):
            response = await post(url + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }
    }
    assert mock.model_requests == []


async def test_a_body_that_is_not_json_is_400(tmp_path: Path) -> None:
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path) as (url, _):
            response = await post(
                url + "/v1/chat/completions",
                content=b'{"model": ',
                headers={"Content-Type": "application/json"},
            )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("the request body is not valid JSON: ")
    assert error["type"] == "invalid_request_error"


async def test_a_failing_model_server_is_502_before_the_stream_starts(tmp_path: Path) -> None:
    async with served("http://127.0.0.1:9/v1", tmp_path) as (url, _):
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as caught:
                await _create(
                    url,
                    model="weather-haiku",
                    messages=[{"role": "user", "content": "Hi"}],
                    stream=stream,
                )
            assert caught.value.status_code == 502
            assert isinstance(caught.value.body, dict)
            assert caught.value.body["type"] == "server_error"
            assert caught.value.body["code"] == "backend_unavailable"
            assert "127.0.0.1:9" in caught.value.body["message"]


async def test_a_client_that_leaves_a_stream_cancels_its_run(tmp_path: Path) -> None:
    ended = threading.Event()
    outcomes: list[str] = []

    def watch(record: Any) -> None:
        if record["type"] == "run_end":
            outcomes.append(record["outcome"])
            ended.set()

    script = [Reply(reasoning="Wait for it.", calls=[call("hang")])]
    with MockVLLM(script) as mock:
        async with served(mock.url, tmp_path) as (url, app):
            state_of(app).runtime.observe(watch)
            async with (
                httpx2.AsyncClient(timeout=WAIT_S) as http,
                http.stream(
                    "POST",
                    url + "/v1/chat/completions",
                    json={
                        "model": "patient",
                        "messages": [{"role": "user", "content": "Go"}],
                        "stream": True,
                    },
                ) as response,
            ):
                assert response.status_code == 200
                lines = response.aiter_lines()
                first = await anext(lines)
                assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"] == {
                    "role": "assistant",
                    "content": "",
                }
            assert await asyncio.to_thread(ended.wait, WAIT_S)
            cancelled = 'agent_runtime_runs_total{agent="patient",outcome="cancelled"} 1.0'
            await until(lambda: metric(app, cancelled), "the run counted as cancelled")
    assert outcomes == ["cancelled"]


async def test_a_client_that_leaves_a_plain_completion_cancels_its_run(tmp_path: Path) -> None:
    held = Held(Reply(final="late"))
    ended = threading.Event()

    def watch(record: Any) -> None:
        if record["type"] == "run_end":
            ended.set()

    with MockVLLM([held.responder()]) as mock:
        async with served(mock.url, tmp_path) as (url, app):
            state_of(app).runtime.observe(watch)
            request = asyncio.create_task(
                _create(url, model="weather-haiku", messages=[{"role": "user", "content": "Hi"}])
            )
            await held.wait_arrived()
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            assert await asyncio.to_thread(ended.wait, WAIT_S)
            held.release.set()
            cancelled = 'agent_runtime_runs_total{agent="weather-haiku",outcome="cancelled"} 1.0'
            await until(lambda: metric(app, cancelled), "the run counted as cancelled")
