"""What one served app shares between its routes: the runtime, the options, the response
store, the metrics and the run gate. Kept on `app.state.server` (`server_state(request)`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

    from agent_runtime.runtime import Runtime
    from agent_runtime.server.options import ServeOptions

__all__ = ["ServerState", "server_state"]


@dataclass(slots=True, kw_only=True)
class ServerState:
    """The per-app state (no global state: two apps in one process share nothing).

    Attributes:
        runtime: the agents served; the app does not close it unless it opened it.
        options: the server's settings.
        store: the responses kept (`agent_runtime.server.store.ResponseStore`).
        metrics: the app's Prometheus metrics (`agent_runtime.server.metrics`), or None.
        gate: the run gate (keys, concurrency, draining; `agent_runtime.server.gate`), or None.
        started_at: when the app was made (Unix seconds; the models' `created`).
        extra: room for other parts of the server to keep their own per-app values.
    """

    runtime: Runtime
    options: ServeOptions
    store: Any = None
    metrics: Any = None
    gate: Any = None
    started_at: int = field(default_factory=lambda: int(time.time()))
    extra: dict[str, Any] = field(default_factory=dict)


def server_state(request: Request) -> ServerState:
    """The `ServerState` of the app serving `request`."""
    state = request.app.state.server
    assert isinstance(state, ServerState), "app.state.server is not a ServerState"
    return state
