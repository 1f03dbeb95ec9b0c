"""`Recorder`: a recording proxy in front of a real vLLM server, which writes a cassette.

Point the code under test at the recorder instead of vLLM; it forwards every `/v1/*` request
(`/v1/responses`, `/v1/chat/completions`, `/v1/models`...) to the upstream server and sends the
answer back unchanged, streamed or not, while it keeps one cassette entry per model call (see
`agent_runtime.testing.cassette`). Replay the cassette with `MockVLLM` in CI, without a GPU.

```python
with Recorder("http://gpu-box:8000/v1") as recorder:
    client = OpenAI(base_url=recorder.url, api_key=key)
    ...
recorder.save("tests/cassettes/weather.yaml")
```
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from agent_runtime.redact import redact_text
from agent_runtime.testing.asgi import JSON_HEADERS, Receive, Scope, Send, read_body
from agent_runtime.testing.background import BackgroundServer
from agent_runtime.testing.cassette import entry_from_answer, request_document, save_cassette
from agent_runtime.testing.divergence import expected_request
from agent_runtime.testing.http_error import VLLMHTTPError
from agent_runtime.testing.profile import VLLM_0_33
from agent_runtime.testing.recording import RecordedRequest

if TYPE_CHECKING:
    import httpx2

__all__ = ["UPSTREAM_UNREACHABLE", "Recorder", "transport_problem"]

logger = logging.getLogger(__name__)

UPSTREAM_UNREACHABLE = "UpstreamUnreachableError"
"""The error `type` of the recorder's answer (HTTP 502) when the upstream server cannot be
reached."""

_MODEL_PATHS = {"/v1/responses": "responses", "/v1/chat/completions": "chat_completions"}
# Headers that belong to one connection, not to the message: never forwarded either way.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "accept-encoding",
        "content-encoding",
        "date",
        "server",
    }
)


class Recorder:
    """A proxy on 127.0.0.1 that forwards to a vLLM server and records a cassette.

    Args:
        upstream: the OpenAI base URL of the real server (`http://gpu-box:8000/v1`); a request
            for `/v1/X` goes to `{upstream}/X`.
        api_key: the key to send upstream (`Authorization: Bearer ...`); None forwards the
            client's own `Authorization` header. Keys are never written to the cassette.
        path: save the cassette there after every model call, so an interrupted session
            loses nothing.
        host: the address to bind; loopback only.
        port: the port to bind; 0 picks a free one.
        timeout_s: how long to wait for the upstream server to answer (a whole answer, or the
            next part of a stream).

    Attributes:
        entries: the cassette so far, one mapping per model call in the order answers ended.
        failures: what went wrong with requests that got no answer from upstream.
    """

    def __init__(
        self,
        upstream: str,
        *,
        api_key: str | None = None,
        path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_s: float = 600.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"the upstream must be an http(s) base URL like http://gpu-box:8000/v1, "
                f"not {redact_text(upstream)!r}"
            )
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"Recorder binds to loopback only, not {host!r}")
        self.upstream = upstream.rstrip("/")
        self.api_key = api_key
        self.path = Path(path) if path is not None else None
        self.host = host
        self.timeout_s = timeout_s
        self.entries: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._port: int | None = None
        self._background = BackgroundServer(self.asgi, host=host, port=port, label="Recorder")

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._port is None:
            raise RuntimeError("Recorder is not running; use it as a context manager or start()")
        return self._port

    @property
    def url(self) -> str:
        """The OpenAI base URL to give clients, ending in `/v1`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> Self:
        """Start serving on a background thread; returns once the port accepts connections."""
        if self._background.running:
            raise RuntimeError("Recorder is already running")
        self._port = self._background.start()
        return self

    def stop(self) -> None:
        """Stop the proxy and wait for its thread (answers under way get 2 s to finish)."""
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

    def save(self, path: str | Path) -> Path:
        """Write the cassette recorded so far to `path` (YAML); returns the path."""
        with self._lock:
            entries = list(self.entries)
        return save_cassette(entries, path)

    # -- ASGI ---------------------------------------------------------------------------------

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application (HTTP only): forward, answer, record."""
        if scope["type"] != "http":
            return
        import httpx2

        body = await read_body(receive)
        path, method = scope["path"], scope["method"]
        if path != "/v1" and not path.startswith("/v1/"):
            detail = f"Not Found: the recorder forwards /v1/* only, not {path}"
            await _send_json(send, 404, {"detail": detail})
            return
        target = self.upstream + path[len("/v1") :]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        api = _MODEL_PATHS.get(path) if method == "POST" else None
        timeout = httpx2.Timeout(self.timeout_s, connect=10.0)
        async with httpx2.AsyncClient(timeout=timeout, trust_env=False) as client:
            request = client.build_request(
                method, target, content=body, headers=self._forwarded(scope)
            )
            try:
                response = await client.send(request, stream=True)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
                await self._unreachable(send, exc, reached=False)
                return
            except httpx2.RemoteProtocolError as exc:
                self._dropped(api, body, send, exc)
                return
            except httpx2.TransportError as exc:
                await self._unreachable(send, exc, reached=True)
                return
            try:
                if response.headers.get("content-type", "").startswith("text/event-stream"):
                    await self._relay_stream(api, body, response, send)
                else:
                    await self._relay_whole(api, body, response, send)
            finally:
                await response.aclose()

    def _forwarded(self, scope: Scope) -> list[tuple[str, str]]:
        headers = []
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            if name in _HOP_HEADERS or (name == "authorization" and self.api_key is not None):
                continue
            headers.append((name, value.decode("latin-1")))
        if self.api_key is not None:
            headers.append(("authorization", f"Bearer {self.api_key}"))
        headers.append(("accept-encoding", "identity"))
        return headers

    async def _relay_whole(
        self, api: str | None, body: bytes, response: httpx2.Response, send: Send
    ) -> None:
        """Read the upstream answer, record it, then send it on (so the cassette on disk has
        the call before the client has its answer)."""
        import httpx2

        try:
            answer = await response.aread()
        except httpx2.TransportError as exc:
            self._fail(
                f"the answer of {self._where()} to {response.request.method} "
                f"{response.request.url.path} broke off: {transport_problem(exc)}; not recorded"
            )
            _drop(send)  # the client's answer breaks off too, as the upstream one did
            return
        if api is not None:
            self._record(api, body, response, answer)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [*_answer_headers(response), (b"content-length", b"%d" % len(answer))],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _relay_stream(
        self, api: str | None, body: bytes, response: httpx2.Response, send: Send
    ) -> None:
        """Send the upstream events on as they come; record the answer before the stream's
        end, so the cassette on disk has the call before the client sees the stream end."""
        import httpx2

        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": _answer_headers(response),
            }
        )
        chunks = []
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx2.TransportError as exc:
            self._fail(
                f"the answer of {self._where()} to {response.request.method} "
                f"{response.request.url.path} broke off: {transport_problem(exc)}; not recorded"
            )
            _drop(send)  # the client's answer breaks off too, as the upstream one did
            return
        if api is not None:
            self._record(api, body, response, b"".join(chunks))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _unreachable(self, send: Send, exc: Exception, *, reached: bool) -> None:
        """Answer 502 for an upstream that could not be reached, or that did not answer."""
        reason = transport_problem(exc)
        if reached:
            message = f"Recorder: the upstream server {self._where()} did not answer: {reason}."
        else:
            message = (
                f"Recorder: cannot reach the upstream server {self._where()}: {reason}. "
                "Check that vLLM is running there and that the upstream URL is its OpenAI base "
                "URL (ending in /v1)."
            )
        self._fail(message)
        error = VLLMHTTPError(502, message, type=UPSTREAM_UNREACHABLE, final=True)
        await _send_json(send, 502, error.body(), final=True)

    def _dropped(self, api: str | None, body: bytes, send: Send, exc: Exception) -> None:
        """The upstream closed the connection without an answer (as vLLM does when it cannot
        parse what the model generated): do the same to the client, and record it as a
        `drop_connection` fault."""
        logger.warning(
            "Recorder: %s closed the connection without an answer: %s",
            self._where(),
            transport_problem(exc),
        )
        if api is not None:
            self._add({"fault": {"drop_connection": True}}, api, body)
        _drop(send)

    def _where(self) -> str:
        return redact_text(self.upstream)

    def _fail(self, message: str) -> None:
        logger.warning("%s", message)
        with self._lock:
            self.failures.append(message)

    def _record(self, api: str, body: bytes, response: httpx2.Response, answer: bytes) -> None:
        try:
            entry = entry_from_answer(
                api, response.status_code, response.headers.get("content-type", ""), answer
            )
        except ValueError as exc:
            self._fail(f"a {api} answer could not be recorded: {exc}")
            return
        if entry is None:
            self._fail(f"a streamed {api} answer ended without a complete response; not recorded")
            return
        self._add(entry, api, body)

    def _add(self, entry: dict[str, Any], api: str, body: bytes) -> None:
        """Keep `entry` (with the request's `request:`) and save the cassette when asked to."""
        request = _expected(api, body)
        if request is not None:
            entry = {"request": request, **entry}
        with self._lock:
            self.entries.append(entry)
            entries = list(self.entries)
        if self.path is not None:
            try:
                save_cassette(entries, self.path)
            except OSError as exc:
                self._fail(f"cannot write the cassette {str(self.path)!r}: {exc.strerror}")


# -- helpers --------------------------------------------------------------------------------


def _answer_headers(response: httpx2.Response) -> list[tuple[bytes, bytes]]:
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.multi_items()
        if name.lower() not in _HOP_HEADERS
    ]


