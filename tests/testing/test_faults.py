"""Fault injection, responders and script bookkeeping of the mock server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from agent_runtime import BackendError, Runtime
from agent_runtime.testing import (
    Fault,
    MockVLLM,
    RecordedRequest,
    Reply,
    ToolLoop,
    call,
    fault,
)

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def post(mock: MockVLLM, body: dict[str, Any], path: str = "/responses") -> httpx2.Response:
    return httpx2.post(f"{mock.url}{path}", json=body, timeout=10)


def test_status_fault_uses_vllm_error_envelope_then_script_continues() -> None:
    with MockVLLM([fault(status=503), Reply(final="recovered")]) as mock:
        first = post(mock, {"input": "x"})
        second = post(mock, {"input": "x"})
    assert first.status_code == 503
    assert first.json() == {
        "error": {
            "message": "Service unavailable: the engine is overloaded or restarting",
            "type": "ServiceUnavailableError",
            "param": None,
            "code": 503,
        }
    }
    assert second.json()["output"][0]["content"][0]["text"] == "recovered"
    assert [r.status for r in mock.model_requests] == [503, 200]


def test_openai_client_retries_through_503s() -> None:
    with (
        MockVLLM([fault(status=503), fault(status=503), Reply(final="third time")]) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=2) as client,
    ):
        response = client.responses.create(model="openai/gpt-oss-20b", input="x")
    assert response.output_text == "third time"
    assert len(mock.model_requests) == 3


def test_status_fault_with_custom_message() -> None:
    with (
        MockVLLM([fault(status=429, message="slow down")]) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0) as client,
        pytest.raises(openai.RateLimitError, match="slow down"),
    ):
        client.responses.create(model="openai/gpt-oss-20b", input="x")


def test_drop_connection_closes_without_a_response() -> None:
    with MockVLLM([fault(drop_connection=True)]) as mock:
        with pytest.raises(httpx2.RemoteProtocolError):
            post(mock, {"input": "x"})
        assert mock.model_requests[0].status == 0


@pytest.mark.parametrize("path", ["/responses", "/chat/completions"])
def test_cut_stream_aborts_after_n_events(path: str) -> None:
    body: dict[str, Any] = {"stream": True, "input": "x"}
    if path == "/chat/completions":
        body = {"stream": True, "messages": [{"role": "user", "content": "x"}]}
    reply = Reply(reasoning="long " * 20, final="never", fault=Fault(cut_stream=3))
    with MockVLLM([reply]) as mock:
        received = []
        with (
            pytest.raises(httpx2.RemoteProtocolError),
            httpx2.stream("POST", f"{mock.url}{path}", json=body) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("data: "):
                    received.append(line)
    assert len(received) == 3
    assert len(mock.model_requests[0].events) == 3
    assert "[DONE]" not in "".join(received)
    assert "response.completed" not in "".join(received)


def test_cut_stream_on_a_non_streaming_answer_truncates_the_body() -> None:
    reply = Reply(final="hello", fault=Fault(cut_stream=10))
    with (
        MockVLLM([reply]) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0) as client,
        pytest.raises(openai.APIConnectionError),
    ):
        client.responses.create(model="openai/gpt-oss-20b", input="x")


def test_streaming_client_sees_stream_end_without_completed() -> None:
    reply = Reply(reasoning="r " * 10, final="f", fault=Fault(cut_stream=4))
    with (
        MockVLLM([reply]) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0) as client,
    ):
        seen = []
        with pytest.raises(openai.APIConnectionError):
            for event in client.responses.create(
                model="openai/gpt-oss-20b", input="x", stream=True
            ):
                seen.append(event.type)
    assert "response.completed" not in seen
    assert seen[:2] == ["response.created", "response.in_progress"]


def test_invalid_arguments_fault_breaks_the_json() -> None:
    reply = Reply(calls=[call("get_weather", city="Tokyo")], fault=Fault(invalid_arguments=True))
    with MockVLLM([reply]) as mock:
        body = post(mock, {"input": "x", "tools": TOOLS}).json()
    arguments = body["output"][0]["arguments"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)


def test_raw_invalid_arguments_pass_through_responses() -> None:
    with MockVLLM([Reply(calls=[call("get_weather", '{"city": "Tok')])]) as mock:
        body = post(mock, {"input": "x", "tools": TOOLS}).json()
    assert body["output"][0]["arguments"] == '{"city": "Tok'


def test_empty_incomplete_responses_and_chat() -> None:
    with MockVLLM([fault(empty_incomplete=True), fault(empty_incomplete=True)]) as mock:
        responses = post(mock, {"input": "x"}).json()
        chat = post(
            mock, {"messages": [{"role": "user", "content": "x"}]}, "/chat/completions"
        ).json()
    assert responses["output"] == []
    assert responses["status"] == "incomplete"
    assert responses["incomplete_details"] == {"reason": "max_output_tokens"}
    message = chat["choices"][0]["message"]
    assert message["content"] is None
    assert message["reasoning"] is None
    assert chat["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("version", "terminal"),
    [("0.33", "response.incomplete"), ("0.22", "response.completed")],
)
def test_empty_incomplete_stream_ends_incomplete(version: str, terminal: str) -> None:
    with (
        MockVLLM([fault(empty_incomplete=True)], vllm_version=version) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY") as client,
    ):
        events = list(client.responses.create(model="openai/gpt-oss-20b", input="x", stream=True))
    assert [e.type for e in events] == ["response.created", "response.in_progress", terminal]
    assert events[-1].response.status == "incomplete"  # type: ignore[union-attr]
    assert events[-1].response.output == []  # type: ignore[union-attr]


async def test_delay_fault_sees_the_client_disconnect() -> None:
    async with (
        MockVLLM([Reply(final="late", fault=Fault(delay_s=30))]) as mock,
        AsyncOpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0, timeout=0.3) as client,
    ):
        with pytest.raises(openai.APITimeoutError):
            await client.responses.create(model="openai/gpt-oss-20b", input="x")
        for _ in range(200):
            if mock.model_requests[0].disconnected:
                break
            await asyncio.sleep(0.01)
    assert mock.model_requests[0].disconnected
    assert mock.model_requests[0].status is None


EXHAUSTED = (
    "MockVLLM: no scripted reply left for model request 1 (the script had 1 reply). Add "
    "replies to the script, or answer the calls after it with a tool loop: `agent-runtime mock "
    "--tool-loop`, or `MockVLLM(default=ToolLoop())` in Python."
)


def test_script_exhausted_is_a_clear_501_not_to_be_retried() -> None:
    with MockVLLM([Reply(final="only one")]) as mock:
        post(mock, {"input": "x"})
        response = post(mock, {"input": "x"})
        assert response.status_code == 501
        assert response.headers["x-should-retry"] == "false"
        assert response.json() == {
            "error": {
                "message": EXHAUSTED,
                "type": "ScriptExhaustedError",
                "param": None,
                "code": 501,
            }
        }
        with pytest.raises(AssertionError, match="1 model call"):
            mock.assert_script_consumed()


def test_the_openai_client_does_not_retry_an_exhausted_script() -> None:
    with (
        MockVLLM([Reply(final="only one")]) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=2) as client,
    ):
        client.responses.create(model="openai/gpt-oss-20b", input="x")
        with pytest.raises(openai.InternalServerError, match="no scripted reply left"):
            client.responses.create(model="openai/gpt-oss-20b", input="x")
    assert [r.status for r in mock.model_requests] == [200, 501]


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_the_runtime_does_not_retry_an_exhausted_script(tmp_path: Path, stream: bool) -> None:
    config = tmp_path / "agents.yaml"
    async with MockVLLM([Reply(final="only one")]) as mock:
        config.write_text(
            "version: 1\n"
            f"backends:\n  local: {{base_url: '{mock.url}', model: openai/gpt-oss-20b, "
            "max_retries: 2}\n"
            "agents:\n  a: {instructions: Hi., backend: local}\n"
        )
        async with Runtime.from_yaml(config, trace_path=tmp_path / "trace.jsonl") as runtime:
            assert (await runtime.run("a", "first")).final_output == "only one"
            with pytest.raises(BackendError) as error:
                if stream:
                    async for _ in runtime.stream("a", "second"):
                        pass
                else:
                    await runtime.run("a", "second")
    assert [r.status for r in mock.model_requests] == [200, 501]
    assert str(error.value).endswith(f"answered 501: {EXHAUSTED}")


def test_unused_replies_fail_assert_script_consumed() -> None:
    with MockVLLM([Reply(final="a"), Reply(final="b")]) as mock:
        post(mock, {"input": "x"})
        assert mock.remaining == 1
        with pytest.raises(AssertionError, match="1 of 2 replies unused"):
            mock.assert_script_consumed()


def test_responder_function_sees_the_parsed_request() -> None:
    seen: list[RecordedRequest] = []

    def echo(request: RecordedRequest) -> Reply:
        seen.append(request)
        return Reply(final=f"you said {request.user_texts[-1]}")

    with MockVLLM([echo]) as mock:
        body = post(mock, {"input": "bonjour"}).json()
    assert body["output"][0]["content"][0]["text"] == "you said bonjour"
    assert seen[0].json == {"input": "bonjour"}


async def test_async_responder_and_default() -> None:
    async def slow(request: RecordedRequest) -> Reply:
        await asyncio.sleep(0)
        return Reply(final="async")

    async with (
        MockVLLM([slow], default=Reply(final="default")) as mock,
        AsyncOpenAI(base_url=mock.url, api_key="EMPTY") as client,
    ):
        first = await client.responses.create(model="openai/gpt-oss-20b", input="x")
        second = await client.responses.create(model="openai/gpt-oss-20b", input="x")
    assert (first.output_text, second.output_text) == ("async", "default")
    assert [r.reply_index for r in mock.model_requests] == [0, None]


def test_responder_returning_garbage_is_a_500_that_names_the_problem() -> None:
    with MockVLLM([lambda request: "not a reply"]) as mock:  # type: ignore[list-item,return-value]
        response = post(mock, {"input": "x"})
    assert response.status_code == 500


async def test_tool_loop_serves_concurrent_runs() -> None:
    async with (
        MockVLLM(default=ToolLoop(steps=2)) as mock,
        AsyncOpenAI(base_url=mock.url, api_key="EMPTY") as client,
    ):

        async def run(n: int) -> str:
            history: list[Any] = [{"role": "user", "content": f"run {n}"}]
            while True:
                response = await client.responses.create(
                    model="openai/gpt-oss-20b", input=history, tools=TOOLS
                )
                calls = [i for i in response.output if i.type == "function_call"]
                history += [i.model_dump(exclude_none=True) for i in response.output]
                if not calls:
                    return response.output_text
                history += [
                    {"type": "function_call_output", "call_id": c.call_id, "output": f"out{n}"}
                    for c in calls
                ]

        answers = await asyncio.gather(*(run(n) for n in range(20)))
    assert answers == [f"Done: out{n}" for n in range(20)]
    assert len(mock.model_requests) == 60


def test_add_extends_the_script_while_running() -> None:
    with MockVLLM() as mock:
        mock.add(Reply(final="added"))
        assert post(mock, {"input": "x"}).json()["output"][0]["content"][0]["text"] == "added"
