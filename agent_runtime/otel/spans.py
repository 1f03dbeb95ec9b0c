"""`OtelTracing`: a runtime's trace records as OpenTelemetry spans of the GenAI semantic
conventions (see `agent_runtime.otel`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent_runtime.redact import Redactor, own_logger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

__all__ = ["CLOSE_TIMEOUT_S", "DEFAULT_SERVICE_NAME", "AgentTarget", "OtelTracing"]

DEFAULT_SERVICE_NAME = "agent-runtime"
CLOSE_TIMEOUT_S = 3.0
"""How long closing waits for the collector to take the last spans."""

logger = own_logger(__name__)

_SLACK_NS = 1_000_000
_MAX_TEXT = 100_000
# Fields of records that are never copied into event attributes: text of the conversation.
_CONTENT = frozenset({"input", "output", "arguments", "final_output", "answer", "problems"})
_BASIC = frozenset({"trace_id", "type", "time", "agent", "started_at", "duration_ms"})
_TOOL_ERRORS = {"abandoned": "abandoned", "SystemExit": "exit", "KeyboardInterrupt": "exit",
                "unsendable result": "unsendable"}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentTarget:
    """What the spans say about an agent's model: from its backend in agents.yaml."""

    provider: str = "openai"
    model: str = ""
    server_address: str | None = None
    server_port: int | None = None


@dataclass(slots=True)
class _Run:
    """The open spans of a run (by its trace id)."""

    root: Span
    current: Span
    agent: str
    """The agent the run was asked for."""
    active: str
    """The agent the run is with now (after handoffs)."""
    session: str | None
    retries: list[Mapping[str, Any]] = field(default_factory=list)
    tool_errors: dict[str, str] = field(default_factory=dict)
    nested: list[Mapping[str, Any]] = field(default_factory=list)
    """Calls of agents used as tools, kept until the tool call they belong to is recorded."""


