"""Prometheus metrics of a runtime's runs, in a registry of their own (never the global one).

```python
from agent_runtime.metrics import Metrics

metrics = Metrics()
stop = metrics.attach(runtime)            # count the runtime's runs from its trace records
server = metrics.serve("127.0.0.1", 9464)  # GET http://127.0.0.1:9464/metrics
body, content_type = metrics.render()     # or serve the text yourself
```

| metric                                        | type      | labels              |
|-----------------------------------------------|-----------|---------------------|
| `agent_runtime_runs_total`                    | counter   | agent, outcome      |
| `agent_runtime_run_duration_seconds`          | histogram | agent, outcome      |
| `agent_runtime_runs_in_flight`                | gauge     | agent               |
| `agent_runtime_model_calls_total`             | counter   | agent               |
| `agent_runtime_model_call_failures_total`     | counter   | agent, error        |
| `agent_runtime_model_call_duration_seconds`   | histogram | agent               |
| `agent_runtime_model_retries_total`           | counter   | backend, cause      |
| `agent_runtime_tokens_total`                  | counter   | agent, kind         |
| `agent_runtime_tool_calls_total`              | counter   | agent, tool         |
| `agent_runtime_tool_call_failures_total`      | counter   | agent, tool, error  |
| `agent_runtime_tool_call_duration_seconds`    | histogram | agent, tool         |

A run's `agent` is the agent it was asked for; a call's is the agent that made it (after a
handoff, or in an agent used as a tool). `outcome` is `completed`, `incomplete` (waiting for
an approval, or a run limit hit), `failed` or `cancelled`. Failures follow Prometheus' advice:
a `_total` of every call and a `_failures_total` beside it, so that the ratio is a query
away. A model call fails when the model server keeps failing after its retries (`error` is
the error's class, `BackendError` or `BackendUnavailableError`); each retry before it is
counted by its `cause` (`http_429`, `http_503`..., `connection`, `timeout`, `stream`,
`answer`: see `retry_cause_label`). A tool call fails when its result to the model is an
error: `error` is `abandoned` (it did not stop when its time ran out), `exit` (it tried to end
the program), `unsendable` (a result that cannot be sent), `mcp` (an MCP server's failure),
else `error` (it raised, timed out, got arguments it could not use...). Token `kind` is
`input`, `output` or `reasoning`. Durations are in seconds.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from agent_runtime.errors import AgentRuntimeError

__all__ = ["Metrics", "MetricsServer", "Observable", "Outcome", "retry_cause_label"]

Outcome = Literal["completed", "incomplete", "failed", "cancelled"]

_RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TOKEN_KINDS = (("input_tokens", "input"), ("output_tokens", "output"),
                ("reasoning_tokens", "reasoning"))  # fmt: skip
# The `error` of a `tool_error` record → the label value (a few, so that series stay few).
_TOOL_ERRORS = {"abandoned": "abandoned", "SystemExit": "exit", "KeyboardInterrupt": "exit",
                "unsendable result": "unsendable"}  # fmt: skip
_MODEL_ERRORS = ("BackendError", "BackendUnavailableError")
_ERROR_CLASS = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")
_HTTP_STATUS = re.compile(r"^HTTP (\d{3})\b")


class Observable(Protocol):
    """What `Metrics.attach` needs: `Runtime.observe`."""

    def observe(self, listener: Callable[[Mapping[str, Any]], object]) -> Callable[[], None]:
        """Call `listener` with every trace record; returns the function that stops it."""
        ...


@dataclass(slots=True)
class _Run:
    """What the metrics keep of a run in flight (by trace id)."""

    agent: str
    started: float
    tool_errors: dict[str, str] = field(default_factory=dict)


class Metrics:
    """Counters, histograms and gauges of runs, model calls and tool calls.

    Args:
        registry: where the metrics are registered (default: a new registry of their own;
            never the process-wide one, so that two runtimes or apps share nothing).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "agent_runtime_runs", "Runs ended, by agent asked for and outcome.",
            ["agent", "outcome"], registry=r,
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
        self.model_failures = Counter(
            "agent_runtime_model_call_failures",
            "Model calls that failed after their retries, by agent and error.",
            ["agent", "error"], registry=r,
        )  # fmt: skip
        self.model_seconds = Histogram(
            "agent_runtime_model_call_duration_seconds", "Time of one model call.", ["agent"],
            buckets=_CALL_BUCKETS, registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "agent_runtime_model_retries", "Model call attempts retried, by backend and cause.",
            ["backend", "cause"], registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "agent_runtime_tokens", "Tokens used by model calls, by agent and kind.",
            ["agent", "kind"], registry=r,
        )  # fmt: skip
        self.tool_calls = Counter(
            "agent_runtime_tool_calls", "Tool calls, by agent and tool.", ["agent", "tool"],
            registry=r,
        )  # fmt: skip
        self.tool_failures = Counter(
            "agent_runtime_tool_call_failures",
            "Tool calls whose result was an error, by agent, tool and error.",
            ["agent", "tool", "error"], registry=r,
        )  # fmt: skip
        self.tool_seconds = Histogram(
            "agent_runtime_tool_call_duration_seconds", "Time of one tool call.",
            ["agent", "tool"], buckets=_CALL_BUCKETS, registry=r,
        )  # fmt: skip
        # The child of a metric for some label values, found once (`labels()` checks and
        # locks on every call: a few microseconds, several times per call).
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # -- counting -------------------------------------------------------------------------------

    def attach(self, runtime: Observable, *, runs: bool = True) -> Callable[[], None]:
        """Count the runs of `runtime` (`Runtime.observe`); returns the function that stops.

        Args:
            runtime: the runtime (anything with `observe`).
            runs: count runs (`runs_total`, `run_duration_seconds`, `runs_in_flight`) from
                the records too; False when the caller counts them itself with
                `run_started` / `run_finished` (a server that knows how each request ended).
        """
        listener = self.observe_record if runs else self._observe_calls
        return runtime.observe(listener)

    def run_started(self, agent: str) -> None:
        """A run of `agent` started."""
        self._child(self.in_flight, agent).inc()

    def run_finished(self, agent: str, outcome: Outcome, seconds: float) -> None:
        """A run of `agent` (the agent asked for) ended after `seconds`."""
        self._child(self.in_flight, agent).dec()
        self._child(self.runs, agent, outcome).inc()
        self._child(self.run_seconds, agent, outcome).observe(seconds)

    def model_call(
        self, agent: str, seconds: float | None, usage: Mapping[str, Any] | None = None
    ) -> None:
        """One model call of `agent` (its time, its token usage)."""
        self._child(self.model_calls, agent).inc()
        if seconds is not None:
            self._child(self.model_seconds, agent).observe(seconds)
        for key, kind in _TOKEN_KINDS:
            count = (usage or {}).get(key)
            if isinstance(count, int) and count > 0:
                self._child(self.tokens, agent, kind).inc(count)

    def tool_call(
        self, agent: str, tool: str, seconds: float | None, *, error: str | None = None
    ) -> None:
        """One tool call of `agent`; `error` when its result was an error."""
        self._child(self.tool_calls, agent, tool).inc()
        if seconds is not None:
            self._child(self.tool_seconds, agent, tool).observe(seconds)
        if error is not None:
            self._child(self.tool_failures, agent, tool, error).inc()

    def observe_record(self, record: Mapping[str, Any]) -> None:
        """Count one trace record of a runtime (the listener `attach` installs)."""
        kind = record.get("type")
        if kind in ("run_start", "run_resume"):
            self._run_start(record)
        elif kind == "run_end":
            self._run_end(record, count=True)
        else:
            self._observe_calls(record)

    def _observe_calls(self, record: Mapping[str, Any]) -> None:
        kind = record.get("type")
        agent = _label(record.get("agent"))
        if kind == "model_call":
            usage = record.get("usage")
            self.model_call(agent, _seconds(record), usage if isinstance(usage, Mapping) else None)
        elif kind == "tool_call":
            name = _label(record.get("name"))
            with self._lock:
                run = self._runs.get(str(record.get("trace_id")))
                error = run.tool_errors.pop(name, None) if run is not None else None
            if error is None and _failed(record):
                error = "error"
            self.tool_call(agent, name, _seconds(record), error=error)
        elif kind == "tool_error":
            error = "mcp" if "server" in record else _TOOL_ERRORS.get(str(record.get("error")))
            with self._lock:
                run = self._runs.setdefault(
                    str(record.get("trace_id")), _Run(agent=agent, started=_time(record))
                )
                run.tool_errors[_label(record.get("name"))] = error or "error"
        elif kind == "retry":
            cause = retry_cause_label(str(record.get("cause") or ""))
            self._child(self.retries, _label(record.get("backend")), cause).inc()
        elif kind == "run_start" or kind == "run_resume":
            with self._lock:
                self._runs.setdefault(
                    str(record.get("trace_id")), _Run(agent=agent, started=_time(record))
                )
        elif kind == "run_end":
            self._run_end(record, count=False)

    def _run_start(self, record: Mapping[str, Any]) -> None:
        agent = _label(record.get("agent"))
        with self._lock:
            self._runs[str(record.get("trace_id"))] = _Run(agent=agent, started=_time(record))
        self.run_started(agent)

    def _run_end(self, record: Mapping[str, Any], *, count: bool) -> None:
        with self._lock:
            run = self._runs.pop(str(record.get("trace_id")), None)
        error = _error_class(record.get("error"))
        if error in _MODEL_ERRORS:
            agent = _label(record.get("agent"))
            self._child(self.model_calls, agent).inc()
            self._child(self.model_failures, agent, error).inc()
        if count and run is not None:
            seconds = max(0.0, _time(record) - run.started)
            self.run_finished(run.agent, _outcome(record, error), seconds)

    # -- showing --------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
        """Serve the metrics over HTTP on `host`:`port` (0: a free port) from a thread of
        its own, for a process that has no web server (a worker); `close()` stops it.

        Raises:
            AgentRuntimeError: the address cannot be listened on (taken, not this machine's).
        """
        from prometheus_client import start_http_server

        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise AgentRuntimeError(
                f"cannot serve the metrics on {_address(host, port)}: "
                f"{exc.strerror or exc}. Choose another port, or an address of this machine."
            ) from exc
        return MetricsServer(host=host, port=server.server_port, _server=server, _thread=thread)


