"""A model server that answers with what no API answers: HTML or an error envelope with status
200, an empty body, invalid JSON, a body too large to hold; and requests that cannot be sent
(a header value with a line break) or encoded (lone surrogates in the text).

Answers the mock cannot give come from `RawServer`, an HTTP server on 127.0.0.1 that writes
the bytes it is given and passes every other request on to a `MockVLLM`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from agents import ModelSettings
from agents.models.interface import ModelTracing
from pydantic import SecretStr

from agent_runtime import BackendError, Runtime
from agent_runtime.backends import Backend, create_backend
from agent_runtime.backends.checks import (
    DEFAULT_MAX_RESPONSE_BYTES,
    describe_answer,
    header_problem,
    valid_text,
)
from agent_runtime.config import BackendSpec
from agent_runtime.errors import BackendUnavailableError
from agent_runtime.testing import MockVLLM, Reply

ANSWER = "All done."
MIB = 1024 * 1024

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]
"""Writes a whole answer (status line, headers, body) itself."""


def http_answer(
    body: bytes, content_type: str | None = "application/json", status: str = "200 OK"
) -> bytes:
    """A whole HTTP/1.1 answer with `body`."""
    kind = f"Content-Type: {content_type}\r\n" if content_type else ""
    head = f"HTTP/1.1 {status}\r\n{kind}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


class RawServer:
    """Answers request N with `answers[N]` (bytes as they are, or a `Writer`); requests past
    the list go to `upstream` (a `MockVLLM`), whose answer is passed back."""

    def __init__(self, answers: list[bytes | Writer], upstream: MockVLLM | None = None) -> None:
        self.answers = answers
        self.upstream = upstream
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.wait_for(self._server.wait_closed(), 10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            line, *fields = head.strip().split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            number = len(self.requests)
            self.requests.append((line.split()[1], headers, body))
            answer = self.answers[number] if number < len(self.answers) else None
            if answer is None:
                answer = await self._forward(line.split()[1], headers, body)
            if isinstance(answer, bytes):
                writer.write(answer)
                await writer.drain()
            else:
                await answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _forward(self, path: str, headers: dict[str, str], body: bytes) -> bytes:
        assert self.upstream is not None, "no answer left for this request"
        target = self.upstream.url.removesuffix("/v1") + path
        async with httpx2.AsyncClient(timeout=30) as client:
            answer = await client.post(
                target, content=body, headers={"content-type": "application/json"}
            )
        return http_answer(answer.content, answer.headers.get("content-type"))


class Flood:
    """A `Writer` that sends `total` bytes of body after `head`, 1 MiB at a time, and counts
    what the client took before it hung up."""

    def __init__(self, head: bytes, line: bytes, total: int) -> None:
        self.head = head
        self.chunk = (line * (MIB // len(line) + 1))[:MIB]
        self.total = total
        self.sent = 0
        self.finished = asyncio.Event()

    async def __call__(self, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.head)
            while self.sent < self.total:
                writer.write(self.chunk)
                await writer.drain()
                self.sent += len(self.chunk)
        finally:
            self.finished.set()


CONFIG = """\
version: 1
tracing:
  path: {traces}
backends:
  raw:
    base_url: {url}
    model: openai/gpt-oss-20b
    max_retries: 2
    retry_delay_s: 0.01
    retry_max_delay_s: 0.05
    timeout_s: 30
  raw-chat:
    api: chat_completions
    base_url: {url}
    model: openai/gpt-oss-20b
    max_retries: 2
    retry_delay_s: 0.01
    retry_max_delay_s: 0.05
    timeout_s: 30
agents:
  worker:
    instructions: Answer.
    backend: raw
  chat-worker:
    instructions: Answer.
    backend: raw-chat