class OtelTracing:
    """Turns a runtime's trace records into OpenTelemetry spans and exports them.

    ```python
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    tracing = OtelTracing(lambda: memory, include_sensitive_data=True)
    stop = runtime.observe(tracing)
    ...
    tracing.close()  # flush: memory.get_finished_spans() has them all
    ```

    Args:
        exporter: makes the span exporter (called when the first record comes, and again for
            records that come after `close()`).
        service_name: `service.name` of the spans' resource.
        include_sensitive_data: send prompts, outputs, tool arguments and results.
        redactor: masks secrets in every text sent (default: the patterns of
            `agent_runtime.redact` only).
        agents: provider, model and server of each agent (`agent_targets(config)`).
        max_field_chars: longest text of one attribute; longer text is cut.
    """

    def __init__(
        self,
        exporter: Callable[[], SpanExporter],
        *,
        service_name: str = DEFAULT_SERVICE_NAME,
        include_sensitive_data: bool = False,
        redactor: Redactor | None = None,
        agents: Mapping[str, AgentTarget] | None = None,
        max_field_chars: int = _MAX_TEXT,
    ) -> None:
        self._make_exporter = exporter
        self.service_name = service_name
        self.include_sensitive_data = include_sensitive_data
        self.redactor = redactor if redactor is not None else Redactor()
        self.agents = dict(agents or {})
        self.max_field_chars = max_field_chars
        self._lock = threading.RLock()
        self._provider: TracerProvider | None = None
        self._exporter: SpanExporter | None = None
        self._tracer: Tracer | None = None
        self._next_trace_id: int | None = None
        self._runs: dict[str, _Run] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def _start(self) -> Tracer:
        if self._tracer is not None:
            return self._tracer
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        owner = self

        class RunTraceIds(RandomIdGenerator):
            """A run's own trace id for its spans (random for anything else)."""

            def generate_trace_id(self) -> int:
                wanted, owner._next_trace_id = owner._next_trace_id, None
                return wanted or super().generate_trace_id()

        provider = TracerProvider(
            resource=Resource.create({"service.name": self.service_name}),
            id_generator=RunTraceIds(),
        )
        self._exporter = self._make_exporter()
        provider.add_span_processor(BatchSpanProcessor(self._exporter))
        self._provider = provider
        self._tracer = provider.get_tracer("agent_runtime", _version())
        return self._tracer

    def attach(self, runtime: Any) -> Callable[[], None]:
        """Export the runs of `runtime` (`Runtime.observe`); returns the function that stops."""
        stop: Callable[[], None] = runtime.observe(self)
        return stop

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Export the spans ended so far; whether that finished within `timeout_s`."""
        with self._lock:
            provider = self._provider
        return provider.force_flush(int(timeout_s * 1000)) if provider is not None else True

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Export what is left and stop the exporter's thread (blocks while it sends: call it
        from a thread in async code). Runs still open are ended as they are. Spans the
        collector has not taken within `timeout_s` (it is down, say) are dropped, with a
        warning, instead of holding the process up while the exporter retries."""
        with self._lock:
            provider, self._provider, self._tracer = self._provider, None, None
            exporter, self._exporter = self._exporter, None
            runs, self._runs = self._runs, {}
        for run in runs.values():
            if run.current is not run.root:
                run.current.end()
            run.root.end()
        if provider is None or exporter is None:
            return
        # The SDK's own flush waits for every retry of the exporter (seconds when the
        # collector is down); shutting the exporter down ends them.
        timer = threading.Timer(timeout_s, _give_up, (exporter, timeout_s))
        timer.daemon = True
        timer.start()
        try:
            provider.shutdown()
        finally:
            timer.cancel()

    # -- records --------------------------------------------------------------------------------

    def __call__(self, record: Mapping[str, Any]) -> None:
        """Turn one trace record into spans (the listener given to `Runtime.observe`)."""
        kind = record.get("type")
        with self._lock:
            if kind in ("run_start", "run_resume"):
                self._run_start(record)
                return
            run = self._runs.get(str(record.get("trace_id")))
            if run is None:
                return
            if kind in ("model_call", "tool_call") and record.get("agent") not in (
                None,
                run.active,
            ):
                # A call inside an agent used as a tool: its records come before that tool
                # call's, which its spans go under.
                run.nested.append(record)
            elif kind == "model_call":
                self._model_call(run, record, run.current)
            elif kind == "tool_call":
                self._tool_call(run, record, run.current)
            elif kind == "tool_error":
                error = "mcp" if "server" in record else _TOOL_ERRORS.get(str(record.get("error")))
                run.tool_errors[str(record.get("name"))] = error or "tool_error"
            elif kind == "retry":
                run.retries.append(record)
            elif kind == "handoff":
                self._handoff(run, record)
            elif kind == "run_end":
                self._run_end(run, record)
            else:
                run.current.add_event(
                    f"agent_runtime.{kind}", self._event_attributes(record), _ns(record)
                )

    def _run_start(self, record: Mapping[str, Any]) -> None:
        from opentelemetry.trace import SpanKind

        tracer = self._start()
        trace_id = str(record.get("trace_id") or "")
        agent = str(record.get("agent") or "")
        session = record.get("session") if isinstance(record.get("session"), str) else None
        self._next_trace_id = _otel_trace_id(trace_id)
        attributes = self._agent_attributes(agent, session)
        if record.get("type") == "run_resume":
            attributes["agent_runtime.resumed"] = True
        if self.include_sensitive_data and record.get("input") is not None:
            attributes["gen_ai.input.messages"] = self._text(_input_messages(record["input"]))
        root = tracer.start_span(
            f"invoke_agent {agent}".strip(),
            kind=SpanKind.INTERNAL,
            attributes=_clean(attributes),
            start_time=_ns(record),
        )
        self._next_trace_id = None
        self._runs[trace_id] = _Run(
            root=root, current=root, agent=agent, active=agent, session=session
        )

    def _agent_attributes(self, agent: str, session: str | None) -> dict[str, Any]:
        target = self.agents.get(agent, AgentTarget())
        return {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": target.provider,
            "gen_ai.agent.name": agent,
            "gen_ai.request.model": target.model or None,
            "gen_ai.conversation.id": session,
        }

    def _child(
        self,
        run: _Run,
        name: str,
        attributes: Mapping[str, Any],
        start: int,
        parent: Span,
        *,
        client: bool = False,
    ) -> Span:
        from opentelemetry.trace import SpanKind, set_span_in_context

        assert self._tracer is not None
        return self._tracer.start_span(
            name,
            context=set_span_in_context(parent),
            kind=SpanKind.CLIENT if client else SpanKind.INTERNAL,
            attributes=_clean(attributes),
            start_time=start,
        )

    def _model_call(self, run: _Run, record: Mapping[str, Any], parent: Span) -> None:
        agent = str(record.get("agent") or run.agent)
        target = self.agents.get(agent, AgentTarget())
        model = str(record.get("model") or target.model)
        usage = record.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": target.provider,
            "gen_ai.agent.name": agent,
            "gen_ai.request.model": model or None,
            "gen_ai.response.id": record.get("response_id"),
            "gen_ai.conversation.id": run.session,
            "gen_ai.usage.input_tokens": usage.get("input_tokens"),
            "gen_ai.usage.output_tokens": usage.get("output_tokens"),
            "gen_ai.usage.reasoning.output_tokens": usage.get("reasoning_tokens"),
            "server.address": target.server_address,
            "server.port": target.server_port,
        }
        output = record.get("output")
        if self.include_sensitive_data and isinstance(output, list):
            attributes["gen_ai.output.messages"] = self._text(_output_messages(output))
        start, end = _times(record)
        span = self._child(run, f"chat {model}".strip(), attributes, start, parent, client=True)
        for retry in run.retries:
            span.add_event("agent_runtime.retry", self._event_attributes(retry), _ns(retry))
        run.retries.clear()
        span.end(end_time=end)

    def _tool_call(self, run: _Run, record: Mapping[str, Any], parent: Span) -> None:
        from opentelemetry.trace import Status, StatusCode

        name = str(record.get("name") or "")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": record.get("call_id"),
            "gen_ai.tool.type": "function",
            "gen_ai.agent.name": record.get("agent"),
            "gen_ai.conversation.id": run.session,
        }
        output = record.get("output")
        if self.include_sensitive_data:
            if record.get("arguments") is not None:
                attributes["gen_ai.tool.call.arguments"] = self._text(record["arguments"])
            if output is not None:
                attributes["gen_ai.tool.call.result"] = self._text(output)
        error = run.tool_errors.pop(name, None)
        failed = record.get("failed") is True or (
            isinstance(output, str) and output.startswith("Error:")
        )
        if error is None and failed:
            error = "tool_error"
        if error is not None:
            attributes["error.type"] = error
        start, end = _times(record)
        span = self._child(run, f"execute_tool {name}".strip(), attributes, start, parent)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR))
        inside = [each for each in run.nested if _within(each, start, end)]
        if inside:
            run.nested = [each for each in run.nested if not _within(each, start, end)]
            self._nested_run(run, inside, span)
        span.end(end_time=end)

    def _nested_run(self, run: _Run, records: list[Mapping[str, Any]], tool: Span) -> None:
        """The calls of an agent used as a tool, under an `invoke_agent` span of that agent
        below the tool's span (its own agent tools' calls in turn below theirs)."""
        agent = str(records[-1].get("agent"))  # its final answer is its last call
        own = [each for each in records if each.get("agent") == agent]
        run.nested += [each for each in records if each.get("agent") != agent]
        times = [_times(each) for each in own]
        span = self._child(
            run,
            f"invoke_agent {agent}",
            self._agent_attributes(agent, run.session),
            min(start for start, _ in times),
            tool,
        )
        for each in own:
            if each.get("type") == "model_call":
                self._model_call(run, each, span)
            else:
                self._tool_call(run, each, span)
        span.end(end_time=max(end for _, end in times))

    def _handoff(self, run: _Run, record: Mapping[str, Any]) -> None:
        to_agent = str(record.get("to_agent") or "")
        at = _ns(record)
        run.root.add_event(
            "agent_runtime.handoff",
            {
                "gen_ai.agent.name": str(record.get("agent") or ""),
                "agent_runtime.to_agent": to_agent,
            },
            at,
        )
        if run.current is not run.root:
            run.current.end(end_time=at)
        run.active = to_agent
        run.current = self._child(
            run,
            f"invoke_agent {to_agent}".strip(),
            self._agent_attributes(to_agent, run.session),
            at,
            run.root,
        )

    def _run_end(self, run: _Run, record: Mapping[str, Any]) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._runs.pop(str(record.get("trace_id")), None)
        at = _ns(record)
        leftover, run.nested = run.nested, []
        for each in leftover:  # calls of an agent tool whose own call was never recorded
            if each.get("type") == "model_call":
                self._model_call(run, each, run.current)
            else:
                self._tool_call(run, each, run.current)
        for retry in run.retries:  # retries of a model call that failed in the end
            run.current.add_event("agent_runtime.retry", self._event_attributes(retry), _ns(retry))
        outcome = str(record.get("outcome") or "")
        root = run.root
        root.set_attribute("agent_runtime.outcome", outcome)
        if isinstance(record.get("turns"), int):
            root.set_attribute("agent_runtime.turns", record["turns"])
        usage = record.get("usage")
        if isinstance(usage, Mapping):
            for key, attribute in (
                ("input_tokens", "gen_ai.usage.input_tokens"),
                ("output_tokens", "gen_ai.usage.output_tokens"),
                ("reasoning_tokens", "gen_ai.usage.reasoning.output_tokens"),
            ):
                if isinstance(usage.get(key), int):
                    root.set_attribute(attribute, usage[key])
        if self.include_sensitive_data and record.get("final_output") is not None:
            answer = record["final_output"]
            text = answer if isinstance(answer, str) else _json(answer)
            message = [{"role": "assistant", "parts": [{"type": "text", "content": text}],
                        "finish_reason": "stop"}]  # fmt: skip
            root.set_attribute("gen_ai.output.messages", self._text(_json(message)))
        if outcome == "failed":
            error = str(record.get("error") or "")
            kind, _, _ = error.partition(":")
            kind = kind if kind.isidentifier() else "_OTHER"
            for span in {id(run.current): run.current, id(root): root}.values():
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR, self._text(error)))
        if run.current is not root:
            run.current.end(end_time=at)
        root.end(end_time=at)

    # -- text -----------------------------------------------------------------------------------

    def _text(self, value: object) -> str:
        """Text for an attribute: JSON for what is not text, secrets masked, cut when long."""
        text = value if isinstance(value, str) else _json(value)
        limit = self.max_field_chars
        if len(text) > limit:
            return self.redactor.text(text[:limit]) + f"…[truncated {len(text) - limit} chars]"
        return self.redactor.text(text)

    def _event_attributes(self, record: Mapping[str, Any]) -> dict[str, AttributeValue]:
        """The scalar fields of a record (no conversation text) as event attributes."""
        attributes: dict[str, AttributeValue] = {}
        for key, value in record.items():
            if key in _BASIC or key in _CONTENT or value is None:
                continue
            if isinstance(value, str):
                attributes[f"agent_runtime.{key}"] = self._text(value)
            elif isinstance(value, bool | int | float):
                attributes[f"agent_runtime.{key}"] = value
        return attributes


