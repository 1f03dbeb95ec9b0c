"""Retries of model calls: the backoff, the cause of each failure, and the wrapper that retries
an SDK model (here the SDK's `ScriptedModel`, with injected sleep, clock and jitter)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from agents import Model, ModelSettings
from agents.models.interface import ModelTracing
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from openai import AsyncOpenAI
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseIncompleteEvent,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseReasoningItem,
    ResponseTextDeltaEvent,
)
from openai.types.responses.response_reasoning_item import Content

from agent_runtime import BackendError, BackendUnavailableError, RunLimitError, Runtime
from agent_runtime.backends.checks import InvalidAnswerError
from agent_runtime.backends.client import EmptyResponseError
from agent_runtime.backends.retry import (
    RetryEvent,
    RetryPolicy,
    StreamCutError,
    api_error_message,
    reliable_model,
    retry_cause,
)
from agent_runtime.testing import Fault, MockVLLM, Reply, fault
from agent_runtime.tracing import RunTrace, TraceWriter, current_trace
from tests import helpers

URL = "http://127.0.0.1:8000/v1"
REQUEST = httpx2.Request("POST", f"{URL}/responses")
CALL: dict[str, Any] = {
    "system_instructions": None,
    "input": "hi",
    "model_settings": ModelSettings(),
    "tools": [],
    "output_schema": None,
    "handoffs": [],
    "tracing": ModelTracing.DISABLED,
    "previous_response_id": None,
    "conversation_id": None,
    "prompt": None,
}
ONLY_REASONING = "an answer with only reasoning: no message and no tool call"


def status_error(status: int, message: str) -> openai.APIStatusError:
    body = {"error": {"message": message, "type": "Error", "code": status}}
    response = httpx2.Response(status, request=REQUEST, json=body)
    return openai.APIStatusError(f"Error code: {status}", response=response, body=body)


def connection_error(cause: BaseException) -> openai.APIConnectionError:
    """An `APIConnectionError` raised while handling `cause`, as the openai client does."""
    try:
        raise cause
    except BaseException:
        try:
            raise openai.APIConnectionError(request=REQUEST) from cause
        except openai.APIConnectionError as exc:
            return exc


def broke_off() -> openai.APIConnectionError:
    return connection_error(httpx2.RemoteProtocolError("Server disconnected"))


def refused() -> openai.APIConnectionError:
    return connection_error(ConnectionRefusedError(111, "Connection refused"))


def reasoning(text: str = "Thinking.") -> ResponseReasoningItem:
    return ResponseReasoningItem(
        id="rs_1", type="reasoning", summary=[], content=[Content(text=text, type="reasoning_text")]
    )


def completed(output: list[Any], **fields: Any) -> ResponseCompletedEvent:
    response = Response(
        id="resp_1",
        created_at=0,
        model="openai/gpt-oss-20b",
        object="response",
        output=output,
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        **{"status": "completed", **fields},
    )
    return ResponseCompletedEvent(type="response.completed", response=response, sequence_number=9)


def delta(text: str, number: int = 0) -> ResponseTextDeltaEvent:
    return ResponseTextDeltaEvent(
        type="response.output_text.delta",
        delta=text,
        item_id="msg_1",
        output_index=0,
        content_index=0,
        logprobs=[],
        sequence_number=number,
    )


class Clock:
    """A monotonic clock that only moves when the retry layer sleeps (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def wrap(
    inner: Model,
    clock: Clock,
    *,
    rng: float = 0.5,
    backend: str = "local",
    **policy: Any,
) -> Model:
    settings = {"max_retries": 2, "initial_delay_s": 0.5, "max_delay_s": 10.0, **policy}
    return reliable_model(
        inner,
        RetryPolicy(**settings),
        backend=backend,
        url=URL,
        sleep=clock.sleep,
        clock=clock,
        rng=lambda: rng,
    )


async def events_of(model: Model) -> list[Any]:
    return [event async for event in model.stream_response(**CALL)]


def kinds(events: list[Any]) -> list[str]:
    return [
        f"retry {e.attempt}: {e.cause}" if isinstance(e, RetryEvent) else e.type for e in events
    ]


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- the backoff ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "rng", "expected"),
    [
        pytest.param(1, 0.5, 0.5, id="first-no-jitter"),
        pytest.param(2, 0.5, 1.0, id="doubles"),
        pytest.param(3, 0.5, 2.0, id="doubles-again"),
        pytest.param(6, 0.5, 10.0, id="capped"),
        pytest.param(1, 0.0, 0.25, id="lowest-jitter"),
        pytest.param(3, 0.0, 1.0, id="lowest-jitter-later"),
        pytest.param(6, 0.0, 5.0, id="lowest-jitter-capped"),
    ],
)
def test_delay(retry: int, rng: float, expected: float) -> None:
    policy = RetryPolicy(initial_delay_s=0.5, max_delay_s=10.0)
    assert policy.delay(retry, lambda: rng) == expected


