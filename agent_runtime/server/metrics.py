"""The server's Prometheus metrics, in a registry of its own per app (never the global one).

| metric                                           | type      | labels           |
|--------------------------------------------------|-----------|------------------|
| `agent_runtime_runs_total`                       | counter   | agent, outcome   |
| `agent_runtime_run_duration_seconds`             | histogram | agent, outcome   |
| `agent_runtime_runs_in_flight`                   | gauge     | agent            |
| `agent_runtime_model_calls_total`                | counter   | agent            |
| `agent_runtime_model_call_duration_seconds`      | histogram | agent            |
| `agent_runtime_tool_calls_total`                 | counter   | agent, tool      |
| `agent_runtime_tool_call_duration_seconds`       | histogram | agent, tool      |
| `agent_runtime_tokens_total`                     | counter   | agent, kind      |
| `agent_runtime_rejected_requests_total`          | counter   | reason           |

`outcome` is `completed`, `incomplete` (a run limit hit, or a client function call to
execute), `failed` or `cancelled`; token `kind` is `input`, `output` or `reasoning`;
`reason` is the status given: `401`, `413`, `429` or `503`. Model calls, tool calls and
tokens come from the runtime's trace records (`Runtime.observe`), so they count the calls of
every agent of a run (handoffs, agents used as tools), failed and cancelled runs included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from agent_runtime.runtime import Runtime

__all__ = ["Metrics", "Outcome"]

Outcome = Literal["completed", "incomplete", "failed", "cancelled"]

_RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TOKEN_KINDS = (("input_tokens", "input"), ("output_tokens", "output"),
                ("reasoning_tokens", "reasoning"))  # fmt: skip


class Metrics:
    """The counters of one served app; `render()` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter(
            "agent_runtime_runs", "Runs ended, by agent and outcome.", ["agent", "outcome"],
            registry=r,
        )  # fmt: skip
        self.run_seconds = Histogram(
            "agent_runtime_run_duration_seconds", "Time from a run's start to its end.",
            ["agent", "outcome"], buckets=_RUN_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "agent_runtime_runs_in_flight", "Runs going on now.", ["agent"], registry=r
        )
        self.model_calls = Counter(
            "agent_runtime_model_calls", "Calls to the model server, by agent.", ["agent"],
            registry=r,
        )  # fmt: skip
        self.model_seconds = Histogram(
            "agent_runtime_model_call_duration_seconds", "Time of one model call.", ["agent"],
            buckets=_CALL_BUCKETS, registry=r,
        )  # fmt: skip
        self.tool_calls = Counter(
            "agent_runtime_tool_calls", "Tool calls, by agent and tool.", ["agent", "tool"],
            registry=r,
        )  # fmt: skip
        self.tool_seconds = Histogram(
            "agent_runtime_tool_call_duration_seconds", "Time of one tool call.",
            ["agent", "tool"], buckets=_CALL_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "agent_runtime_tokens", "Tokens used by model calls, by agent and kind.",
            ["agent", "kind"], registry=r,
        )  # fmt: skip
        self.rejections = Counter(
            "agent_runtime_rejected_requests", "Requests refused, by status.", ["reason"],
            registry=r,
        )  # fmt: skip
        # The child of a metric for some label values, found once (`labels()` checks and
        # locks on every call: a few microseconds, several times per request).
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # -- what the routes report ----------------------------------------------------------------

    def run_started(self, agent: str) -> None:
        """A run of `agent` started."""
        self._child(self.in_flight, agent).inc()

    def run_finished(self, agent: str, outcome: Outcome, seconds: float) -> None:
        """A run of `agent` (the agent asked for) ended after `seconds`."""
        self._child(self.in_flight, agent).dec()
        self._child(self.runs, agent, outcome).inc()
        self._child(self.run_seconds, agent, outcome).observe(seconds)

    def rejected(self, reason: str) -> None:
        """A request was refused with status `reason` (`401`, `413`, `429`, `503`)."""
        self._child(self.rejections, reason).inc()

    # -- what the runtime reports --------------------------------------------------------------

    def model_call(
        self, agent: str, seconds: float | None, usage: Mapping[str, Any] | None = None
    ) -> None:
        """One model call of `agent` (its time, its token usage)."""
        self._child(self.model_calls, agent).inc()
        if seconds is not None:
            self._child(self.model_seconds, agent).observe(seconds)
        for field, kind in _TOKEN_KINDS:
            count = (usage or {}).get(field)
            if isinstance(count, int) and count > 0:
                self._child(self.tokens, agent, kind).inc(count)

    def tool_call(self, agent: str, tool: str, seconds: float | None) -> None:
        """One tool call of `agent`."""
        self._child(self.tool_calls, agent, tool).inc()
        if seconds is not None:
            self._child(self.tool_seconds, agent, tool).observe(seconds)

    def observe_record(self, record: Mapping[str, Any]) -> None:
        """Count a runtime trace record (`model_call`, `tool_call`; others are ignored)."""
        kind = record.get("type")
        if kind not in ("model_call", "tool_call"):
            return
        agent = str(record.get("agent") or "-")
        took = record.get("duration_ms")
        seconds = took / 1000 if isinstance(took, int | float) else None
        if kind == "model_call":
            usage = record.get("usage")
            self.model_call(agent, seconds, usage if isinstance(usage, Mapping) else None)
        else:
            self.tool_call(agent, str(record.get("name") or "-"), seconds)

    def watch(self, runtime: Runtime) -> Callable[[], None]:
        """Count the model and tool calls of `runtime`'s runs; returns the function that
        stops it (call it when the app shuts down)."""
        return runtime.observe(self.observe_record)

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
