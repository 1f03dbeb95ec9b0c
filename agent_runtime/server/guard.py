"""What a request must pass before it reaches a route.

`Guard` (pure ASGI middleware, in front of the routes) checks, in this order:

1. **draining** — after SIGTERM (`Gate.start_draining()`), a new `/v1` request that is not a
   `GET` gets 503 `draining` with `Retry-After`; reads (`GET /v1/models`, polling a response)
   still work so that clients can collect runs that finish during the grace period.
2. **API keys** — when `ServeOptions.api_keys` is set, every `/v1/*` request needs
   `Authorization: Bearer KEY` with one of them (compared in constant time), else 401
   `invalid_api_key`. `/health`, `/ready`, `/metrics` and the dev UI (`/`, its assets) are
   open: probes and Prometheus scrapers carry no key, and none of them shows prompts, answers
   or keys (put `/metrics` behind your proxy if agent names are private). CORS preflight
   (`OPTIONS`) is answered before the guard (see `middleware`). Keys are never logged: the
   request carries on with the key's fingerprint only (`key_id`).
3. **body size** — a body past `max_body_bytes` gets 413 `request_too_large`, counted on the
   bytes received (a `Content-Length` that says more is refused at once; a chunked body is
   counted as it comes). The body is read here, then handed to the route.

What a run must pass to start (runs in flight per key, draining) is the gate's:
`agent_runtime.server.gate`, whose names are importable from here too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.server.errors import APIError
from agent_runtime.server.gate import (
    KEY_SCOPE,
    RETRY_AFTER_DRAINING_S,
    Gate,
    RunTally,
    draining_error,
    key_id,
    tracked_run,
)

if TYPE_CHECKING:
    from agent_runtime.server.state import ServerState

__all__ = [
    "KEY_SCOPE",
    "RETRY_AFTER_DRAINING_S",
    "Gate",
    "Guard",
    "RunTally",
    "draining_error",
    "fingerprint",
    "key_id",
    "middleware",
    "tracked_run",
]

_OPEN_PREFIX = "/v1"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A body past the limit is still read (and dropped) up to this much, so that the client, busy
# sending it, sees the 413 rather than a connection reset.
_DISCARD_BYTES = 64 * 1024 * 1024


def fingerprint(key: str) -> str:
    """A short, stable, non-reversible name for an API key (`key_3f9a1c2e`), safe to log."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:8]


class Guard:
    """ASGI middleware: draining, API keys and the body size limit (see the module).

    Args:
        app: the application behind it.
        state: the app's `ServerState` (options, gate, metrics).
    """

    def __init__(self, app: ASGIApp, *, state: ServerState) -> None:
        self.app = app
        self.state = state
        self._keys = tuple(key.encode() for key in state.options.api_keys)
        self._ids = {key: fingerprint(key) for key in state.options.api_keys}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        guarded = path == _OPEN_PREFIX or path.startswith(_OPEN_PREFIX + "/")
        scope[KEY_SCOPE] = ""
        if guarded:
            error = self._admit(scope)
            if error is not None:
                await _send_error(error, send)
                return
        if scope.get("method") in _BODY_METHODS:
            limit = self.state.options.max_body_bytes
            body, error = await _read_body(scope, receive, limit)
            if error is not None:
                self._rejected("413")
                await _send_error(error, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _admit(self, scope: Scope) -> APIError | None:
        gate = self.state.gate
        if gate is not None and gate.draining and scope.get("method") != "GET":
            self._rejected("503")
            return draining_error()
        if not self._keys:
            return None
        given = _bearer(scope)
        if given is None:
            self._rejected("401")
            return _unauthorized(
                "no API key: send `Authorization: Bearer KEY` with one of the server's keys."
            )
        matched = b""
        for key in self._keys:  # every key compared, each in constant time
            if hmac.compare_digest(given, key):
                matched = key
        if not matched:
            self._rejected("401")
            return _unauthorized("the API key is not valid for this server.")
        scope[KEY_SCOPE] = self._ids[matched.decode()]
        return None

    def _rejected(self, reason: str) -> None:
        metrics = self.state.metrics
        if metrics is not None:
            metrics.rejected(reason)


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = bytes(value).strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None


def _unauthorized(message: str) -> APIError:
    return APIError(
        401, message, code="invalid_api_key", headers={"WWW-Authenticate": 'Bearer realm="v1"'}
    )


async def _read_body(scope: Scope, receive: Receive, limit: int) -> tuple[bytes, APIError | None]:
    """The whole body, or the 413 for one past `limit` (the rest read and dropped, up to a cap,
    so that the client gets the answer instead of a reset connection)."""
    too_large = APIError(
        413,
        f"the request body is larger than the server accepts ({limit} bytes, "
        "`serve.max_body_bytes`). Send less (fewer or smaller input items).",
        code="request_too_large",
    )
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            with contextlib.suppress(ValueError):
                if int(value) > limit:
                    await _discard(receive, 0)
                    return b"", too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left
            return b"", None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            if message.get("more_body", False):
                await _discard(receive, size)
            return b"", too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


async def _discard(receive: Receive, size: int) -> None:
    while size < _DISCARD_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read once, then what the client sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_error(error: APIError, send: Send) -> None:
    body = error.encoded()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    if error.status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def middleware(state: ServerState) -> list[Middleware]:
    """The server's middleware, outermost first: the access log, CORS (only when
    `cors_origins` is set, so that preflights pass before the key check), then `Guard`."""
    from starlette.middleware.cors import CORSMiddleware

    from agent_runtime.server.access_log import AccessLog

    stack = [Middleware(AccessLog)]
    origins = state.options.cors_origins
    if origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "OpenAI-Beta"],
                expose_headers=["Retry-After"],
                max_age=600,
            )
        )
    stack.append(Middleware(Guard, state=state))
    return stack