@pytest.mark.parametrize("retry", [1, 2, 5, 30])
def test_delay_with_jitter_stays_within_half_and_one_and_a_half(retry: int) -> None:
    policy = RetryPolicy(initial_delay_s=0.5, max_delay_s=10.0)
    base = min(0.5 * 2 ** (retry - 1), 10.0)
    delays = [policy.delay(retry) for _ in range(500)]
    assert all(0.5 * base <= d < 1.5 * base for d in delays)
    assert len(set(delays)) > 1  # the default jitter is random


# -- why a failure is worth another attempt -----------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        pytest.param(StreamCutError("the stream ended"), "the stream ended", id="stream-cut"),
        pytest.param(EmptyResponseError("no output"), "no output", id="empty-answer"),
        pytest.param(TimeoutError(), "the model call timed out", id="timeout"),
        pytest.param(
            TimeoutError("no answer within 5 s"), "no answer within 5 s", id="timeout-msg"
        ),
        pytest.param(openai.APITimeoutError(REQUEST), "the request timed out", id="api-timeout"),
        pytest.param(refused(), "connection refused", id="refused"),
        pytest.param(broke_off(), "the answer broke off (Server disconnected)", id="broke-off"),
        pytest.param(
            connection_error(OSError("Network is unreachable")),
            "connection failed (Network is unreachable)",
            id="other-connection-failure",
        ),
        pytest.param(
            connection_error(OSError()),
            "connection failed (OSError)",
            id="silent-connection-failure",
        ),
        pytest.param(
            openai.APIConnectionError(request=REQUEST),
            "connection failed (Connection error.)",
            id="connection-failure-without-cause",
        ),
        *(
            pytest.param(status_error(status, "busy"), f"HTTP {status}: busy", id=str(status))
            for status in (429, 500, 502, 503, 504)
        ),
        *(
            pytest.param(status_error(status, "no"), None, id=str(status))
            for status in (400, 401, 404, 422, 501)
        ),
        pytest.param(
            openai.APIError("engine error", REQUEST, body={"code": 500, "message": "x"}),
            "an error in the stream: engine error",
            id="stream-error-500",
        ),
        pytest.param(
            openai.APIError("engine error", REQUEST, body={"code": 503}),
            "an error in the stream: engine error",
            id="stream-error-503",
        ),
        pytest.param(
            openai.APIError("bad", REQUEST, body={"code": 400}), None, id="stream-error-400"
        ),
        pytest.param(
            openai.APIError("bad", REQUEST, body={"code": "500"}), None, id="stream-error-str-code"
        ),
        pytest.param(openai.APIError("bad", REQUEST, body="text"), None, id="stream-error-text"),
        pytest.param(
            httpx2.RemoteProtocolError("peer closed connection"),
            "the answer broke off (peer closed connection)",
            id="httpx-broke-off",
        ),
        pytest.param(
            httpx2.ReadError("connection reset"),
            "the connection broke (connection reset)",
            id="httpx-read-error",
        ),
        pytest.param(httpx2.ReadError(""), "the connection broke (ReadError)", id="httpx-silent"),
        pytest.param(ValueError("a bug"), None, id="anything-else"),
        pytest.param(openai.OpenAIError("client"), None, id="client-error"),
        pytest.param(
            InvalidAnswerError("`/responses` answered HTTP 200 with an empty body"),
            "`/responses` answered HTTP 200 with an empty body",
            id="not-an-answer",
        ),
        pytest.param(
            connection_error(httpx2.LocalProtocolError("Illegal header value b'sk-x\\r'")),
            None,
            id="refused-locally",
        ),
    ],
)
def test_retry_cause(error: BaseException, cause: str | None) -> None:
    assert retry_cause(error) == cause