@dataclass(slots=True, kw_only=True)
class MetricsServer:
    """The metrics served by `Metrics.serve`."""

    host: str
    port: int
    """The port listened on (the one picked when 0 was asked for)."""
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Where Prometheus scrapes: `http://HOST:PORT/metrics`."""
        return f"http://{_address(self.host, self.port)}/metrics"

    def close(self) -> None:
        """Stop serving and free the port."""
        with contextlib.suppress(OSError):
            self._server.shutdown()
            self._server.server_close()
        self._thread.join(timeout=5)


def retry_cause_label(cause: str) -> str:
    """The label of a retry's cause (the few words of `agent_runtime.backends.retry`): `http_`
    and the status (`http_429`, `http_503`), `connection`, `timeout`, `stream` (an answer
    that broke off), or `answer` (an answer that could not be used)."""
    status = _HTTP_STATUS.match(cause)
    if status:
        return f"http_{status.group(1)}"
    if "timed out" in cause:
        return "timeout"
    if cause.startswith(("connection", "the connection")):
        return "connection"
    if cause.startswith(("the answer broke off", "an error in the stream")):
        return "stream"
    return "answer"


def _failed(record: Mapping[str, Any]) -> bool:
    """Whether a `tool_call` record is of a call whose result was an error."""
    if record.get("failed") is True:
        return True
    output = record.get("output")  # records written before `failed` was
    return isinstance(output, str) and output.startswith("Error:")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _label(value: object) -> str:
    return str(value) if value else "-"


def _time(record: Mapping[str, Any]) -> float:
    value = record.get("time")
    return float(value) if isinstance(value, int | float) else 0.0


def _seconds(record: Mapping[str, Any]) -> float | None:
    took = record.get("duration_ms")
    return took / 1000 if isinstance(took, int | float) and took >= 0 else None


def _error_class(error: object) -> str | None:
    """`BackendError` of a `run_end` error `"BackendError: …"`."""
    match = _ERROR_CLASS.match(error) if isinstance(error, str) else None
    return match.group(1) if match else None


def _outcome(record: Mapping[str, Any], error: str | None) -> Outcome:
    outcome = record.get("outcome")
    if outcome == "completed":
        return "completed"
    if outcome == "cancelled":
        return "cancelled"
    if outcome == "awaiting_approval" or error == "RunLimitError":
        return "incomplete"
    return "failed"
