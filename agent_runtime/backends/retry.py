"""Retries of model calls: exponential backoff with jitter, a time budget, a cause for each.

`reliable_model` wraps an SDK model. A call is retried on connection errors, time-outs, HTTP 429
and 500/502/503/504, a stream that ends before `response.completed`, an answer with no output,
and an HTTP 200 whose body is not an answer (HTML, empty, invalid JSON, an error envelope);
never on 400/401/404/501, a request the HTTP client refuses to send (a header value with a line
break), an answer larger than `max_response_bytes`, or anything else. Each retry is logged and
traced with its cause; when the retries or the budget run out, `BackendUnavailableError` /
`BackendError` name the server's URL and the last cause. Tools are never re-run: only the model
call is repeated.

A streamed call that fails after it began yields a `RetryEvent` before the next attempt, so
whoever shows the stream can drop the partial answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from agent_runtime.backends.checks import (
    InvalidAnswerError,
    RequestHeaderError,
    readable_arguments,
)
from agent_runtime.backends.client import (
    CutAnswerError,
    EmptyResponseError,
    check_response,
    says_something,
)
from agent_runtime.errors import BackendError, BackendUnavailableError
from agent_runtime.redact import own_logger
from agent_runtime.tracing import current_trace

if TYPE_CHECKING:
    from agents import Model, ModelResponse

__all__ = [
    "RETRY_STATUSES",
    "RetryEvent",
    "RetryPolicy",
    "StreamCutError",
    "reliable_model",
    "retry_cause",
]

logger = own_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class StreamCutError(Exception):
    """A streamed answer ended before `response.completed` (vLLM aborts on harmony errors)."""


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Yielded into a model stream when an attempt failed after it began; a new one follows."""

    attempt: int
    cause: str
    type: Literal["agent_runtime.retry"] = "agent_runtime.retry"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a backend's model calls are retried (from its agents.yaml settings)."""

    max_retries: int = 2
    budget_s: float = 120.0
    initial_delay_s: float = 0.5
    max_delay_s: float = 10.0
    attempt_timeout_s: float | None = None

    def delay(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1-based): doubling, with ±50 % jitter."""
        base = min(self.initial_delay_s * float(2 ** (retry - 1)), self.max_delay_s)
        return base * (0.5 + rng())


def _root(exc: BaseException) -> BaseException:
    seen = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen[-1]


def _in_chain(exc: BaseException, name: str) -> bool:
    """Whether an exception of class `name` is `exc` or one of its first causes."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return False
        if type(current).__name__ == name:
            return True
        current = current.__cause__ or current.__context__
    return False


def _broke_off(exc: BaseException) -> bool:
    """The server closed the connection in the middle of an answer (httpx2/httpcore say so)."""
    return _in_chain(exc, "RemoteProtocolError")


def _refused_locally(exc: BaseException) -> bool:
    """The HTTP client refused to send the request (h11's "Illegal header value"): nothing
    reached the server, and the exception's text may hold a header's value."""
    return _in_chain(exc, "LocalProtocolError")


def _check_answer(output: Sequence[Any]) -> None:
    """Raise `EmptyResponseError` for an answer with reasoning but no message and no tool call
    (the SDK would end the run with an empty final output); asking again usually helps."""
    if not output or any(says_something(item) for item in output):
        return  # an empty output is the client's to judge (see client.py)
    raise EmptyResponseError("an answer with only reasoning: no message and no tool call")


def retry_cause(exc: BaseException) -> str | None:
    """Why `exc` is worth another attempt, in a few words; None when it is not."""
    import httpx2
    import openai

    if isinstance(exc, StreamCutError | EmptyResponseError | InvalidAnswerError):
        return str(exc)
    if _refused_locally(exc):  # the same request would be refused again
        return None
    if isinstance(exc, TimeoutError):
        return str(exc) or "the model call timed out"
    if isinstance(exc, openai.APITimeoutError):
        return "the request timed out"
    if isinstance(exc, openai.APIConnectionError):
        root = _root(exc)
        if isinstance(root, ConnectionRefusedError):
            return "connection refused"
        if _broke_off(exc):
            return f"the answer broke off ({root})"
        return f"connection failed ({str(root) or type(root).__name__})"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code in RETRY_STATUSES:
            return f"HTTP {exc.status_code}: {api_error_message(exc)}"
        return None
    if isinstance(exc, openai.APIError):
        # An error reported inside a stream (vLLM's chat streams do so): 5xx are transient.
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code")
        if isinstance(code, int) and code >= 500:
            return f"an error in the stream: {exc.message}"
        return None
    if _broke_off(exc):
        return f"the answer broke off ({_root(exc)})"
    if isinstance(exc, httpx2.TransportError):
        return f"the connection broke ({str(exc) or type(exc).__name__})"
    return None


