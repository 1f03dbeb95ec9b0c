"""Recording through `Recorder` (a proxy in front of a real server; here a second mock) and
replaying the cassette with a fresh `MockVLLM`."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from openai import APIConnectionError, APIStatusError, BadRequestError, InternalServerError, OpenAI

from agent_runtime import Runtime
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.results import RunFinished
from agent_runtime.testing import Fault, MockVLLM, Recorder, Reply, call, fault, load_script

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
CHAT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {k: v for k, v in TOOLS[0].items() if k != "type"},
    }
]
SCRIPT = [
    Reply(
        reasoning="The user wants Tokyo's weather.\nCall the tool.",
        calls=[call("get_weather", city="Tokyo")],
    ),
    Reply(reasoning="Sunny. Write the haiku.", final="Tokyo wakes in light\nsun on every street"),
]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def upstream() -> Iterator[MockVLLM]:
    with MockVLLM(SCRIPT) as server:
        yield server


# -- a conversation over each API, whole and streamed -------------------------------------------


def responses_conversation(
    client: OpenAI, model: str, *, stream: bool, city: str = "Tokyo"
) -> list[str]:
    """Two model calls as an agent makes them; what each answered, as comparable text."""
    seen = []
    items: list[Any] = [{"role": "user", "content": "Weather in Tokyo?"}]
    for _ in range(2):
        if stream:
            with client.responses.stream(model=model, input=items, tools=TOOLS) as events:
                response = events.get_final_response()
        else:
            response = client.responses.create(model=model, input=items, tools=TOOLS)
        seen.append(json.dumps([_shown(item.model_dump()) for item in response.output]))
        for item in response.output:
            if item.type == "function_call":
                arguments = item.arguments.replace("Tokyo", city)
                items.append(
                    {
                        "type": "function_call",
                        "call_id": item.call_id,
                        "name": item.name,
                        "arguments": arguments,
                    }
                )
                items.append(
                    {"type": "function_call_output", "call_id": item.call_id, "output": "sunny"}
                )
    return seen


def chat_conversation(
    client: OpenAI, model: str, *, stream: bool, city: str = "Tokyo"
) -> list[str]:
    seen = []
    messages: list[Any] = [{"role": "user", "content": "Weather in Tokyo?"}]
    for _ in range(2):
        if stream:
            with client.chat.completions.stream(
                model=model, messages=messages, tools=CHAT_TOOLS
            ) as events:
                message = events.get_final_completion().choices[0].message
        else:
            message = (
                client.chat.completions.create(model=model, messages=messages, tools=CHAT_TOOLS)
                .choices[0]
                .message
            )
        calls = [(c.function.name, c.function.arguments) for c in message.tool_calls or ()]
        seen.append(json.dumps([message.content, getattr(message, "reasoning", None), calls]))
        if message.tool_calls:
            call_ = message.tool_calls[0]
            arguments = call_.function.arguments.replace("Tokyo", city)
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_.id,
                            "type": "function",
                            "function": {"name": call_.function.name, "arguments": arguments},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call_.id, "content": "sunny"})
    return seen


def _shown(item: dict[str, Any]) -> dict[str, Any]:
    """An output item without its ids, which differ between servers."""
    return {k: v for k, v in item.items() if k not in ("id", "call_id")}


CONVERSATIONS = [
    pytest.param(responses_conversation, False, "/v1/responses", id="responses"),
    pytest.param(responses_conversation, True, "/v1/responses", id="responses-stream"),
    pytest.param(chat_conversation, False, "/v1/chat/completions", id="chat"),
    pytest.param(chat_conversation, True, "/v1/chat/completions", id="chat-stream"),
]


@pytest.mark.parametrize(("conversation", "stream", "path"), CONVERSATIONS)
def test_a_recorded_conversation_replays_and_a_changed_one_fails(
    upstream: MockVLLM,
    tmp_path: Path,
    conversation: Callable[..., list[str]],
    stream: bool,
    path: str,
) -> None:
    with Recorder(upstream.url) as recorder:
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=0)
        recorded = conversation(client, upstream.model, stream=stream)
    upstream.assert_script_consumed()
    assert [r.stream for r in upstream.model_requests] == [stream, stream]
    assert recorder.failures == []
    assert recorder.entries == [
        {
            "request": {
                "user": ["Weather in Tokyo?"],
                "function_calls": [],
                "tools": ["get_weather"],
            },
            "reasoning": "The user wants Tokyo's weather.\nCall the tool.",
            "calls": [{"name": "get_weather", "arguments": {"city": "Tokyo"}}],
        },
        {
            "request": {
                "user": ["Weather in Tokyo?"],
                "function_calls": [{"name": "get_weather", "arguments": {"city": "Tokyo"}}],
                "tools": ["get_weather"],
            },
            "reasoning": "Sunny. Write the haiku.",
            "final": "Tokyo wakes in light\nsun on every street",
        },
    ]
    cassette = recorder.save(tmp_path / "weather.yaml")
    assert (
        "  reasoning: |-\n    The user wants Tokyo's weather.\n    Call the tool.\n"
        in cassette.read_text()
    )

    with MockVLLM(cassette) as replay:
        client = OpenAI(base_url=replay.url, api_key="EMPTY", max_retries=0)
        assert conversation(client, replay.model, stream=stream) == recorded
    replay.assert_script_consumed()
    replay.assert_no_divergence()

    with MockVLLM(cassette) as replay:
        client = OpenAI(base_url=replay.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(BadRequestError) as error:
            conversation(client, replay.model, stream=stream, city="Paris")
    difference = (
        f"model request 1 (script entry 1), POST {path}, differs from the script:\n"
        '  function call 0 `get_weather` in the history has other arguments: `city` is "Paris", '
        'expected "Tokyo"'
    )
    assert replay.divergences == [difference]
    assert error.value.message == f"Error code: 400 - {difference}"


def test_answers_pass_through_unchanged(upstream: MockVLLM) -> None:
    with Recorder(upstream.url) as recorder:
        direct = httpx2.get(f"{upstream.url}/models").json()
        proxied = httpx2.get(f"{recorder.url}/models")
        answer = httpx2.post(
            f"{recorder.url}/responses", json={"model": upstream.model, "input": "Hi"}
        )
        missing = httpx2.get(f"{recorder.url.removesuffix('/v1')}/health")
    assert proxied.status_code == 200
    assert [m["id"] for m in proxied.json()["data"]] == [m["id"] for m in direct["data"]]
    assert answer.json() == upstream.model_requests[0].response
    assert answer.headers["content-type"] == "application/json"
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found: the recorder forwards /v1/* only, not /health"}
    assert len(recorder.entries) == 1  # /v1/models is forwarded but is no model call


# -- errors ----------------------------------------------------------------------------------------


def test_an_upstream_error_is_recorded_as_a_fault_and_replayed(tmp_path: Path) -> None:
    with (
        MockVLLM([fault(status=503, message="engine restarting")]) as upstream,
        Recorder(upstream.url) as recorder,
    ):
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(InternalServerError) as recorded:
            client.responses.create(model=upstream.model, input="Hi")
    assert recorder.entries == [
        {
            "request": {"user": ["Hi"], "function_calls": [], "tools": []},
            "fault": {"status": 503, "message": "engine restarting"},
        }
    ]
    cassette = recorder.save(tmp_path / "fault.yaml")
    with MockVLLM(cassette) as replay:
        client = OpenAI(base_url=replay.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(InternalServerError) as replayed:
            client.responses.create(model=replay.model, input="Hi")
    assert replayed.value.status_code == recorded.value.status_code == 503
    assert replayed.value.body == recorded.value.body


def test_an_upstream_that_is_down_gets_a_clear_error() -> None:
    port = closed_port()
    with Recorder(f"http://127.0.0.1:{port}/v1") as recorder:
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=3)
        with pytest.raises(APIStatusError) as error:
            client.responses.create(model="openai/gpt-oss-20b", input="Hi")
    message = (
        f"Recorder: cannot reach the upstream server http://127.0.0.1:{port}/v1: connection "
        "refused. Check that vLLM is running there and that the upstream URL is its OpenAI base "
        "URL (ending in /v1)."
    )
    assert error.value.status_code == 502
    assert error.value.body == {
        "message": message,
        "type": "UpstreamUnreachableError",
        "param": None,
        "code": 502,
    }
    assert recorder.failures == [message]  # asked once: the answer says not to retry
    assert recorder.entries == []


def test_an_upstream_that_does_not_answer_in_time_gets_a_clear_error() -> None:
    with (
        MockVLLM([Reply(final="Late.", fault=Fault(delay_s=30))]) as upstream,
        Recorder(upstream.url, timeout_s=0.2) as recorder,
    ):
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(APIStatusError) as error:
            client.responses.create(model=upstream.model, input="Hi")
    message = f"Recorder: the upstream server {upstream.url} did not answer: "
    assert error.value.status_code == 502
    assert str(error.value.body["message"]).startswith(message)  # type: ignore[index]
    assert recorder.failures == [error.value.body["message"]]  # type: ignore[index]
    assert recorder.entries == []


def test_a_cassette_that_cannot_be_written_is_reported(upstream: MockVLLM, tmp_path: Path) -> None:
    path = tmp_path / "no-such-folder" / "c.yaml"
    with Recorder(upstream.url, path=path) as recorder:
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=0)
        client.responses.create(model=upstream.model, input="Hi")
    assert len(recorder.entries) == 1  # still kept, and can be saved elsewhere
    assert recorder.failures == [
        f"cannot write the cassette {str(path)!r}: No such file or directory"
    ]


def test_a_dropped_connection_is_recorded_and_replayed(tmp_path: Path) -> None:
    with (
        MockVLLM([fault(drop_connection=True)]) as upstream,
        Recorder(upstream.url) as recorder,
    ):
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(APIConnectionError):
            client.responses.create(model=upstream.model, input="Hi")
    assert recorder.entries == [
        {
            "request": {"user": ["Hi"], "function_calls": [], "tools": []},
            "fault": {"drop_connection": True},
        }
    ]
    with MockVLLM(recorder.save(tmp_path / "dropped.yaml")) as replay:
        client = OpenAI(base_url=replay.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(APIConnectionError):
            client.responses.create(model=replay.model, input="Hi")
    replay.assert_script_consumed()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_an_answer_that_breaks_off_is_not_recorded(stream: bool) -> None:
    script = [Reply(reasoning="Think.", final="A long answer", fault=Fault(cut_stream=3))]
    with MockVLLM(script) as upstream, Recorder(upstream.url) as recorder:
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(APIConnectionError):
            if stream:
                with client.responses.stream(model=upstream.model, input="Hi") as events:
                    events.get_final_response()
            else:
                client.responses.create(model=upstream.model, input="Hi")
    assert recorder.entries == []
    assert len(recorder.failures) == 1
    assert recorder.failures[0].startswith(
        f"the answer of {upstream.url} to POST /v1/responses broke off: "
    )
    assert recorder.failures[0].endswith("; not recorded")


async def run_weather(runtime: Runtime, *, stream: bool) -> Any:
    """Ask the weather agent, with `run` or through `stream`; the final output."""
    if not stream:
        return (await runtime.run("weather", "Weather in Tokyo?")).final_output
    async for event in runtime.stream("weather", "Weather in Tokyo?"):
        if isinstance(event, RunFinished):
            return event.result.final_output
    raise AssertionError("the stream ended without RunFinished")


@pytest.mark.parametrize(
    ("api", "stream"),
    [
        pytest.param("responses", False, id="responses"),
        pytest.param("responses", True, id="responses-stream"),
        pytest.param("chat_completions", False, id="chat"),
        pytest.param("chat_completions", True, id="chat-stream"),
    ],
)
async def test_a_run_replays_and_fails_once_its_agent_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str, stream: bool
) -> None:
    from tests.testing.test_cassette import write_project

    monkeypatch.syspath_prepend(str(tmp_path))
    config = write_project(tmp_path, api=api)
    async with (
        MockVLLM(SCRIPT) as upstream,
        Recorder(upstream.url) as recorder,
        Runtime.from_yaml(config, environ={"MOCK_URL": recorder.url}) as runtime,
    ):
        recorded = await run_weather(runtime, stream=stream)
    assert [r.stream for r in upstream.model_requests] == [stream, stream]
    cassette = recorder.save(tmp_path / "run.yaml")
    async with (
        MockVLLM(cassette) as replay,
        Runtime.from_yaml(config, environ={"MOCK_URL": replay.url}) as runtime,
    ):
        replayed = await run_weather(runtime, stream=stream)
    assert replayed == recorded == "Tokyo wakes in light\nsun on every street"
    replay.assert_script_consumed()
    replay.assert_no_divergence()

    # The agent now offers a second tool: the replay stops at the first call.
    text = config.read_text()
    config.write_text(text.replace("tools: [get_weather]", "tools: [get_weather, get_time]"))
    async with (
        MockVLLM(cassette) as replay,
        Runtime.from_yaml(config, environ={"MOCK_URL": replay.url}) as runtime,
    ):
        with pytest.raises(AgentRuntimeError) as error:
            await run_weather(runtime, stream=stream)
    path = "/v1/responses" if api == "responses" else "/v1/chat/completions"
    difference = (
        f"model request 0 (script entry 0), POST {path}, differs from the script:\n"
        "  tools offered differ (new `get_time`): expected [get_weather], "
        "got [get_weather, get_time]"
    )
    assert replay.divergences == [difference]
    assert difference in str(error.value)


async def test_a_tool_whose_parameters_changed_fails_on_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.testing.test_cassette import WEATHER_TOOL, write_project

    monkeypatch.syspath_prepend(str(tmp_path / "before"))
    monkeypatch.syspath_prepend(str(tmp_path / "after"))
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = write_project(tmp_path / "before")
    async with (
        MockVLLM(SCRIPT) as upstream,
        Recorder(upstream.url) as recorder,
        Runtime.from_yaml(before, environ={"MOCK_URL": recorder.url}) as runtime,
    ):
        await runtime.run("weather", "Weather in Tokyo?")
    cassette = recorder.save(tmp_path / "run.yaml")
    # `city` became `location`: the recorded call of get_weather no longer fits the tool.
    after = write_project(tmp_path / "after", tools=WEATHER_TOOL.replace("city", "location"))
    async with (
        MockVLLM(cassette) as replay,
        Runtime.from_yaml(after, environ={"MOCK_URL": replay.url}) as runtime,
    ):
        with pytest.raises(AgentRuntimeError):
            await runtime.run("weather", "Weather in Tokyo?")
    assert replay.divergences == [
        "model request 0 (script entry 0), POST /v1/responses, differs from the script:\n"
        '  the scripted reply calls `get_weather` with {"city": "Tokyo"}, which the '
        "`get_weather` tool offered now refuses: 'location' is a required property"
    ]


# -- keys and files ------------------------------------------------------------------------------


def test_keys_are_forwarded_or_replaced_and_never_written(tmp_path: Path) -> None:
    script = [Reply(final="one"), Reply(final="two")]
    with MockVLLM(script, api_key="sk-upstream-key") as upstream:
        with Recorder(upstream.url, path=tmp_path / "c.yaml") as recorder:
            client = OpenAI(base_url=recorder.url, api_key="sk-upstream-key", max_retries=0)
            assert client.responses.create(model=upstream.model, input="a").output_text == "one"
        with Recorder(
            upstream.url, api_key="sk-upstream-key", path=tmp_path / "d.yaml"
        ) as recorder:
            client = OpenAI(base_url=recorder.url, api_key="sk-client-key", max_retries=0)
            assert client.responses.create(model=upstream.model, input="b").output_text == "two"
    assert [r.headers["authorization"] for r in upstream.model_requests] == [
        "Bearer sk-upstream-key"
    ] * 2
    for name in ("c.yaml", "d.yaml"):
        text = (tmp_path / name).read_text()
        assert "sk-" not in text
        assert "uthorization" not in text


def test_the_cassette_is_saved_after_every_call(upstream: MockVLLM, tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    with Recorder(upstream.url, path=path) as recorder:
        client = OpenAI(base_url=recorder.url, api_key="EMPTY", max_retries=0)
        assert not path.exists()
        client.responses.create(model=upstream.model, input="Weather in Tokyo?", tools=TOOLS)
        assert len(load_script(path)) == 1
        with client.responses.stream(model=upstream.model, input="Weather?", tools=TOOLS) as events:
            events.get_final_response()
        document = yaml.safe_load(path.read_text())
    assert [entry["request"]["user"] for entry in document] == [["Weather in Tokyo?"], ["Weather?"]]


def test_bad_arguments() -> None:
    with pytest.raises(
        ValueError,
        match=r"^the upstream must be an http\(s\) base URL like http://gpu-box:8000/v1, "
        r"not 'gpu:8000'$",
    ):
        Recorder("gpu:8000")
    with pytest.raises(ValueError, match="not 'ftp://\\*\\*\\*@host/v1'"):
        Recorder("ftp://user:secret@host/v1")
    with pytest.raises(ValueError, match="loopback only"):
        Recorder("http://127.0.0.1:8000/v1", host="0.0.0.0")
    with pytest.raises(RuntimeError, match="not running"):
        _ = Recorder("http://127.0.0.1:8000/v1").url