def test_a_cycle_in_the_exception_chain_ends_the_search() -> None:
    first, second = ValueError("first"), ValueError("second")
    first.__context__, second.__context__ = second, first
    assert retry_cause(first) is None


def test_a_broken_off_answer_deep_in_the_chain() -> None:
    try:
        try:
            raise httpx2.RemoteProtocolError("incomplete chunked read")
        except httpx2.RemoteProtocolError as exc:
            raise RuntimeError("while reading") from exc
    except RuntimeError as outer:
        error = outer
    assert retry_cause(error) == "the answer broke off (incomplete chunked read)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"error": {"message": "engine died", "code": 500}}, "engine died", id="envelope"
        ),
        pytest.param(
            {"object": "error", "message": "bad model", "code": 404}, "bad model", id="flat"
        ),
        pytest.param({"error": "overloaded"}, "overloaded", id="error-text"),
        pytest.param({"error": {"code": 500}}, "Error code: 500", id="no-message"),
        pytest.param("Bad Gateway", "Error code: 500", id="text-body"),
        pytest.param(None, "Error code: 500", id="no-body"),
    ],
)
def test_api_error_message(body: Any, message: str) -> None:
    response = httpx2.Response(500, request=REQUEST)
    error = openai.APIStatusError("Error code: 500", response=response, body=body)
    assert api_error_message(error) == message


# -- the causes of real failures, over HTTP ------------------------------------------------------


async def failure(url: str, *, api: str = "responses", stream: bool = False, **options: Any) -> Any:
    """The exception the openai client raises for one request to `url`."""
    async with AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0, **options) as client:
        with pytest.raises(Exception) as raised:
            if api == "responses":
                answer: Any = await client.responses.create(
                    model="openai/gpt-oss-20b", input="hi", stream=stream
                )
            else:
                answer = await client.chat.completions.create(
                    model="openai/gpt-oss-20b",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=stream,
                )
            if stream:
                async for _ in answer:
                    pass
    return raised.value


HARMONY_ERROR = "Unexpected token 6802 while expecting start token 200006"


@pytest.mark.parametrize(
    ("reply", "options", "cause"),
    [
        *(
            pytest.param(
                fault(status=status, message="engine restarting"),
                {},
                f"HTTP {status}: engine restarting",
                id=str(status),
            )
            for status in (429, 500, 502, 503, 504)
        ),
        *(
            pytest.param(fault(status=status, message="no"), {}, None, id=str(status))
            for status in (400, 401, 404, 501)
        ),
        pytest.param(
            fault(drop_connection=True),
            {},
            "the answer broke off (Server disconnected without sending a response.)",
            id="dropped",
        ),
        pytest.param(
            Reply(final="x", fault=Fault(cut_stream=10)),
            {},
            re.compile(
                r"the answer broke off \(peer closed connection without sending complete message "
                r"body \(received 10 bytes, expected \d+\)\)"
            ),
            id="body-cut",
        ),
        pytest.param(
            Reply(reasoning="a " * 20, final="x", fault=Fault(cut_stream=3)),
            {"stream": True},
            "the answer broke off (peer closed connection without sending complete message body "
            "(incomplete chunked read))",
            id="stream-cut",
        ),
        pytest.param(
            Reply(harmony="<|channel|>analysis<|message|>x<|end|>garbage"),
            {},
            f"HTTP 500: {HARMONY_ERROR}",
            id="harmony-error",
        ),
        pytest.param(
            Reply(harmony="<|channel|>analysis<|message|>x<|end|>garbage"),
            {"api": "chat", "stream": True},
            f"an error in the stream: {HARMONY_ERROR}",
            id="chat-stream-error",
        ),
        pytest.param(
            Reply(final="late", fault=Fault(delay_s=30)),
            {"timeout": 0.05},
            "the request timed out",
            id="client-timeout",
        ),
    ],
)
async def test_the_causes_of_real_failures(
    reply: Reply, options: dict[str, Any], cause: str | re.Pattern[str] | None
) -> None:
    async with MockVLLM([reply]) as mock:
        error = await failure(mock.url, **options)
    found = retry_cause(error)
    if isinstance(cause, re.Pattern):
        assert found is not None
        assert cause.fullmatch(found), found
    else:
        assert found == cause