def api_error_message(exc: Any) -> str:
    """The server's own message in an `openai.APIStatusError` (vLLM's error envelope, or the
    `detail` of a route it does not have); for a 404 from a base URL that does not end in /v1,
    how to fix it."""
    message = str(getattr(exc, "message", exc))
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = str(error["message"])
        elif isinstance(error, dict) and isinstance(error.get("detail"), str):
            message = str(error["detail"])
        elif isinstance(error, str):
            message = error
    fix = _missing_v1(exc)
    return message if fix is None else f"{message}. {fix}"


_ENDPOINTS = ("/responses", "/chat/completions", "/completions", "/models")


def _missing_v1(exc: Any) -> str | None:
    """For a 404 of a request whose base URL does not end in /v1: which base URL to use."""
    request = getattr(exc, "request", None)
    if getattr(exc, "status_code", None) != 404 or request is None:
        return None
    parts = urlsplit(str(request.url))
    path = parts.path.rstrip("/")
    endpoint = next((end for end in _ENDPOINTS if path.endswith(end)), None)
    if endpoint is None:
        return None
    base_path = path.removesuffix(endpoint).rstrip("/")
    if base_path.endswith("/v1"):
        return None
    base = urlunsplit((parts.scheme, parts.netloc, f"{base_path}/v1", "", ""))
    return f"Set the backend's `base_url:` to {base} (vLLM serves the API under /v1)"