# -- helpers ------------------------------------------------------------------------------------


def _give_up(exporter: SpanExporter, timeout_s: float) -> None:
    logger.warning(
        "the OpenTelemetry collector did not take the last spans within %g s; they are dropped",
        timeout_s,
    )
    exporter.shutdown()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agent-runtime")
    except PackageNotFoundError:
        return "dev"


def _otel_trace_id(trace_id: str) -> int | None:
    """The 128-bit id in `trace_<32 hex>` (None for any other text)."""
    digits = trace_id.removeprefix("trace_")
    if len(digits) != 32:
        return None
    try:
        return int(digits, 16) or None
    except ValueError:
        return None


def _ns(record: Mapping[str, Any]) -> int:
    value = record.get("time")
    return int(float(value) * 1e9) if isinstance(value, int | float) else 0


def _times(record: Mapping[str, Any]) -> tuple[int, int]:
    """Start and end (ns) of a call: `started_at` and `duration_ms` when the record has them,
    else its end (`time`) less its duration, else a moment at `time`."""
    end = _ns(record)
    took = record.get("duration_ms")
    started = record.get("started_at")
    if isinstance(started, int | float):
        start = int(float(started) * 1e9)
        if isinstance(took, int | float):
            end = start + int(took * 1e6)
        return min(start, end), end
    if isinstance(took, int | float) and took >= 0:
        return end - int(took * 1e6), end
    return end, end