async def test_the_cause_of_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await failure(f"http://127.0.0.1:{port}/v1")
    assert retry_cause(error) == "connection refused"


# -- the wrapper: non-streamed calls -----------------------------------------------------------


async def test_retries_until_an_answer(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    inner = ScriptedModel(
        [status_error(503, "busy"), status_error(429, "slow down"), [assistant_message("hi")]]
    )
    response = await wrap(inner, clock).get_response(**CALL)
    assert response.output == [assistant_message("hi")]
    assert clock.sleeps == [0.5, 1.0]
    assert len(inner.calls) == 3
    inner.assert_complete()
    assert caplog.record_tuples == [
        (
            "agent_runtime.backends.retry",
            logging.WARNING,
            f"model call to {URL} failed (HTTP 503: busy); retry 1 of 2 in 0.50 s",
        ),
        (
            "agent_runtime.backends.retry",
            logging.WARNING,
            f"model call to {URL} failed (HTTP 429: slow down); retry 2 of 2 in 1.00 s",
        ),
    ]


@pytest.fixture
def trace(tmp_path: Path) -> Iterator[RunTrace]:
    trace = RunTrace(TraceWriter(tmp_path / "trace.jsonl"))
    token = current_trace.set(trace)
    try:
        yield trace
    finally:
        current_trace.reset(token)
        trace.writer.close()


async def test_each_retry_is_traced(clock: Clock, trace: RunTrace, tmp_path: Path) -> None:
    inner = ScriptedModel([refused(), broke_off(), [assistant_message("hi")]])
    await wrap(inner, clock, rng=0.0).get_response(**CALL)
    trace.writer.close()
    records = [
        {k: v for k, v in record.items() if k not in ("time", "trace_id")}
        for record in map(json.loads, (tmp_path / "trace.jsonl").read_text().splitlines())
    ]
    assert records == [
        {
            "type": "retry",
            "backend": "local",
            "attempt": 1,
            "cause": "connection refused",
            "delay_s": 0.25,
        },
        {
            "type": "retry",
            "backend": "local",
            "attempt": 2,
            "cause": "the answer broke off (Server disconnected)",
            "delay_s": 0.5,
        },
    ]


async def test_gives_up_after_max_retries(clock: Clock) -> None:
    last = status_error(500, "engine died")
    inner = ScriptedModel([status_error(500, "engine died")] * 2 + [last])
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock).get_response(**CALL)
    assert type(error.value) is BackendError
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: HTTP 500: engine died (gave up "
        "after 3 attempts)"
    )
    assert error.value.url == URL
    assert error.value.__cause__ is last
    assert clock.sleeps == [0.5, 1.0]


async def test_no_retries(clock: Clock) -> None:
    inner = ScriptedModel([status_error(503, "busy")])
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock, max_retries=0).get_response(**CALL)
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: HTTP 503: busy (no retries: "
        "max_retries is 0)"
    )
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("budget", "attempts"),
    [
        pytest.param(1.0, "2 attempts", id="after-the-first-wait"),
        pytest.param(0.4, "1 attempt", id="before-any-wait"),
    ],
)
async def test_the_retry_budget_runs_out(clock: Clock, budget: float, attempts: str) -> None:
    inner = ScriptedModel([status_error(503, "busy")] * 3)
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock, budget_s=budget).get_response(**CALL)
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: HTTP 503: busy (the retry budget "
        f"of {budget:g} s ran out after {attempts})"
    )