def _expected(api: str, body: bytes) -> dict[str, Any] | None:
    """The `request:` of a model call, read as the mock reads it on replay; None when the mock
    would not accept the request (then the replay cannot check it either)."""
    from agent_runtime.testing.chat_request import parse_chat_request
    from agent_runtime.testing.prompt import prompt_messages
    from agent_runtime.testing.responses_request import parse_responses_request

    try:
        document = json.loads(body)
        model = document.get("model") if isinstance(document, dict) else None
        served = (model,) if isinstance(model, str) else ()
        parse = parse_responses_request if api == "responses" else parse_chat_request
        parsed = parse(document, served_models=served, profile=VLLM_0_33)
        messages = prompt_messages(parsed, VLLM_0_33).messages
    except Exception as exc:  # the answer is sent already: never fail the request for this
        logger.warning("Recorder: a %s request is recorded without `request:`: %s", api, exc)
        return None
    record = RecordedRequest(
        index=0,
        method="POST",
        path="",
        headers={},
        body=b"",
        messages=tuple(messages),
        function_calls=tuple(parsed.function_calls),
        tool_names=tuple(t.name for t in parsed.tools),
    )
    return request_document(expected_request(record))


def transport_problem(exc: BaseException) -> str:
    """Why a connection failed, in a few words (`connection refused`, or the error's text)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _drop(send: Send) -> None:
    """Close the client's connection at once, without finishing the HTTP exchange."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort()


async def _send_json(send: Send, status: int, payload: Any, *, final: bool = False) -> None:
    data = json.dumps(payload).encode()
    headers = [*JSON_HEADERS, (b"content-length", str(len(data)).encode())]
    if final:
        headers.append((b"x-should-retry", b"false"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
