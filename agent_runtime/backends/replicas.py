"""Several replicas of one model server behind one backend (`base_urls:` in agents.yaml).

The OpenAI client of such a backend talks to one base URL, the first replica's; its HTTP
client's transport (`balancing_transport`) rewrites each request under that URL (scheme, host,
port, path prefix) to the replica it chooses, and sends it with an inner `httpx2.AsyncClient`
(the backend's own, or the `http_client` a caller injected, which keeps its proxies, TLS and
pool). Requests to other URLs pass through unchanged. Choosing happens per HTTP request, that
is per model call attempt:

- **Least outstanding requests.** The replica with the fewest requests in flight gets the
  call; a streamed answer counts until its body is closed. Ties go to the replica sent the
  fewest requests so far, so calls one after another take turns.
- **Session affinity** (`affinity: session`). The runtime sets `affinity_key` to the run's
  session id around a run; a call with a key goes to the replica of highest rendezvous hash
  (`blake2b(key, replica)`) among those up. The hash is stable across processes and restarts,
  and a replica going down moves only its own sessions (to their second choice), which come
  back when it does. vLLM's prefix cache then holds each conversation on one replica. A call
  without a session is balanced as above.
- **Failover.** A replica that refuses the connection, drops it before answering, or answers
  500/502/503/504 is marked down for `down_for_s` (logged, and a `replica_down` trace record
  in a run). The error still reaches the retry layer (`retry`), which retries the call as for
  one server, within `max_retries` and `retry_budget_s`: the next attempt goes to a replica
  that is up. No request is repeated here: only the retry layer decides how often to ask.
- **Coming back.** A replica is skipped while down; once `down_for_s` has passed, the next call
  may go to it again (a failure marks it down again, a success up). Meanwhile, every
  `health_check_s` a background task asks each replica that is down `GET {replica}/models`
  (with the backend's API key and headers) and marks it up on a 200; the task runs only while
  some replica is down, and ends with the backend.
- **All down.** The call goes to the replica that failed longest ago rather than failing
  untried (so attempts take turns among them); when every attempt fails, the retry layer's
  error names every replica (`BackendSpec.url`).

`Replicas` holds this state and has no I/O of its own; it belongs to its `Backend` and is closed
with it (no global state). Importing this module does not import httpx2.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from agent_runtime.redact import own_logger
from agent_runtime.tracing import current_trace

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "DOWN_STATUSES",
    "Replica",
    "Replicas",
    "affinity_key",
    "balancing_transport",
]

logger = own_logger(__name__)

affinity_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agent_runtime_affinity_key", default=None
)
"""The session id of the run this task belongs to (set by the runtime around a run): backends
with `affinity: session` send its model calls to one replica."""

DOWN_STATUSES = frozenset({500, 502, 503, 504})
"""HTTP statuses that mark a replica down (and that the retry layer retries)."""


@dataclass(slots=True, kw_only=True)
class Replica:
    """One replica of a model server and what the balancer knows of it."""

    url: str
    """Its base URL, as configured."""
    outstanding: int = 0
    """Requests in flight (a streamed answer until its body is closed)."""
    sent: int = 0
    """Requests sent to it so far."""
    down_since: float | None = None
    """When it was marked down (None: up)."""
    down_until: float = 0.0
    """Until when it is skipped."""
    cause: str = ""
    """Why it was last marked down."""

    @property
    def down(self) -> bool:
        """Whether it is marked down (skipped or not)."""
        return self.down_since is not None


class Replicas:
    """The replicas of one backend: which gets a call, which are down (see the module doc).

    Args:
        urls: the replicas' base URLs.
        backend: the backend's name, for log lines and trace records.
        affinity: `session`: calls with an `affinity_key` go to that session's replica.
        down_for_s: how long a replica that failed is skipped.
        health_check_s: how often replicas that are down are probed (None: never).
        probe: asks one replica whether it answers (True: mark it up); used by health checks.
        clock: monotonic time in seconds.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        backend: str,
        affinity: Literal["none", "session"] = "none",
        down_for_s: float = 30.0,
        health_check_s: float | None = 5.0,
        probe: Callable[[Replica], Awaitable[bool]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("Replicas needs at least one URL")
        self.replicas = tuple(Replica(url=url) for url in urls)
        self.backend = backend
        self.affinity = affinity
        self.down_for_s = down_for_s
        self.health_check_s = health_check_s
        self.probe = probe
        self.clock = clock
        self._checker: asyncio.Task[None] | None = None
        self._closed = False

    # -- choosing ---------------------------------------------------------------------------

    def choose(self, key: str | None = None) -> Replica:
        """The replica for the next request: by `key`'s rendezvous hash with `affinity:
        session`, else the least loaded; among those up, or the one down longest."""
        now = self.clock()
        up = [replica for replica in self.replicas if replica.down_until <= now]
        if not up:  # the one whose time out ends first: it failed longest ago
            return min(self.replicas, key=lambda replica: replica.down_until)
        if key is not None and self.affinity == "session":
            return max(up, key=lambda replica: _score(key, replica.url))
        return min(up, key=lambda replica: (replica.outstanding, replica.sent))

    def started(self, replica: Replica) -> None:
        """A request to `replica` is in flight."""
        replica.outstanding += 1
        replica.sent += 1

    def finished(self, replica: Replica) -> None:
        """A request to `replica` ended (its answer's body closed, or it failed)."""
        replica.outstanding = max(0, replica.outstanding - 1)

    # -- health -----------------------------------------------------------------------------

    def mark_down(self, replica: Replica, cause: str) -> None:
        """Skip `replica` for `down_for_s`; probe it meanwhile (health checks)."""
        now = self.clock()
        if replica.down_since is None:
            replica.down_since = now
        replica.down_until = now + self.down_for_s
        replica.cause = cause
        logger.warning(
            "backend `%s`: replica %s is down (%s); skipped for %g s",
            self.backend,
            replica.url,
            cause,
            self.down_for_s,
        )
        trace = current_trace.get()
        if trace is not None:
            trace.record("replica_down", backend=self.backend, url=replica.url, cause=cause)
        self._watch()

    def mark_up(self, replica: Replica, *, how: str) -> None:
        """`replica` answers again."""
        if replica.down_since is None:
            return
        replica.down_since = None
        replica.down_until = 0.0
        logger.info("backend `%s`: replica %s is back (%s)", self.backend, replica.url, how)

    def _watch(self) -> None:
        """Start the health checks, unless they run already, are off, or the set is closed."""
        if self.health_check_s is None or self.probe is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        checker = self._checker
        if checker is not None and not checker.done() and checker.get_loop() is loop:
            return
        self._checker = loop.create_task(
            self._check_health(), name=f"agent-runtime health checks of backend {self.backend}"
        )

    async def _check_health(self) -> None:
        assert self.health_check_s is not None and self.probe is not None
        probe = self.probe
        while True:
            await asyncio.sleep(self.health_check_s)
            down = [replica for replica in self.replicas if replica.down]
            if not down:
                return
            answers = await asyncio.gather(
                *(probe(replica) for replica in down), return_exceptions=True
            )
            for replica, answer in zip(down, answers, strict=True):
                if answer is True:
                    self.mark_up(replica, how="health check")

    async def aclose(self) -> None:
        """Stop the health checks."""
        self._closed = True
        checker, self._checker = self._checker, None
        if checker is None or checker.done():
            return
        if checker.get_loop() is not asyncio.get_running_loop():
            with contextlib.suppress(RuntimeError):  # that loop may be closed already
                checker.cancel()
            return
        checker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checker


def _score(key: str, url: str) -> int:
    """Rendezvous (highest random weight) hash of a session on a replica: stable everywhere."""
    digest = hashlib.blake2b(f"{key}\0{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _down_cause(exc: BaseException) -> str | None:
    """Why a failed request means its replica is down (None: it does not, e.g. a read
    time-out of a slow answer)."""
    import httpx2

    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout):
        if _refused(exc):
            return "connection refused"
        return f"cannot connect: {str(exc) or type(exc).__name__}"
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.NetworkError):
        return f"the connection broke: {str(exc) or type(exc).__name__}"
    return None