async def test_slow_attempts_use_up_the_budget(clock: Clock) -> None:
    def slow(call: Any) -> Exception:
        clock.now += 5  # the attempt took 5 s
        return status_error(504, "gateway timeout")

    inner = ScriptedModel([ModelStep.respond(slow)])
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock, budget_s=3).get_response(**CALL)
    assert str(error.value).endswith("(the retry budget of 3 s ran out after 1 attempt)")
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        pytest.param(
            [refused()] * 3,
            "cannot reach the model server of backend `local` at {url} (connection refused; gave "
            "up after 3 attempts). Start one there (`vllm serve openai/gpt-oss-20b`) or point "
            "`base_url` (--base-url) at a running server.",
            id="refused",
        ),
        pytest.param(
            [httpx2.ConnectError("name or service not known")] * 3,
            "cannot reach the model server of backend `local` at {url} (the connection broke "
            "(name or service not known); gave up after 3 attempts). Start one there (`vllm "
            "serve openai/gpt-oss-20b`) or point `base_url` (--base-url) at a running server.",
            id="connect-error",
        ),
    ],
)
async def test_a_server_never_reached_is_unavailable(
    clock: Clock, errors: list[Exception], expected: str
) -> None:
    with pytest.raises(BackendUnavailableError) as error:
        await wrap(ScriptedModel(errors), clock).get_response(**CALL)
    assert str(error.value) == expected.format(url=URL)
    assert error.value.url == URL


async def test_an_answer_that_broke_off_came_from_a_server(clock: Clock) -> None:
    with pytest.raises(BackendError) as error:
        await wrap(ScriptedModel([broke_off()] * 3), clock).get_response(**CALL)
    assert type(error.value) is BackendError
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: the answer broke off (Server "
        "disconnected) (gave up after 3 attempts)"
    )


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(status_error(400, "bad request"), id="400"),
        pytest.param(status_error(501, "tool_choice not supported"), id="501"),
        pytest.param(ValueError("a bug"), id="anything-else"),
    ],
)
async def test_other_failures_are_raised_at_once(clock: Clock, error: Exception) -> None:
    inner = ScriptedModel([error, [assistant_message("never")]])
    with pytest.raises(type(error)) as raised:
        await wrap(inner, clock).get_response(**CALL)
    assert raised.value is error
    assert (len(inner.calls), clock.sleeps) == (1, [])


async def test_a_request_refused_locally_is_not_retried_nor_quoted(clock: Clock) -> None:
    secret = "sk-0123456789\r"
    error = connection_error(httpx2.LocalProtocolError(f"Illegal header value {secret!r}"))
    inner = ScriptedModel([error, [assistant_message("never")]])
    with pytest.raises(BackendError) as raised:
        await wrap(inner, clock).get_response(**CALL)
    assert str(raised.value) == (
        f"cannot send requests to the model server of backend `local` at {URL}: the HTTP "
        "client refused to send one (a header name or value, or the URL, has characters HTTP "
        "does not allow). Check the backend's api_key, headers and base_url."
    )
    assert raised.value.__suppress_context__
    assert (len(inner.calls), clock.sleeps) == (1, [])


async def test_an_attempt_past_its_time_limit_is_retried(clock: Clock) -> None:
    abandoned = []

    async def hang(call: Any) -> Any:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            abandoned.append(True)
            raise

    inner = ScriptedModel([ModelStep.respond(hang)] * 2)
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock, max_retries=1, attempt_timeout_s=0.01).get_response(**CALL)
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: no answer within timeout_s=0.01 s "
        "(gave up after 2 attempts)"
    )
    assert abandoned == [True, True]


@pytest.mark.parametrize(
    ("timeout_s", "cause"),
    [
        pytest.param(5.0, "no answer within timeout_s=5 s", id="with-a-limit"),
        pytest.param(None, "the model call timed out", id="without-a-limit"),
    ],
)
async def test_a_time_out_of_the_inner_model_is_retried(
    clock: Clock, timeout_s: float | None, cause: str
) -> None:
    inner = ScriptedModel([TimeoutError(), TimeoutError("read timed out")])
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock, max_retries=1, attempt_timeout_s=timeout_s).get_response(**CALL)
    assert str(error.value).endswith("failed: read timed out (gave up after 2 attempts)")
    assert isinstance(error.value.__cause__, TimeoutError)
    inner = ScriptedModel([TimeoutError()])
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock, max_retries=0, attempt_timeout_s=timeout_s).get_response(**CALL)
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: {cause} (no retries: max_retries "
        "is 0)"
    )