def _within(record: Mapping[str, Any], start: int, end: int) -> bool:
    """Whether a call's record falls within `start`..`end` (1 ms of slack: two clocks)."""
    first, last = _times(record)
    return start - _SLACK_NS <= first and last <= end + _SLACK_NS


def _clean(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    return {key: value for key, value in attributes.items() if value is not None}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _input_messages(items: object) -> str:
    """A run's input items in the conventions' message form (JSON)."""
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    messages = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, Mapping) and isinstance(item.get("content"), str):
            role = str(item.get("role") or "user")
            messages.append({"role": role, "parts": [{"type": "text", "content": item["content"]}]})
        else:
            messages.append({"role": "user", "parts": [{"type": "text", "content": _json(item)}]})
    return _json(messages)


def _output_messages(items: list[Any]) -> str:
    """A model call's Responses output items as one output message (JSON)."""
    parts: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            text = "".join(
                str(part.get("text", ""))
                for part in item.get("content") or item.get("summary") or []
                if isinstance(part, Mapping)
            )
            parts.append({"type": "reasoning", "content": text})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "name": item.get("name")}
            parts.append({"type": "tool_call", **call, "arguments": item.get("arguments")})
        elif kind == "message":
            for part in item.get("content") or []:
                if isinstance(part, Mapping) and "text" in part:
                    parts.append({"type": "text", "content": part["text"]})
    finish = "tool_call" if any(part["type"] == "tool_call" for part in parts) else "stop"
    return _json([{"role": "assistant", "parts": parts, "finish_reason": finish}])
