"""What a request must pass before it reaches a route, and what a run must pass to start.

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

`Gate.run_slot(request)` wraps each run: per key (or for the whole server when no keys are
set) at most `max_runs_per_key` runs in flight, past it 429 `too_many_runs` with
`Retry-After: 1`; while draining, 503. `await gate.drained(timeout)` waits for the runs in
flight to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.server.errors import APIError

if TYPE_CHECKING:
    from agent_runtime.server.options import ServeOptions
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

KEY_SCOPE = "agent_runtime.key_id"
"""The scope entry that holds the fingerprint of the request's API key ("" without keys)."""

RETRY_AFTER_DRAINING_S = 5
"""`Retry-After` of a 503 while draining: by then another instance is likely up."""

_OPEN_PREFIX = "/v1"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A body past the limit is still read (and dropped) up to this much, so that the client, busy
# sending it, sees the 413 rather than a connection reset.
_DISCARD_BYTES = 64 * 1024 * 1024


def fingerprint(key: str) -> str:
    """A short, stable, non-reversible name for an API key (`key_3f9a1c2e`), safe to log."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:8]


def key_id(conn: HTTPConnection | Scope) -> str:
    """The fingerprint of the request's API key, "" when the server has no keys."""
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    value = scope.get(KEY_SCOPE, "")
    return value if isinstance(value, str) else ""


class Gate:
    """Runs in flight, per key: the concurrency limit, and draining on shutdown.

    Args:
        options: `max_runs_per_key` is read from it.
        metrics: counts the 429 / 503 given here (`Metrics.rejected`), or None.
    """

    def __init__(self, options: ServeOptions, *, metrics: Any = None) -> None:
        self.limit = options.max_runs_per_key
        self.metrics = metrics
        self.draining = False
        self._in_flight: dict[str, int] = {}
        self._total = 0
        self._idle: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Runs in flight, all keys together."""
        return self._total

    def in_flight_of(self, key: str) -> int:
        """Runs in flight for one key fingerprint ("" without keys)."""
        return self._in_flight.get(key, 0)

    def start_draining(self) -> None:
        """From now on new runs get 503 (and the guard refuses new `/v1` writes)."""
        self.draining = True

    def check(self, key: str) -> None:
        """Raise the error a new run of `key` would get now (503 draining, 429 at the limit)."""
        if self.draining:
            self._reject("503")
            raise draining_error()
        if self._in_flight.get(key, 0) >= self.limit:
            self._reject("429")
            who = "this API key" if key else "this server"
            raise APIError(
                429,
                f"{who} already has {self.limit} runs in flight (max_runs_per_key="
                f"{self.limit}). Retry when one has finished, or raise `serve.max_runs_per_key`.",
                type="rate_limit_error",
                code="too_many_runs",
                headers={"Retry-After": "1"},
            )

    @contextlib.asynccontextmanager
    async def run_slot(self, request: HTTPConnection | str) -> AsyncIterator[None]:
        """Hold one run slot of the request's key while the block runs.

        Raises:
            APIError: 503 while draining; 429 (`Retry-After: 1`) past `max_runs_per_key`.
        """
        key = request if isinstance(request, str) else key_id(request)
        self.check(key)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        self._total += 1
        try:
            yield
        finally:
            left = self._in_flight[key] - 1
            if left:
                self._in_flight[key] = left
            else:
                del self._in_flight[key]
            self._total -= 1
            if self._total == 0 and self._idle is not None:
                self._idle.set()

    async def drained(self, within_s: float | None) -> bool:
        """Wait until no run is in flight, at most `within_s` seconds; whether none is left."""
        if self._total == 0:
            return True
        self._idle = asyncio.Event()
        try:
            async with asyncio.timeout(within_s):
                while self._total:
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            return self._total == 0
        return True

    def _reject(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.rejected(reason)


def draining_error() -> APIError:
    """503 for a request that arrives while the server shuts down."""
    return APIError(
        503,
        "the server is shutting down and takes no new requests. Retry shortly (another "
        "instance may answer).",
        type="server_error",
        code="draining",
        headers={"Retry-After": str(RETRY_AFTER_DRAINING_S)},
    )


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


@dataclass(slots=True)
class RunTally:
    """How a run held by `tracked_run` ended, for the metrics; a route may set `outcome` itself
    (e.g. `incomplete` for a response that ends with a client function call)."""

    agent: str
    outcome: str | None = None


@contextlib.asynccontextmanager
async def tracked_run(
    state: ServerState, request: HTTPConnection | str, agent: str
) -> AsyncIterator[RunTally]:
    """Hold a run slot of the request's key (`Gate.run_slot`: 429 / 503), name the agent in the
    access log, and count the run in the metrics: in flight while the block runs, then its
    outcome (`completed` when the block ends normally, `incomplete` on `RunLimitError`,
    `cancelled` when cancelled or closed, `failed` on any other error) unless the block set
    `tally.outcome`, and its duration."""
    from agent_runtime.errors import RunLimitError
    from agent_runtime.server.access_log import note_agent

    if isinstance(request, HTTPConnection):
        note_agent(request, agent)
    gate = state.gate
    slot = gate.run_slot(request) if gate is not None else contextlib.nullcontext()
    async with slot:
        metrics = state.metrics
        tally = RunTally(agent)
        if metrics is not None:
            metrics.run_started(agent)
        started = time.perf_counter()
        outcome = "failed"
        try:
            yield tally
            outcome = "completed"
        except RunLimitError:
            outcome = "incomplete"
            raise
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        finally:
            if metrics is not None:
                metrics.run_finished(agent, tally.outcome or outcome, time.perf_counter() - started)
