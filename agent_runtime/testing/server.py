"""`MockVLLM`: a real HTTP server on 127.0.0.1 that answers like `vllm serve openai/gpt-oss-20b`.

The server is a small ASGI application (`agent_runtime.testing.app`) run by uvicorn on a
background thread, so it works the same under sync and async tests. Model endpoints answer from a
script of replies, one per model call, and every request is recorded. This module holds the
server's lifecycle, its script and the assertions on what it recorded.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from agent_runtime.testing.app import MockApp
from agent_runtime.testing.asgi import Receive, Scope, Send
from agent_runtime.testing.auto import AutoModel
from agent_runtime.testing.background import BackgroundServer
from agent_runtime.testing.divergence import divergence
from agent_runtime.testing.http_error import VLLMHTTPError
from agent_runtime.testing.matching import answered_calls, match_tool_calls
from agent_runtime.testing.profile import VLLM_0_33, Latency, VLLMProfile, release_profile
from agent_runtime.testing.prompt import PromptRenderer
from agent_runtime.testing.recording import RecordedRequest
from agent_runtime.testing.script import Call, Reply, ScriptEntry, as_entries

if TYPE_CHECKING:
    pass

__all__ = ["DIVERGED", "SCRIPT_EXHAUSTED", "MockVLLM"]

SCRIPT_EXHAUSTED = "ScriptExhaustedError"
"""The error `type` of the answer to a model call that found the script used up."""

DIVERGED = "ScriptDivergenceError"
"""The error `type` of the answer to a model call that did not ask what its script entry's
`request:` expects."""


class MockVLLM:
    """A mock of vLLM's OpenAI-compatible server for gpt-oss, for tests and offline demos.

    ```python
    with MockVLLM([Reply(reasoning="Call the tool.", calls=[call("get_weather", city="Tokyo")]),
                   Reply(reasoning="Sunny.", final="Tokyo wakes in light...")]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY")
        ...
        mock.assert_reasoning_returned(reply=0, request=1)
    ```

    Args:
        script: replies, one per model call in order: `Reply` values, responder functions of the
            `RecordedRequest`, or the path of a YAML/JSON script file.
        default: the reply (or responder) for calls after the script is used up, e.g.
            `ToolLoop()`; without it such calls get a 501 error (`ScriptExhaustedError`) that
            says the script ran out, which clients do not retry.
        auto: answer the calls after the script with an `AutoModel` (True for the default
            one): every offered tool called once, then an answer that fits the output schema.
        host: the address to bind; loopback only.
        port: the port to bind; 0 picks a free one.
        model: the model vLLM was started with (`root` in `GET /v1/models`).
        served_model_names: the names clients use (vLLM's `--served-model-name`); the first is
            what answers report as `model`. Default: `model` itself.
        api_key: require `Authorization: Bearer <api_key>` on `/v1/*`, as `vllm serve --api-key`.
        harmony: render each request into the exact harmony prompt (needs openai-harmony's
            vocabulary) and count tokens with the real tokenizer.
        latency: time to first token and per generated token.
        profile: the vLLM behaviour to imitate: a release's (`VLLM_0_33`, the default, or
            `VLLM_0_22`), or one changed with `.but(...)`.
        vllm_version: the release to imitate by number (`"0.33"`, `"0.22.1"`), instead of
            `profile`.
        max_model_len: the context length (`max_output_tokens` defaults to what is left).
        seed: make generated ids repeatable.
        start_date: the `Current date:` of harmony system messages (YYYY-MM-DD), as
            `VLLM_SYSTEM_START_DATE`; today by default.
        keep_requests: record only the last N requests (a long-running server); all by
            default.

    A script entry with a `request` (`ExpectedRequest`, the `request:` key of a cassette) is
    served only to a model call that asks what it expects; any other gets a 400 that shows the
    difference, kept in `divergences`.
    """

    def __init__(
        self,
        script: Sequence[ScriptEntry] | str | Path | None = None,
        *,
        default: ScriptEntry | None = None,
        auto: bool | AutoModel = False,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = "openai/gpt-oss-20b",
        served_model_names: Sequence[str] = (),
        api_key: str | None = None,
        harmony: bool = False,
        latency: Latency | None = None,
        profile: VLLMProfile | None = None,
        vllm_version: str | None = None,
        max_model_len: int = 131072,
        seed: int | None = None,
        start_date: str | None = None,
        keep_requests: int | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"MockVLLM binds to loopback only, not {host!r}")
        self.host = host
        self.model = model
        self.served_model_names = tuple(served_model_names) or (model,)
        self.api_key = api_key
        self.latency = latency or Latency()
        if profile is not None and vllm_version is not None:
            raise ValueError("give either profile or vllm_version, not both")
        if vllm_version is not None:
            profile = release_profile(vllm_version)
        self.profile = profile or VLLM_0_33
        self.max_model_len = max_model_len
        if auto is not False and default is not None:
            raise ValueError("give either default or auto, not both")
        if auto is not False:
            default = auto if isinstance(auto, AutoModel) else AutoModel()
        self.default = default
        self.requests: deque[RecordedRequest] = deque(maxlen=keep_requests)
        self.internal_errors: list[Exception] = []
        self.divergences: list[str] = []
        self._changes = threading.Condition()
        self._entries: deque[ScriptEntry] = deque(as_entries(script))
        self._script_length = len(self._entries)
        self._served = 0
        self._lock = threading.Lock()
        self._renderer = PromptRenderer(start_date=start_date) if harmony else None
        self._app = MockApp(self, reply_for=self._reply_for, renderer=self._renderer, seed=seed)
        self._port: int | None = None
        self._background = BackgroundServer(
            self.asgi, host=host, port=port, label="MockVLLM", nodelay=True
        )

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._port is None:
            raise RuntimeError("MockVLLM is not running; use it as a context manager or start()")
        return self._port

    @property
    def url(self) -> str:
        """The OpenAI base URL, ending in `/v1`."""
        return f"http://{self._url_host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The server root (for `/health`, `/version`)."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def harmony(self) -> bool:
        """Whether prompts are rendered with the real harmony encoding."""
        return self._renderer is not None

    def start(self) -> Self:
        """Start serving on a background thread; returns once the port accepts connections."""
        if self._background.running:
            raise RuntimeError("MockVLLM is already running")
        if self._renderer is not None:
            self._renderer.load()
        self._port = self._background.start()
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        self._background.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- script -------------------------------------------------------------------------------

    def add(self, *entries: ScriptEntry) -> None:
        """Append replies to the script (also while serving)."""
        with self._lock:
            self._entries.extend(entries)
            self._script_length += len(entries)

    @property
    def remaining(self) -> int:
        """How many scripted replies have not been used yet."""
        return len(self._entries)

    def assert_script_consumed(self) -> None:
        """Fail unless every scripted reply was used and no call found the script empty."""
        unserved = [r for r in self.model_requests if _found_script_empty(r)]
        if self._entries or unserved:
            raise AssertionError(
                f"mock script: {len(self._entries)} of {self._script_length} replies unused, "
                f"{len(unserved)} model call(s) found the script empty"
            )

    def assert_no_divergence(self) -> None:
        """Fail, showing every difference, if a model call did not ask what its script entry
        expects (`divergences`)."""
        if self.divergences:
            count = len(self.divergences)
            raise AssertionError(
                f"mock script: {count} model call{'s' if count != 1 else ''} differed from the "
                "script:\n" + "\n".join(self.divergences)
            )

    def _next_entry(self) -> tuple[ScriptEntry | None, int | None]:
        with self._lock:
            if self._entries:
                index = self._served
                self._served += 1
                return self._entries.popleft(), index
        return self.default, None

    async def _reply_for(self, record: RecordedRequest, call: int) -> Reply:
        """The reply to model request number `call`: the next script entry, else `default`.

        Raises:
            VLLMHTTPError: a 501 when the script ran out (a status clients do not retry: asking
                again cannot help), a 400 when the request differs from the entry's `request`,
                a 500 when a responder failed.
        """
        entry, index = self._next_entry()
        record.reply_index = index
        if entry is None:
            length = self._script_length
            raise VLLMHTTPError(
                501,
                f"MockVLLM: no scripted reply left for model request {call} (the script had "
                f"{length} repl{'y' if length == 1 else 'ies'}). Add replies to the script, or "
                "answer the calls after it with a tool loop: `agent-runtime mock --tool-loop`, "
                "or `MockVLLM(default=ToolLoop())` in Python.",
                type=SCRIPT_EXHAUSTED,
                final=True,
            )
        if isinstance(entry, Reply):
            if entry.request is not None:
                difference = divergence(entry.request, record, call=call, calls=entry.calls)
                if difference is not None:
                    with self._lock:
                        self.divergences.append(difference)
                    raise VLLMHTTPError(400, difference, type=DIVERGED, final=True)
            return entry
        try:
            result = entry(record)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise VLLMHTTPError(
                500, f"MockVLLM: the responder {entry!r} raised {exc!r}", type="InternalServerError"
            ) from exc
        if not isinstance(result, Reply):
            raise VLLMHTTPError(
                500,
                f"MockVLLM: the responder {entry!r} returned {type(result).__name__}, not a Reply",
                type="InternalServerError",
            )
        return result

    # -- recorded requests ----------------------------------------------------------------------

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """The recorded `/v1/responses` and `/v1/chat/completions` requests, in arrival order."""
        return [r for r in self.requests if r.is_model_call]

    @property
    def tool_calls(self) -> list[Call]:
        """The function calls the mock answered with, in the order of the model requests."""
        return answered_calls(self.model_requests)

    def assert_tool_calls(self, expected: Sequence[Mapping[str, Any]]) -> None:
        """Assert the mock answered with exactly these calls, in order (see
        `match_tool_calls`): `mock.assert_tool_calls([{"name": "get_weather", "arguments":
        {"city": "Tokyo"}}])`; arguments may leave out what does not matter."""
        reason = match_tool_calls(self.tool_calls, expected)
        if reason is not None:
            raise AssertionError(reason)

    def assert_reasoning_returned(self, *, reply: int, request: int) -> None:
        """Assert that the reasoning the model gave in answer to model request `reply` was sent
        back, with its full text, in model request `request` (both 0-based)."""
        calls = self.model_requests
        source = calls[reply]
        if source.reply is None:
            raise AssertionError(f"model request {reply} got no reply")
        texts = _reasoning_of(source)
        if not texts:
            raise AssertionError(f"the reply to model request {reply} had no reasoning")
        target = calls[request]
        missing = [t for t in texts if t not in target.reasoning_texts]
        if missing:
            raise AssertionError(
                f"reasoning of reply {reply} not sent back in request {request}: "
                f"missing {missing!r}; request {request} carried {target.reasoning_texts!r}"
            )

    def changed(self) -> None:
        """Wake `wait_until` callers (the app calls this as requests arrive and end)."""
        with self._changes:
            self._changes.notify_all()

    def wait_until(self, condition: Callable[[MockVLLM], bool], *, timeout: float = 10.0) -> None:
        """Block until `condition(mock)` holds, re-checked whenever a request arrives or ends.

        `mock.wait_until(lambda m: len(m.model_requests) == 2)`; raises `TimeoutError` after
        `timeout` seconds. (In async code, call it through `asyncio.to_thread`.)
        """
        with self._changes:
            if not self._changes.wait_for(lambda: condition(self), timeout=timeout):
                raise TimeoutError(f"MockVLLM: condition not met within {timeout} s")

    # -- ASGI ---------------------------------------------------------------------------------

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application (HTTP only)."""
        await self._app(scope, receive, send)


# -- helpers --------------------------------------------------------------------------------


def _found_script_empty(record: RecordedRequest) -> bool:
    error = record.error.get("error") if isinstance(record.error, dict) else None
    return isinstance(error, dict) and error.get("type") == SCRIPT_EXHAUSTED


def _reasoning_of(record: RecordedRequest) -> list[str]:
    reply = record.reply
    if reply is None:
        return []
    if reply.reasoning is not None:
        return [reply.reasoning]
    response = record.response
    if isinstance(response, dict) and response.get("object") == "response":
        return [
            part["text"]
            for item in response["output"]
            if item["type"] == "reasoning"
            for part in item["content"]
        ]
    return []
