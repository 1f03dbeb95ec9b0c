"""Local tracing: every model call and tool call of a run as JSON lines in a file.

The Agents SDK's own tracing is turned off for every run (it would export to OpenAI's cloud).
Instead the runtime's run hooks write records like

    {"trace_id": "trace_…", "type": "model_call", "agent": "weather-haiku", "model": "…",
     "started_at": 1763800000.12, "duration_ms": 812.4, "usage": {...}, "output": [...]}
    {"trace_id": "trace_…", "type": "tool_call", "agent": "weather-haiku",
     "name": "get_weather", "call_id": "call_…", "arguments": "{\\"city\\":\\"Tokyo\\"}",
     "output": "…", "duration_ms": 3.1}

plus one `run_start` and one `run_end` record per run. Secrets are never written: every
record passes through the runtime's `Redactor` (configured keys, header values, URL passwords,
`Authorization` and `Bearer` values); with `include_sensitive_data: false` prompts, arguments
and outputs are left out too.

A text field longer than `tracing.max_field_chars` (100,000) characters is cut, with a note
`…[truncated N chars]`. Text that is not valid Unicode (a lone surrogate, as `os.listdir` gives
for a file name that is not UTF-8) is written as a JSON escape (`"\\udc80"`), which JSON readers
turn back into the same text (strict ones into U+FFFD). A trace file that cannot be written to
(a full disk) never fails a run: the first failure is logged as a warning, and the writer writes
no more.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.guards import CallGuard
from agent_runtime.redact import MASK, Redactor, is_secret_key, own_logger

if TYPE_CHECKING:
    from agents import RunHooks

__all__ = [
    "DEFAULT_MAX_FIELD_CHARS",
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


logger = own_logger(__name__)

DEFAULT_MAX_FIELD_CHARS = 100_000
"""The default of `tracing.max_field_chars`."""

# Text a little past the cut is redacted too, so that a secret across the cut is masked whole.
_REDACTION_MARGIN = 4096
# What a record keeps when it cannot be written whole (nested too deeply, a value without text).
_BASIC_FIELDS = ("trace_id", "type", "time", "agent", "name", "call_id")


class TraceWriter:
    """Appends trace records to a JSON-lines file; shared by all runs of a runtime.

    Args:
        path: the file (its folder is created); None: tracing is off.
        include_sensitive_data: whether prompts, arguments and outputs go into records
            (`RunTrace.sensitive`).
        redactor: masks the secrets of the runtime's configuration in every record (default:
            the patterns of `agent_runtime.redact` only).
        max_field_chars: longest text kept in one field; longer text is cut with a note.
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        include_sensitive_data: bool = True,
        redactor: Redactor | None = None,
        max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.include_sensitive_data = include_sensitive_data
        self.redactor = redactor if redactor is not None else Redactor()
        self.max_field_chars = max_field_chars
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._failed = False
        self._listeners: list[Callable[[Mapping[str, Any]], object]] = []

    def listen(self, listener: Callable[[Mapping[str, Any]], object]) -> Callable[[], None]:
        """Call `listener` with every record of the runs (see `Runtime.observe`); returns the
        function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return stop

    def notify(self, record: Mapping[str, Any]) -> None:
        """Hand a record to the listeners; what one raises is logged, never fails a run."""
        for listener in tuple(self._listeners):
            try:
                listener(record)
            except Exception as exc:
                logger.warning(
                    "a trace listener failed on a %s record: %s: %s",
                    record.get("type"),
                    type(exc).__name__,
                    exc,
                )

    @property
    def failed(self) -> bool:
        """Whether writing failed once, so that this writer writes no more."""
        return self._failed

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (no-op when tracing is off or writing failed before).

        Raises:
            AgentRuntimeError: the file cannot be opened (its folder cannot be made, it is a
                folder...): `tracing.path` is to be fixed. Failures to write are only logged.
        """
        if self.path is None or self._failed:
            return
        line = self.encode(record)
        with self._lock:
            if self._failed:
                return
            if self._file is None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("ab")
                except OSError as exc:
                    raise AgentRuntimeError(
                        f"cannot open the trace file {self.path}: {exc.strerror or exc}. Set "
                        "`tracing.path` in agents.yaml to a file in a folder you can write to, "
                        "or turn tracing off (`tracing: {enabled: false}`)."
                    ) from exc
            try:
                self._file.write(line)
                self._file.flush()
            except OSError as exc:
                self._give_up(exc)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """One record as a line of JSON in UTF-8: secrets masked, long text cut, lone
        surrogates escaped; a record that cannot be written whole keeps its basic fields."""
        try:
            text = json.dumps(self._clean(record), ensure_ascii=False, default=self._other)
        except (ValueError, TypeError, RecursionError) as exc:
            basic = {key: record[key] for key in _BASIC_FIELDS if key in record}
            reason = "it is nested too deeply" if isinstance(exc, RecursionError) else _text(exc)
            basic["trace_error"] = f"the record could not be written whole: {reason}"
            text = json.dumps(self._clean(basic), ensure_ascii=False, default=self._other)
        return (text + "\n").encode("utf-8", "backslashreplace")

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._shorten(value)
        if isinstance(value, Mapping):
            return {
                self.redactor.text(str(key)): (
                    MASK if isinstance(item, str) and is_secret_key(key) else self._clean(item)
                )
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._clean(item) for item in value]
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
            return self._shorten(_text(value))  # JSON readers lose such numbers anyway
        return value

    def _other(self, value: object) -> str:
        """Text for a value JSON has no type for."""
        return self._shorten(_text(value))

    def _shorten(self, text: str) -> str:
        limit = self.max_field_chars
        if len(text) <= limit:
            return self.redactor.text(text)
        head = self.redactor.text(text[: limit + _REDACTION_MARGIN])[:limit]
        return f"{head}…[truncated {len(text) - limit} chars]"

    def _give_up(self, error: OSError) -> None:
        self._failed = True
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                self._file.close()
            self._file = None
        logger.warning(
            "cannot write the trace file %s: %s; no more records are written to it by this "
            "runtime (the runs go on). Free space there, or set `tracing.path` in agents.yaml "
            "to another file.",
            self.path,
            error.strerror or error,
        )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except (OSError, ValueError) as exc:
                    self._give_up(exc if isinstance(exc, OSError) else OSError(str(exc)))
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
        record = {"trace_id": self.trace_id, "type": kind, "time": time.time(), **fields}
        self.writer.notify(record)
        self.writer.write(record)

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
                # The SDK runs each hook in a task of its own (gathered with the agent's hooks):
                # a model call's start and end meet by the run's context, not by task.
                trace._started[("llm", id(context))] = time.perf_counter()

        async def on_llm_end(
            self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
        ) -> None:
            trace = current_trace.get()
            if trace is None:
                return
            started = trace._started.pop(("llm", id(context)), None)
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
                output=trace.sensitive(_text(result)),
                duration_ms=_ms(started),
            )

        async def on_handoff(
            self, context: RunContextWrapper[Any], from_agent: Agent[Any], to_agent: Agent[Any]
        ) -> None:
            trace = current_trace.get()
            if trace is not None:
                trace.record("handoff", agent=from_agent.name, to_agent=to_agent.name)

    return TraceHooks


def _text(value: object) -> str:
    """`str(value)`, or a description of it when that fails (a huge int, a broken `__str__`)."""
    try:
        return str(value)
    except Exception as exc:
        try:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception:
            reason = type(exc).__name__
        return f"<{type(value).__name__} object that cannot be shown as text: {reason}>"


def _ms(started: float | None) -> float | None:
    return None if started is None else round((time.perf_counter() - started) * 1000, 3)


def hooks() -> RunHooks[Any]:
    """Run hooks that trace into the current run's `RunTrace` (via `current_trace`)."""
    return _hooks_class()()