@pytest.mark.parametrize(
    "output",
    [
        pytest.param([reasoning()], id="only-reasoning"),
        pytest.param([reasoning(), assistant_message("")], id="empty-message"),
    ],
)
async def test_an_answer_with_only_reasoning_is_asked_again(
    clock: Clock, output: list[Any]
) -> None:
    inner = ScriptedModel([output, [reasoning(), assistant_message("hi")]])
    response = await wrap(inner, clock).get_response(**CALL)
    assert response.output == [reasoning(), assistant_message("hi")]
    assert clock.sleeps == [0.5]
    inner = ScriptedModel([output] * 3)
    with pytest.raises(BackendError) as error:
        await wrap(inner, clock).get_response(**CALL)
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: {ONLY_REASONING} (gave up after 3 "
        "attempts)"
    )


REFUSAL = ResponseOutputMessage(
    id="msg_1",
    type="message",
    role="assistant",
    status="completed",
    content=[ResponseOutputRefusal(type="refusal", refusal="I cannot.")],
)


@pytest.mark.parametrize(
    "output",
    [
        pytest.param([], id="no-output"),  # the client's to judge (client.py)
        pytest.param([reasoning(), function_call("f", {}, call_id="c1")], id="tool-call"),
        pytest.param([reasoning(), REFUSAL], id="refusal"),
    ],
)
async def test_answers_that_say_something_are_not_asked_again(
    clock: Clock, output: list[Any]
) -> None:
    inner = ScriptedModel([output])
    assert (await wrap(inner, clock).get_response(**CALL)).output == output
    assert clock.sleeps == []


async def test_the_inner_models_attributes_and_close() -> None:
    closed = []

    class Closing(ScriptedModel):
        async def close(self) -> None:
            closed.append(True)

    inner = Closing([[assistant_message("hi")]])
    model = wrap(inner, Clock())
    await model.get_response(**CALL)
    assert model.calls == inner.calls  # type: ignore[attr-defined]  # the inner model's
    assert model.remaining_steps == 0  # type: ignore[attr-defined]
    await model.close()
    assert closed == [True]


# -- the wrapper: streamed calls ----------------------------------------------------------------


def stream_of(
    *events: Any, then: BaseException | None = None, closed: list[int] | None = None
) -> ModelStep:
    """A stream that yields `events`, then raises `then` (or just ends)."""

    async def events_then(call: Any) -> AsyncIterator[Any]:
        try:
            for event in events:
                yield event
            if then is not None:
                raise then
        finally:
            if closed is not None:
                closed.append(len(closed) + 1)

    return ModelStep.stream(events_then)


ANSWER = [delta("hi"), completed([assistant_message("hi")])]


async def test_a_stream_that_ends_before_completed_is_retried(clock: Clock) -> None:
    closed: list[int] = []
    inner = ScriptedModel([stream_of(delta("h"), closed=closed), stream_of(*ANSWER, closed=closed)])
    events = await events_of(wrap(inner, clock))
    assert kinds(events) == [
        "response.output_text.delta",
        "retry 1: the stream ended before response.completed",
        "response.output_text.delta",
        "response.completed",
    ]
    assert events[-1] == ANSWER[-1]
    assert closed == [1, 2]  # each attempt's stream was closed
    assert clock.sleeps == [0.5]


async def test_a_stream_that_breaks_off_is_retried(clock: Clock) -> None:
    inner = ScriptedModel(
        [
            stream_of(delta("h", 0), delta("e", 1), then=httpx2.RemoteProtocolError("cut")),
            stream_of(*ANSWER),
        ]
    )
    events = await events_of(wrap(inner, clock))
    assert kinds(events) == [
        "response.output_text.delta",
        "response.output_text.delta",
        "retry 1: the answer broke off (cut)",
        "response.output_text.delta",
        "response.completed",
    ]