def _refused(exc: BaseException) -> bool:
    """Whether a `ConnectionRefusedError` is among the causes of `exc`."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.append(current)
        current = current.__cause__ or current.__context__
    return False


# -- the transport ------------------------------------------------------------------------------


def balancing_transport(
    replicas: Replicas, base_url: str, send: httpx2.AsyncClient, *, owns_client: bool
) -> httpx2.AsyncBaseTransport:
    """An httpx2 transport that sends each request under `base_url` to a replica of
    `replicas` through `send` (see the module doc); `owns_client`: close `send` with it."""
    return _transport_class()(replicas, base_url, send, owns_client)


_Transport = Callable[[Replicas, str, "httpx2.AsyncClient", bool], "httpx2.AsyncBaseTransport"]


@functools.cache
def _transport_class() -> _Transport:
    """The transport's class (built on first use: importing this module skips httpx2)."""
    import httpx2

    class CountedStream(httpx2.AsyncByteStream):
        """An answer's body; its request stops counting as in flight when it is closed."""

        def __init__(self, stream: httpx2.AsyncByteStream, done: Callable[[], None]) -> None:
            self._stream = stream
            self._done: Callable[[], None] | None = done

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self._stream:
                yield chunk

        async def aclose(self) -> None:
            done, self._done = self._done, None
            try:
                await self._stream.aclose()
            finally:
                if done is not None:
                    done()

    class BalancingTransport(httpx2.AsyncBaseTransport):
        def __init__(
            self, replicas: Replicas, base_url: str, send: httpx2.AsyncClient, owns_client: bool
        ) -> None:
            self.replicas = replicas
            self._send = send
            self._owns_client = owns_client
            self._base = _target(httpx2.URL(base_url))
            self._targets = {
                id(replica): _target(httpx2.URL(replica.url)) for replica in replicas.replicas
            }

        def _rewritten(self, request: httpx2.Request, replica: Replica) -> httpx2.Request:
            scheme, netloc, prefix = self._targets[id(replica)]
            rest = request.url.raw_path[len(self._base[2]) :]
            url = request.url.copy_with(scheme=scheme, netloc=netloc, raw_path=prefix + rest)
            headers = request.headers.copy()
            headers["Host"] = netloc.decode("ascii")
            return httpx2.Request(
                request.method,
                url,
                headers=headers,
                stream=request.stream,
                extensions=request.extensions,
            )

        def _under_base(self, url: httpx2.URL) -> bool:
            scheme, netloc, prefix = self._base
            path = url.raw_path.split(b"?", 1)[0]
            return (
                url.scheme == scheme
                and url.netloc == netloc
                and (path == prefix or path.startswith(prefix + b"/"))
            )

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            if not self._under_base(request.url):
                answer = await self._send.send(request, stream=True, follow_redirects=False)
                return self._passed_on(answer, answer.stream)
            replicas = self.replicas
            replica = replicas.choose(affinity_key.get())
            replicas.started(replica)
            try:
                answer = await self._send.send(
                    self._rewritten(request, replica), stream=True, follow_redirects=False
                )
            except BaseException as exc:
                replicas.finished(replica)
                cause = _down_cause(exc)
                if cause is not None:
                    replicas.mark_down(replica, cause)
                raise
            if answer.status_code in DOWN_STATUSES:
                replicas.mark_down(replica, f"HTTP {answer.status_code}")
            else:
                replicas.mark_up(replica, how=f"HTTP {answer.status_code}")
            stream = answer.stream
            assert isinstance(stream, httpx2.AsyncByteStream)
            done = functools.partial(replicas.finished, replica)
            return self._passed_on(answer, CountedStream(stream, done))

        @staticmethod
        def _passed_on(answer: httpx2.Response, stream: object) -> httpx2.Response:
            """`answer` as this transport's own response, with its body as `stream`."""
            assert isinstance(stream, httpx2.AsyncByteStream)
            return httpx2.Response(
                answer.status_code,
                headers=answer.headers,
                stream=stream,
                extensions=answer.extensions,
            )

        async def aclose(self) -> None:
            try:
                await self.replicas.aclose()
            finally:
                if self._owns_client:
                    await self._send.aclose()

    return BalancingTransport


def _target(url: httpx2.URL) -> tuple[str, bytes, bytes]:
    """A replica's scheme, netloc and path prefix (no trailing slash)."""
    return url.scheme, url.netloc, url.raw_path.split(b"?", 1)[0].rstrip(b"/")


async def probe_models(
    send: httpx2.AsyncClient, replica: Replica, *, headers: dict[str, str], timeout_s: float
) -> bool:
    """Whether `GET {replica}/models` answers 200 within `timeout_s` (a health check)."""
    import httpx2

    try:
        response = await send.get(
            replica.url.rstrip("/") + "/models", headers=headers, timeout=timeout_s
        )
    except httpx2.HTTPError:
        return False
    return response.status_code == 200