class _Attempts:
    """The bookkeeping of one model call's attempts: budget, delays, logging, the final error."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        backend: str,
        url: str,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
        rng: Callable[[], float],
    ) -> None:
        self.policy = policy
        self.backend = backend
        self.url = url
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self.deadline = clock() + policy.budget_s
        self.made = 0

    async def after_failure(self, exc: Exception) -> str:
        """The cause if another attempt should be made (after waiting); raises otherwise."""
        self.made += 1
        if isinstance(exc, RequestHeaderError):
            raise exc.backend_error(self.backend, self.url) from None
        cause = retry_cause(exc)
        if cause is None and _refused_locally(exc):
            raise BackendError(
                f"cannot send requests to the model server of backend `{self.backend}` at "
                f"{self.url}: the HTTP client refused to send one (a header name or value, or "
                "the URL, has characters HTTP does not allow). Check the backend's api_key, "
                "headers and base_url.",
                url=self.url,
            ) from None
        if cause is None:
            raise exc
        delay = self.policy.delay(self.made, self.rng)
        out_of_retries = self.made > self.policy.max_retries
        if out_of_retries or self.clock() + delay > self.deadline:
            if isinstance(exc, CutAnswerError):  # not the server's failure: a limit to raise
                raise exc.limit_error(self.made) from exc
            raise self.final_error(exc, cause, budget=not out_of_retries) from exc
        logger.warning(
            "model call to %s failed (%s); retry %d of %d in %.2f s",
            self.url,
            cause,
            self.made,
            self.policy.max_retries,
            delay,
        )
        trace = current_trace.get()
        if trace is not None:
            trace.record(
                "retry", backend=self.backend, attempt=self.made, cause=cause, delay_s=delay
            )
        await self.sleep(delay)
        return cause

    def final_error(self, exc: Exception, cause: str, *, budget: bool) -> BackendError:
        import httpx2
        import openai

        attempts = f"{self.made} attempt{'s' if self.made != 1 else ''}"
        if budget:
            why = f"the retry budget of {self.policy.budget_s:g} s ran out after {attempts}"
        elif self.policy.max_retries == 0:
            why = "no retries: max_retries is 0"
        else:
            why = f"gave up after {attempts}"
        unreachable = isinstance(exc, openai.APIConnectionError | httpx2.ConnectError)
        if unreachable and not _broke_off(exc):  # an answer cut off came from a server
            if ", " in self.url:  # `base_urls`: the replicas, joined (a URL has no spaces)
                return BackendUnavailableError(
                    f"cannot reach any replica of the model server of backend `{self.backend}` "
                    f"at {self.url} ({cause}; {why}). Start them there (`vllm serve "
                    "openai/gpt-oss-20b`) or correct `base_urls`.",
                    url=self.url,
                )
            return BackendUnavailableError(
                f"cannot reach the model server of backend `{self.backend}` at {self.url} "
                f"({cause}; {why}). Start one there (`vllm serve openai/gpt-oss-20b`) or point "
                "`base_url` (--base-url) at a running server.",
                url=self.url,
            )
        return BackendError(
            f"the model server of backend `{self.backend}` at {self.url} failed: {cause} ({why})",
            url=self.url,
        )


_DRAIN_S = 1.0
"""How long a finished stream may take to end (see `_drain`)."""


async def _drain(stream: AsyncIterator[Any], deadline: float | None) -> None:
    """Read a finished stream to its end: the HTTP response is then complete, and its
    connection goes back to the pool instead of being closed (a new one per streamed call
    otherwise). Nothing more is expected after the answer; whatever comes is dropped, and a
    server that keeps the stream open gets `_DRAIN_S` (the connection is closed then)."""
    limit = asyncio.get_running_loop().time() + _DRAIN_S
    with contextlib.suppress(Exception):
        async with asyncio.timeout_at(limit if deadline is None else min(limit, deadline)):
            async for _ in stream:
                pass


def _timeout_error(policy: RetryPolicy) -> TimeoutError:
    if policy.attempt_timeout_s is None:  # the inner model's own time limit
        return TimeoutError("the model call timed out")
    return TimeoutError(f"no answer within timeout_s={policy.attempt_timeout_s:g} s")


@functools.cache
def _reliable_model_class() -> type[Model]:
    """The class behind `reliable_model`, built on first use (importing this skips the SDK)."""
    from agents import Model
    from openai.types.responses import ResponseCompletedEvent, ResponseIncompleteEvent

    class _ReliableModel(Model):
        def __init__(
            self,
            inner: Model,
            policy: RetryPolicy,
            *,
            backend: str,
            url: str,
            sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
            clock: Callable[[], float] = time.monotonic,
            rng: Callable[[], float] = random.random,
        ) -> None:
            self.inner = inner
            self.policy = policy
            self._attempts = functools.partial(
                _Attempts, policy, backend=backend, url=url, sleep=sleep, clock=clock, rng=rng
            )

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
            attempts = self._attempts()
            while True:
                try:
                    async with asyncio.timeout(self.policy.attempt_timeout_s):
                        response = await self.inner.get_response(*args, **kwargs)
                    _check_answer(response.output)
                    readable_arguments(response.output)
                    return response
                except TimeoutError as exc:
                    await attempts.after_failure(
                        _timeout_error(self.policy) if not str(exc) else exc
                    )
                except Exception as exc:
                    await attempts.after_failure(exc)

        async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            attempts = self._attempts()
            loop = asyncio.get_running_loop()
            while True:
                started = False
                limit = self.policy.attempt_timeout_s
                deadline = None if limit is None else loop.time() + limit
                stream = self.inner.stream_response(*args, **kwargs)
                try:
                    completed = False
                    while not completed:
                        # The time limit covers waiting for the server, not the consumer's
                        # work between events (a timeout around `yield` would cancel that).
                        try:
                            async with asyncio.timeout_at(deadline):
                                event = await anext(stream)
                        except StopAsyncIteration:
                            raise StreamCutError(
                                "the stream ended before response.completed"
                            ) from None
                        if isinstance(event, ResponseCompletedEvent | ResponseIncompleteEvent):
                            check_response(event.response)  # cut answers, empty ones
                            _check_answer(event.response.output)
                            readable_arguments(event.response.output)
                            completed = True
                        started = True
                        yield event
                    await _drain(stream, deadline)
                    return
                except Exception as exc:
                    failure = exc
                    if isinstance(exc, TimeoutError) and not str(exc):
                        failure = _timeout_error(self.policy)
                    cause = await attempts.after_failure(failure)
                    if started:
                        yield RetryEvent(attempt=attempts.made, cause=cause)
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]

        async def close(self) -> None:
            await self.inner.close()

    return _ReliableModel


def reliable_model(
    inner: Model,
    policy: RetryPolicy,
    *,
    backend: str,
    url: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> Model:
    """Wrap an SDK model so its calls are retried by `policy` (see the module docstring)."""
    cls: Any = _reliable_model_class()
    model: Model = cls(inner, policy, backend=backend, url=url, sleep=sleep, clock=clock, rng=rng)
    return model