"""


def runtime(url: str, tmp_path: Path, **options: Any) -> Runtime:
    config = tmp_path / "agents.yaml"
    config.write_text(CONFIG.format(url=url, traces=tmp_path / "traces.jsonl"))
    return Runtime.from_yaml(config, **options)


def retries(tmp_path: Path) -> list[str]:
    trace = tmp_path / "traces.jsonl"
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    return [r["cause"] for r in records if r["type"] == "retry"]


# -- an HTTP 200 that is not an answer, not streamed ------------------------------------------

HTML = b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\x1b]0;x\x07</html>\n"
FIX = (
    r"Check that `base_url` is the address of vLLM's OpenAI-compatible API "
    r"\(http://HOST:PORT/v1\) and not of a proxy, a web page or another service"
)
NOT_ANSWERS = [
    pytest.param(
        "worker",
        http_answer(HTML, "text/html; charset=utf-8"),
        r"`/responses` answered HTTP 200 with a body that is not JSON \(text/html; "
        r"charset=utf-8, 81 bytes\): '<!DOCTYPE html>\\n<html><head><title>Welcome to "
        r"nginx!</title></head>\\x1b\]0;x\\x07</html>\\n'\. " + FIX,
        id="html",
    ),
    pytest.param(
        "worker",
        http_answer(b"", "application/json"),
        r"`/responses` answered HTTP 200 with an empty body \(application/json\)\. " + FIX,
        id="empty",
    ),
    pytest.param(
        "worker",
        http_answer(b"", None),
        r"`/responses` answered HTTP 200 with an empty body \(no content type\)\. " + FIX,
        id="empty-no-type",
    ),
    pytest.param(
        "worker",
        http_answer(b'{"error": {"message": "model overloaded", "code": 503}}'),
        r"`/responses` answered HTTP 200 with an error instead of an answer: 'model "
        r"overloaded' \(application/json, 55 bytes\): '\{\"error\": \{\"message\": \"model "
        r"overloaded\", \"code\": 503\}\}'",
        id="error-envelope",
    ),
    pytest.param(
        "worker",
        http_answer(b'{"id": "resp_1", "output": [tru'),
        r"`/responses` answered HTTP 200 with a body that is not valid JSON \(Expecting value: "
        r"line 1 column 29 \(char 28\)\) \(application/json, 31 bytes\): "
        r"'\{\"id\": \"resp_1\", \"output\": \[tru'\. " + FIX,
        id="invalid-json",
    ),
    pytest.param(
        "worker",
        http_answer(b'{"models": ["a"]}'),
        r"`/responses` answered HTTP 200 with JSON that is not a Responses API answer "
        r"\(application/json, 17 bytes\): '\{\"models\": \[\"a\"\]\}'\. " + FIX,
        id="other-json",
    ),
    pytest.param(
        "chat-worker",
        http_answer(b"x" * 500, "text/plain"),
        r"`/chat/completions` answered HTTP 200 with a body that is not JSON \(text/plain, 500 "
        r"bytes\): 'x{200}'…\. " + FIX,
        id="chat-long-text",
    ),
    pytest.param(
        "chat-worker",
        http_answer(b'{"object": "error", "message": "engine dead", "code": 500}'),
        r"`/chat/completions` answered HTTP 200 with an error instead of an answer: 'engine "
        r"dead' \(application/json, 58 bytes\): .*",
        id="chat-error-object",
    ),
]


@pytest.mark.parametrize(("agent", "answer", "cause"), NOT_ANSWERS)
async def test_a_200_that_is_not_an_answer_is_retried_then_explained(
    agent: str, answer: bytes, cause: str, tmp_path: Path
) -> None:
    async with RawServer([answer] * 3) as server, runtime(server.url, tmp_path) as rt:
        with pytest.raises(BackendError) as raised:
            await rt.run(agent, "go")
    backend = "raw" if agent == "worker" else "raw-chat"
    expected = (
        f"the model server of backend `{backend}` at {re.escape(server.url)} failed: "
        rf"{cause} \(gave up after 3 attempts\)"
    )
    assert re.fullmatch(expected, str(raised.value)), str(raised.value)
    assert not isinstance(raised.value, BackendUnavailableError)
    assert len(server.requests) == 3
    assert len(retries(tmp_path)) == 2


@pytest.mark.parametrize("agent", ["worker", "chat-worker"])
async def test_a_200_that_is_not_an_answer_then_an_answer(agent: str, tmp_path: Path) -> None:
    page = http_answer(HTML, "text/html")
    async with (
        MockVLLM([Reply(reasoning="Answer.", final=ANSWER)]) as mock,
        RawServer([page], upstream=mock) as server,
        runtime(server.url, tmp_path) as rt,
    ):
        result = await rt.run(agent, "go")
    assert result.final_output == ANSWER
    assert len(server.requests) == 2
    [cause] = retries(tmp_path)
    assert cause.startswith("`/")
    assert "answered HTTP 200 with a body that is not JSON (text/html, 81 bytes)" in cause


def test_describe_answer_shows_the_start_of_a_long_body_printably() -> None:
    body = ("\u202e" + "é" * 300).encode()
    text = describe_answer("/responses", 200, "text/html", body, expected="an answer")
    assert "(text/html, 603 bytes): '\\u202e" + "é" * 199 + "'…." in text


# -- a header HTTP cannot carry -----------------------------------------------------------------

SECRET = "sk-test-0123456789abcdef"
CRLF_FIX = (
    "a .env file saved with Windows (CRLF) line ends leaves one at the end of each value: "
    "convert it with `dos2unix`"
)


def call(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The arguments of one model call, as the SDK's run loop passes them."""
    return {
        "system_instructions": None,
        "input": "hi",
        "model_settings": ModelSettings(**settings or {}),
        "tools": [],
        "output_schema": None,
        "handoffs": [],
        "tracing": ModelTracing.DISABLED,
        "previous_response_id": None,
        "conversation_id": None,
        "prompt": None,
    }


