"""What a run must pass to start: at most `max_runs_per_key` in flight per API key, none while
draining.

`Gate.run_slot(request)` wraps each run: per key (or for the whole server when no keys are
set) at most `max_runs_per_key` runs in flight, past it 429 `too_many_runs` with
`Retry-After: 1`; while draining (after SIGTERM, `Gate.start_draining()`), 503 `draining`.
`await gate.drained(timeout)` waits for the runs in flight to end. `tracked_run` holds a slot
and counts the run in the metrics; routes use it around every run.

The key of a request is the fingerprint the guard in front of the routes put in its scope
(`KEY_SCOPE`, read with `key_id`; `agent_runtime.server.guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.types import Scope

from agent_runtime.server.errors import APIError

if TYPE_CHECKING:
    from agent_runtime.server.options import ServeOptions
    from agent_runtime.server.state import ServerState

__all__ = [
    "KEY_SCOPE",
    "RETRY_AFTER_DRAINING_S",
    "Gate",
    "RunTally",
    "draining_error",
    "key_id",
    "tracked_run",
]

KEY_SCOPE = "agent_runtime.key_id"
"""The scope entry that holds the fingerprint of the request's API key ("" without keys)."""

RETRY_AFTER_DRAINING_S = 5
"""`Retry-After` of a 503 while draining: by then another instance is likely up."""


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
