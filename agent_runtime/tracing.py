"""Local tracing: every model call and tool call of a run as JSON lines in a file.

The Agents SDK's own tracing is turned off for every run (it would export to OpenAI's cloud).
Instead the runtime's run hooks write records like

    {"trace_id": "trace_…", "type": "model_call", "agent": "weather-haiku", "model": "…",
     "started_at": 1763800000.12, "duration_ms": 812.4, "usage": {...}, "output": [...]}
    {"trace_id": "trace_…", "type": "tool_call", "agent": "weather-haiku",
     "name": "get_weather", "call_id": "call_…", "arguments": "{\\"city\\":\\"Tokyo\\"}",
     "output": "…", "duration_ms": 3.1}

plus one `run_start` and one `run_end` record per run. Secrets are never written; with
`include_sensitive_data: false` prompts, arguments and outputs are left out too.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.guards import CallGuard

if TYPE_CHECKING:
    from agents import RunHooks

__all__ = [
    "RunTrace",
    "TraceWriter",
    "current_trace",
    "hooks",
    "in_nested_run",
    "new_trace_id",
    "quiet_sdk_model_errors",
]


def new_trace_id() -> str:
    """A fresh trace id (`trace_` + 32 hex)."""
    return f"trace_{uuid.uuid4().hex}"


class TraceWriter:
    """Appends trace records to a JSON-lines file; shared by all runs of a runtime."""

    def __init__(self, path: str | Path | None, *, include_sensitive_data: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.include_sensitive_data = include_sensitive_data
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (no-op when tracing is off)."""
        if self.path is None:
            return
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._file is None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                except OSError as exc:
                    raise AgentRuntimeError(
                        f"cannot open the trace file {self.path}: {exc.strerror or exc}. Set "
                        "`tracing.path` in agents.yaml to a file in a folder you can write to, "
                        "or turn tracing off (`tracing: {enabled: false}`)."
                    ) from exc
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


@dataclass(slots=True)
class RunTrace:
    """The tracing state of one run (also seen by nested runs of agents used as tools)."""

    writer: TraceWriter
    guard: CallGuard = field(default_factory=CallGuard)
    trace_id: str = field(default_factory=new_trace_id)
    agent: str = ""
    last_input: list[Any] = field(default_factory=list)
    _started: dict[object, float] = field(default_factory=dict)

    def record(self, kind: str, **fields: Any) -> None:
        self.writer.write({"trace_id": self.trace_id, "type": kind, "time": time.time(), **fields})

    def sensitive(self, value: Any) -> Any:
        return value if self.writer.include_sensitive_data else None


current_trace: contextvars.ContextVar[RunTrace | None] = contextvars.ContextVar(
    "agent_runtime_trace", default=None
)
"""The trace of the run this task belongs to (tool and nested agent tasks inherit it)."""

in_nested_run: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agent_runtime_nested", default=False
)
"""True inside the run of an agent used as a tool (set by the tool, seen by its tasks)."""


# The Agents SDK logs every failed model call on its logger, at ERROR, without details
# ("Error getting response (request_id: None)"); inside a run the runtime raises its own error for
# the same failure, with the backend, URL and cause, and writes it to the trace.
_SDK_LOGGER = "openai.agents"
_SDK_MODEL_ERRORS = ("Error getting response", "Error streaming response")


class _SdkModelErrorFilter(logging.Filter):
    """Drops the SDK's model-call error line when it comes from a run of a `Runtime`; the same
    line from any other use of the SDK in the process passes untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        if current_trace.get() is None or record.levelno != logging.ERROR:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is not the SDK's line
            return True
        return not message.startswith(_SDK_MODEL_ERRORS)


def quiet_sdk_model_errors() -> None:
    """Install the filter on the SDK's logger, once per process. It changes nothing outside runs
    of a `Runtime` and sets no level or handler."""
    logger = logging.getLogger(_SDK_LOGGER)
    if not any(isinstance(f, _SdkModelErrorFilter) for f in logger.filters):
        logger.addFilter(_SdkModelErrorFilter())


def _task_key() -> object:
    import asyncio

    return asyncio.current_task()


@functools.cache
def _hooks_class() -> type[RunHooks[Any]]:
    from agents import Agent, ModelResponse, RunContextWrapper, RunHooks, Tool

    class TraceHooks(RunHooks[Any]):
        """Writes model and tool calls of the current run to its trace."""

        async def on_agent_start(self, context: Any, agent: Agent[Any]) -> None:
            trace = current_trace.get()
            if trace is not None:
                trace.agent = agent.name

        async def on_llm_start(
            self,
            context: RunContextWrapper[Any],
            agent: Agent[Any],
            system_prompt: str | None,
            input_items: list[Any],
        ) -> None:
            trace = current_trace.get()
            if trace is not None:
                trace._started[("llm", _task_key())] = time.perf_counter()

        async def on_llm_end(
            self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
        ) -> None:
            trace = current_trace.get()
            if trace is None:
                return
            started = trace._started.pop(("llm", _task_key()), None)
            usage = response.usage
            model = (
                agent.model if isinstance(agent.model, str) else getattr(agent.model, "model", "")
            )
            trace.record(
                "model_call",
                agent=agent.name,
                model=model,
                duration_ms=_ms(started),
                response_id=response.response_id,
                usage={
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "reasoning_tokens": usage.output_tokens_details.reasoning_tokens,
                },
                output=trace.sensitive(
                    [item.model_dump(exclude_none=True) for item in response.output]
                ),
            )

        async def on_tool_start(
            self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool
        ) -> None:
            trace = current_trace.get()
            if trace is not None:
                call_id = getattr(context, "tool_call_id", None)
                trace._started[("tool", call_id)] = time.perf_counter()

        async def on_tool_end(
            self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
        ) -> None:
            trace = current_trace.get()
            if trace is None:
                return
            call_id = getattr(context, "tool_call_id", None)
            started = trace._started.pop(("tool", call_id), None)
            trace.record(
                "tool_call",
                agent=agent.name,
                name=getattr(tool, "name", type(tool).__name__),
                call_id=call_id,
                arguments=trace.sensitive(getattr(context, "tool_arguments", None)),
                output=trace.sensitive(str(result)),
                duration_ms=_ms(started),
            )

        async def on_handoff(
            self, context: RunContextWrapper[Any], from_agent: Agent[Any], to_agent: Agent[Any]
        ) -> None:
            trace = current_trace.get()
            if trace is not None:
                trace.record("handoff", agent=from_agent.name, to_agent=to_agent.name)

    return TraceHooks


def _ms(started: float | None) -> float | None:
    return None if started is None else round((time.perf_counter() - started) * 1000, 3)


def hooks() -> RunHooks[Any]:
    """Run hooks that trace into the current run's `RunTrace` (via `current_trace`)."""
    return _hooks_class()()