async def test_a_stream_that_fails_before_its_first_event_needs_no_retry_event(
    clock: Clock,
) -> None:
    inner = ScriptedModel(
        [status_error(503, "busy"), stream_of(then=refused()), stream_of(*ANSWER)]
    )
    events = await events_of(wrap(inner, clock))
    assert kinds(events) == ["response.output_text.delta", "response.completed"]
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("completion", "cause"),
    [
        pytest.param(
            completed([], status="incomplete", incomplete_details={"reason": "max_output_tokens"}),
            "an incomplete response with empty output (reason: max_output_tokens)",
            id="incomplete-empty",
        ),
        pytest.param(
            completed([], status="incomplete"),
            "an incomplete response with empty output (reason: unknown)",
            id="incomplete-empty-no-reason",
        ),
        pytest.param(completed([reasoning()]), ONLY_REASONING, id="only-reasoning"),
    ],
)
async def test_a_streamed_answer_without_output_is_asked_again(
    clock: Clock, completion: ResponseCompletedEvent, cause: str
) -> None:
    inner = ScriptedModel([stream_of(completion), stream_of(*ANSWER)])
    events = await events_of(wrap(inner, clock))
    # The failed attempt's completion was not passed on, so no partial answer to drop.
    assert kinds(events) == ["response.output_text.delta", "response.completed"]
    inner = ScriptedModel([stream_of(completion)])
    with pytest.raises(BackendError) as error:
        await events_of(wrap(inner, clock, max_retries=0))
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: {cause} (no retries: "
        "max_retries is 0)"
    )


def incomplete(output: list[Any], *, max_output_tokens: int = 64) -> ResponseIncompleteEvent:
    """vLLM 0.33's end of a stream cut at the output token limit."""
    response = completed(
        output,
        status="incomplete",
        incomplete_details={"reason": "max_output_tokens"},
        max_output_tokens=max_output_tokens,
    ).response
    return ResponseIncompleteEvent(type="response.incomplete", response=response, sequence_number=9)


CUT_FIX = (
    "raise `model_settings.max_tokens` of the agent (or `defaults.model_settings`) in "
    "agents.yaml, or lower its `reasoning_effort`."
)


@pytest.mark.parametrize(
    ("output", "what"),
    [
        pytest.param([reasoning(), assistant_message("hal")], "its answer", id="message"),
        pytest.param(
            [reasoning(), function_call("f", '{"city": "Pa', call_id="c1")],
            "a tool call",
            id="call",
        ),
    ],
)
@pytest.mark.parametrize("end", [incomplete, completed], ids=["incomplete-event", "completed"])
async def test_an_answer_cut_part_way_ends_the_run(
    clock: Clock, output: list[Any], what: str, end: Any
) -> None:
    """A half-written answer is not passed on as the answer, nor retried (it would be cut
    again): the error names the limit and how to raise it."""
    last = (
        end(output)
        if end is incomplete
        else completed(
            output,
            status="incomplete",
            incomplete_details={"reason": "max_output_tokens"},
            max_output_tokens=64,
        )
    )
    inner = ScriptedModel([stream_of(delta("hal"), last)])
    seen: list[Any] = []
    with pytest.raises(RunLimitError) as error:
        async for event in wrap(inner, clock).stream_response(**CALL):
            seen.append(event)
    assert kinds(seen) == ["response.output_text.delta"]
    assert str(error.value) == (
        "the model's answer was cut at the output token limit (max_output_tokens=64) in the "
        f"middle of {what}: {CUT_FIX}"
    )
    assert clock.sleeps == []