@pytest.mark.parametrize(
    ("key", "settings", "problem"),
    [
        pytest.param(
            SECRET + "\r",
            None,
            f"the API key contains a carriage return (\\r) at its end, which HTTP headers "
            f"cannot carry ({CRLF_FIX})",
            id="key-cr",
        ),
        pytest.param(
            SECRET + "\n",
            None,
            "the API key contains a line feed (\\n) at its end, which HTTP headers cannot "
            f"carry ({CRLF_FIX})",
            id="key-lf",
        ),
        pytest.param(
            SECRET[:5] + "\x00" + SECRET[5:],
            None,
            "the API key contains a control character (U+0000) at character 6, which HTTP "
            "headers cannot carry",
            id="key-nul",
        ),
        pytest.param(
            SECRET + "\u00a0",
            None,
            "the API key contains a character that is not ASCII (U+00A0) at character 25, "
            "which HTTP headers cannot carry (a stray character copied with it: a "
            "non-breaking space, a typographic quote?)",
            id="key-nbsp",
        ),
        pytest.param(
            SECRET,
            {"extra_headers": {"X-Tenant": SECRET + "\r\n"}},
            "the value of header `X-Tenant` contains a carriage return (\\r) at character 25, "
            f"which HTTP headers cannot carry ({CRLF_FIX})",
            id="extra-header",
        ),
    ],
)
@pytest.mark.parametrize("api", ["responses", "chat_completions"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_header_that_cannot_be_sent_is_named_not_shown_and_not_retried(
    key: str,
    settings: dict[str, Any] | None,
    problem: str,
    api: Literal["responses", "chat_completions"],
    stream: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with MockVLLM([Reply(final=ANSWER)]) as mock:
        # Built around agents.yaml's checks (they strip keys and refuse such values), as a
        # key passed in code or a header the SDK adds would be.
        spec = BackendSpec(base_url=mock.url, model="openai/gpt-oss-20b", api=api)
        spec = spec.model_copy(update={"api_key": SecretStr(key)})
        backend = create_backend("local", spec)
        assert isinstance(backend, Backend)
        model = backend.model()
        try:
            with pytest.raises(BackendError) as raised:
                if stream:
                    async for _ in model.stream_response(**call(settings)):
                        pass
                else:
                    await model.get_response(**call(settings))
        finally:
            await backend.aclose()
    assert str(raised.value) == (
        f"cannot send requests to the model server of backend `local` at {mock.url}: "
        f"{problem}. No request was sent: fix the value where it is set (agents.yaml, a .env "
        "file, an environment variable, --api-key)."
    )
    assert len(mock.requests) == 0
    everything = [caplog.text]
    error: BaseException | None = raised.value
    while error is not None:  # nothing in the chain carries the value either
        everything.append(f"{error!r} {error}")
        error = error.__cause__ or error.__context__
    assert not [text for text in everything if SECRET in text or "Illegal header" in text]
    assert "retry" not in caplog.text


def test_header_problem() -> None:
    assert header_problem({"Authorization": "Bearer sk-abc", "X-A": "b\tc"}) is None
    assert header_problem({"X A": "b"}) == (
        "the header name 'X A' has characters header names cannot have (letters, digits and "
        "!#$%&'*+-.^_`|~ only)"
    )
    assert header_problem({"Authorization": "Basic a\rb"}) == (
        "the value of header `Authorization` contains a carriage return (\\r) at character 8, "
        f"which HTTP headers cannot carry ({CRLF_FIX})"
    )


# -- text that is not valid Unicode ------------------------------------------------------------


async def test_a_lone_surrogate_in_the_input_reaches_the_server_replaced(tmp_path: Path) -> None:
    async with MockVLLM([Reply(final=ANSWER)]) as mock:
        async with runtime(mock.url, tmp_path, trace_path=False) as rt:
            result = await rt.run("worker", "name: caf\udce9 \ud800 \ud83d\ude00.")
        [request] = mock.model_requests
    assert result.final_output == ANSWER
    body = json.loads(request.body)
    assert body["input"][-1]["content"] == "name: caf\ufffd \ufffd \U0001f600."


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
async def test_lone_surrogates_in_a_transcript_are_replaced(api: str, tmp_path: Path) -> None:
    output = "files: b'caf\udce9.txt'"
    items: list[Any] = [
        {"role": "user", "content": "List the files \ud800."},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "ls",
            "arguments": '{"dir": "\udcff"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": output},
    ]
    async with MockVLLM([Reply(final=ANSWER)]) as mock:
        async with runtime(mock.url, tmp_path, trace_path=False) as rt:
            agent = "worker" if api == "responses" else "chat-worker"
            result = await rt.run(agent, items)
        [request] = mock.model_requests
    assert result.final_output == ANSWER
    sent = request.body.decode()  # valid UTF-8: decoding would fail otherwise
    assert "\\ud800" not in sent.lower()
    assert [o.output for o in request.function_outputs] == ["files: b'caf\ufffd.txt'"]


def test_valid_text() -> None:
    assert valid_text({"a\ud800": ["\udcff", ("x", 1, None)], "b": 2.5}) == {
        "a\ufffd": ["\ufffd", ["x", 1, None]],
        "b": 2.5,
    }
    assert valid_text("\ud83d\ude00") == "\U0001f600"


# -- answers too large to hold ------------------------------------------------------------------

TOTAL = 3 * DEFAULT_MAX_RESPONSE_BYTES  # what the server would send if left to
HEAD_LENGTHLESS = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nConnection: close\r\n\r\n"
TOO_LARGE = (
    r"the model server of backend `raw(-chat)?` at {url} {what} than max_response_bytes=67108864 "
    r"\(64 MiB\); the call was stopped\. Raise the backend's `max_response_bytes` in "
    r"agents\.yaml if answers this large are expected; otherwise check what answers at its "
    r"base_url\."
)


@pytest.mark.parametrize(
    ("agent", "stream", "content_type", "line"),
    [
        pytest.param("worker", False, b"application/json", b'{"x": "' + b"y" * 1000, id="body"),
        pytest.param(
            "worker",
            True,
            b"text/event-stream",
            b": padding " + b"z" * 60000 + b"\n",
            id="sse-stream",
        ),
        pytest.param(
            "chat-worker",
            True,
            b"text/event-stream",
            b"data: " + b"z" * 60000,  # one endless line
            id="chat-endless-line",
        ),
    ],
)
async def test_an_answer_larger_than_the_limit_is_stopped(
    agent: str, stream: bool, content_type: bytes, line: bytes, tmp_path: Path
) -> None:
    flood = Flood(HEAD_LENGTHLESS % content_type, line, TOTAL)
    async with RawServer([flood] * 3) as server, runtime(server.url, tmp_path) as rt:
        with pytest.raises(BackendError) as raised:
            if stream:
                async for _ in rt.stream(agent, "go"):
                    pass
            else:
                await rt.run(agent, "go")
        await asyncio.wait_for(flood.finished.wait(), 30)
    pattern = TOO_LARGE.format(url=re.escape(server.url), what="sent an answer larger")
    assert re.fullmatch(pattern, str(raised.value)), str(raised.value)
    assert len(server.requests) == 1  # not retried
    # The client stopped reading at the limit: what the server got out is the limit plus
    # what the sockets buffer, far from all it meant to send.
    assert DEFAULT_MAX_RESPONSE_BYTES <= flood.sent < DEFAULT_MAX_RESPONSE_BYTES + 32 * MIB


async def test_a_content_length_above_the_limit_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    told = DEFAULT_MAX_RESPONSE_BYTES + 1
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {told}\r\n\r\n"
    ).encode()

    async def announce(writer: asyncio.StreamWriter) -> None:
        writer.write(head + b"{")
        await writer.drain()
        await asyncio.sleep(60)  # the body never comes: only the header can end the call

    async with RawServer([announce]) as server, runtime(server.url, tmp_path) as rt:
        with pytest.raises(BackendError) as raised:
            await rt.run("worker", "go")
    what = "announced an answer of 67,108,865 bytes, more"
    assert re.fullmatch(TOO_LARGE.format(url=re.escape(server.url), what=what), str(raised.value))
