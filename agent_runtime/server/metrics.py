"""The server's Prometheus metrics: those of `agent_runtime.metrics`, in a registry of their own
per app, plus the requests refused.

| metric                                    | type    | labels |
|-------------------------------------------|---------|--------|
| `agent_runtime_rejected_requests_total`   | counter | reason |

`reason` is the status given: `401`, `413`, `429` or `503`. Runs are counted by the routes
(`Gate`), per request: the agent asked for, and how the response ended (`incomplete` also for
a client function call to execute); model calls, tool calls, retries and tokens come from the
runtime's trace records, so they count the calls of every agent of a run (handoffs, agents
used as tools), failed and cancelled runs included.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter

from agent_runtime.metrics import Metrics as RuntimeMetrics
from agent_runtime.metrics import Observable, Outcome

__all__ = ["Metrics", "Outcome"]


class Metrics(RuntimeMetrics):
    """The metrics of one served app; `render()` gives the Prometheus text format."""

    def __init__(self) -> None:
        super().__init__()
        self.rejections = Counter(
            "agent_runtime_rejected_requests", "Requests refused, by status.", ["reason"],
            registry=self.registry,
        )  # fmt: skip

    def rejected(self, reason: str) -> None:
        """A request was refused with status `reason` (`401`, `413`, `429`, `503`)."""
        self._child(self.rejections, reason).inc()

    def watch(self, runtime: Observable) -> Callable[[], None]:
        """Count the model and tool calls of `runtime`'s runs (the routes count the runs);
        returns the function that stops it (call it when the app shuts down)."""
        return self.attach(runtime, runs=False)