async def test_an_answer_cut_while_reasoning_is_asked_again(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    inner = ScriptedModel([stream_of(incomplete([reasoning()])), stream_of(*ANSWER)])
    events = await events_of(wrap(inner, clock))
    assert kinds(events) == ["response.output_text.delta", "response.completed"]
    assert [record.getMessage() for record in caplog.records] == [
        f"model call to {URL} failed (the answer was cut at the output token limit "
        "(max_output_tokens=64) while the model was still reasoning); retry 1 of 2 in 0.50 s"
    ]


async def test_answers_cut_while_reasoning_every_time_name_the_limit(clock: Clock) -> None:
    cut = [reasoning()]
    inner = ScriptedModel([stream_of(incomplete(cut))] * 3)
    with pytest.raises(RunLimitError) as error:
        await events_of(wrap(inner, clock))
    assert str(error.value) == (
        "the model used all of its output tokens (max_output_tokens=64) without answering, 3 "
        f"times: {CUT_FIX}"
    )
    assert len(clock.sleeps) == 2


async def test_a_stream_that_keeps_failing_gives_up_after_its_partial_events(
    clock: Clock,
) -> None:
    inner = ScriptedModel([stream_of(delta("h"), then=broke_off())] * 2)
    seen: list[Any] = []
    with pytest.raises(BackendError) as error:
        async for event in wrap(inner, clock, max_retries=1).stream_response(**CALL):
            seen.append(event)
    assert kinds(seen) == [
        "response.output_text.delta",
        "retry 1: the answer broke off (Server disconnected)",
        "response.output_text.delta",
    ]
    assert str(error.value) == (
        f"the model server of backend `local` at {URL} failed: the answer broke off (Server "
        "disconnected) (gave up after 2 attempts)"
    )


async def test_a_stream_that_stalls_past_its_time_limit_is_retried(clock: Clock) -> None:
    async def stalls(call: Any) -> AsyncIterator[Any]:
        yield delta("h")
        await asyncio.Event().wait()

    inner = ScriptedModel([ModelStep.stream(stalls), stream_of(*ANSWER)])
    events = await events_of(wrap(inner, clock, attempt_timeout_s=0.05))
    assert kinds(events) == [
        "response.output_text.delta",
        "retry 1: no answer within timeout_s=0.05 s",
        "response.output_text.delta",
        "response.completed",
    ]


async def test_a_stream_is_not_retried_on_other_failures(clock: Clock) -> None:
    problem = status_error(400, "bad request")
    inner = ScriptedModel([stream_of(delta("h"), then=problem)])
    seen: list[Any] = []
    with pytest.raises(openai.APIStatusError) as raised:
        async for event in wrap(inner, clock).stream_response(**CALL):
            seen.append(event)
    assert raised.value is problem
    assert seen == [delta("h")]


# -- through a runtime, over HTTP ---------------------------------------------------------------


async def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    project = helpers.PROJECT / "agents.yaml"
    async with Runtime.from_yaml(project, environ={"MOCK_URL": url}, trace_path=False) as rt:
        with pytest.raises(BackendUnavailableError) as error:
            await rt.run("weather-haiku", "hi")
    assert str(error.value) == (
        f"cannot reach the model server of backend `mock` at {url} (connection refused; no "
        "retries: max_retries is 0). Start one there (`vllm serve openai/gpt-oss-20b`) or "
        "point `base_url` (--base-url) at a running server."
    )
    assert error.value.url == url


async def test_server_errors(tmp_path: Path) -> None:
    project = helpers.PROJECT / "agents.yaml"
    async with (
        MockVLLM([fault(status=503, message="engine restarting")]) as mock,
        Runtime.from_yaml(
            project, environ={"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
        ) as runtime,
    ):
        with pytest.raises(BackendError) as error:
            await runtime.run("weather-haiku", "hi")
    assert str(error.value) == (
        f"the model server of backend `mock` at {mock.url} failed: HTTP 503: engine restarting "
        "(no retries: max_retries is 0)"
    )


async def test_an_answer_cut_mid_body_is_not_an_unreachable_server(tmp_path: Path) -> None:
    faults = helpers.PROJECT / "faults.yaml"
    async with (
        MockVLLM([Reply(final="x", fault=Fault(cut_stream=20))] * 3) as mock,
        Runtime.from_yaml(
            faults, environ={"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
        ) as runtime,
    ):
        with pytest.raises(BackendError) as error:
            await runtime.run("worker", "do it")
    assert not isinstance(error.value, BackendUnavailableError)
    assert re.fullmatch(
        f"the model server of backend `retrying` at {re.escape(mock.url)} failed: the answer "
        r"broke off \(peer closed connection without sending complete message body \(received "
        r"20 bytes, expected \d+\)\) \(gave up after 3 attempts\)",
        str(error.value),
    )
