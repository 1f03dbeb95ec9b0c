"""Local tracing: every model call and tool call of a run, in the run log or a JSON-lines file.

The Agents SDK's own tracing is turned off for every run (it would export to OpenAI's cloud).
Instead the runtime's run hooks write records like

    {"trace_id": "trace_…", "type": "model_call", "agent": "weather-haiku", "model": "…",
     "started_at": 1763800000.12, "duration_ms": 812.4, "usage": {...}, "output": [...]}
    {"trace_id": "trace_…", "type": "tool_call", "agent": "weather-haiku",
     "name": "get_weather", "call_id": "call_…", "arguments": "{\\"city\\":\\"Tokyo\\"}",
     "output": "…", "started_at": 1763800000.94, "duration_ms": 3.1}

plus one `run_start` record (agent, session, input) and one `run_end` record per run (outcome,
error, `turns`, `usage`, `started_at` and `duration_ms` of the whole run, final output). Every
record has its `time` (Unix seconds, when it was written); `started_at` is Unix seconds too,
and `duration_ms` is measured on a monotonic clock. A model call that failed has no
`model_call` record (its `retry` records and the `run_end` error say what happened).

`tracing.path` decides where records go: a name ending in `.sqlite3`, `.sqlite` or `.db` (the
default, `.agent-runtime/runs.sqlite3`) is the run log of `agent_runtime.runlog`, which
`agent-runtime logs` reads; any other name is a JSON-lines file, one record per line.

Secrets are never written: every record passes through the runtime's `Redactor` (configured
keys, header values, URL passwords, `Authorization` and `Bearer` values). Prompts, tool
arguments, outputs and the run's input are written only with `include_sensitive_data: true`
(off by default); without it a record keeps what happened (names, ids, times, tokens) and
leaves those fields None.

A text field longer than `tracing.max_field_chars` (100,000) characters is cut, with a note
`…[truncated N chars]`. Text that is not valid Unicode (a lone surrogate, as `os.listdir` gives
for a file name that is not UTF-8) is written as a JSON escape (`"\\udc80"`), which JSON readers
turn back into the same text (strict ones into U+FFFD). A trace file that cannot be written to
(a full disk, a corrupt run log) never fails a run: the first failure is logged as a warning,
and the writer writes no more. A run log locked by another process for longer than its busy
timeout loses that one record, with a warning the first time.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import sqlite3
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
from agent_runtime.runlog import RunLog, busy, is_run_log

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
_NO_TOKENS = {"input_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0}

# What a record keeps when it cannot be written whole (nested too deeply, a value without text).
_BASIC_FIELDS = ("trace_id", "type", "time", "agent", "name", "call_id")


class TraceWriter:
    """Writes trace records to the run log or a JSON-lines file; shared by all runs of a
    runtime.

    Args:
        path: the file (its folder is created): a run log when it ends in `.sqlite3`,
            `.sqlite` or `.db`, else JSON lines; None: tracing is off.
        include_sensitive_data: whether prompts, arguments and outputs go into records
            (`RunTrace.sensitive`).
        redactor: masks the secrets of the runtime's configuration in every record (default:
            the patterns of `agent_runtime.redact` only).
        max_field_chars: longest text kept in one field; longer text is cut with a note.
        keep_days: in a run log, runs older than this many days are removed when it is
            opened (at most once an hour); None keeps them. A JSON-lines file is never cut.
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        include_sensitive_data: bool = False,
        redactor: Redactor | None = None,
        max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
        keep_days: float | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.include_sensitive_data = include_sensitive_data
        self.redactor = redactor if redactor is not None else Redactor()
        self.max_field_chars = max_field_chars
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._log: RunLog | None = None
        if self.path is not None and is_run_log(self.path):
            self._log = RunLog(self.path, keep_days=keep_days)
        self._failed = False
        self._warned_busy = False
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
        if self._log is not None:
            self._add_to_log(self._log, record)
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
                    raise self._unopenable(exc) from exc
            try:
                self._file.write(line)
                self._file.flush()
            except OSError as exc:
                self._give_up(exc)

    def _add_to_log(self, log: RunLog, record: Mapping[str, Any]) -> None:
        cleaned, text = self._cleaned(record)
        # The run log stores valid UTF-8 only: lone surrogates as JSON escapes, as in a file.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        try:
            log.add(cleaned, text)
        except OSError as exc:
            if log.path.is_dir() or not log.path.parent.is_dir():
                raise self._unopenable(exc) from exc
            self._give_up(exc)
        except sqlite3.Error as exc:
            if busy(exc):
                if not self._warned_busy:
                    self._warned_busy = True
                    logger.warning(
                        "the run log %s stayed locked by another process; a %s record of "
                        "trace %s was not written (the run goes on). This warning is shown once.",
                        log.path,
                        record.get("type"),
                        record.get("trace_id"),
                    )
                return
            self._give_up(OSError(str(exc)))

    def _unopenable(self, exc: OSError) -> AgentRuntimeError:
        return AgentRuntimeError(
            f"cannot open the trace file {self.path}: {exc.strerror or exc}. Set "
            "`tracing.path` in agents.yaml to a file in a folder you can write to, "
            "or turn tracing off (`tracing: {enabled: false}`)."
        )

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """One record as a line of JSON in UTF-8: secrets masked, long text cut, lone
        surrogates escaped; a record that cannot be written whole keeps its basic fields."""
        return (self._cleaned(record)[1] + "\n").encode("utf-8", "backslashreplace")

    def _cleaned(self, record: Mapping[str, Any]) -> tuple[Any, str]:
        """The record with secrets masked and long text cut, and its JSON text."""
        try:
            cleaned = self._clean(record)
            text = json.dumps(cleaned, ensure_ascii=False, default=self._other)
        except (ValueError, TypeError, RecursionError) as exc:
            basic = {key: record[key] for key in _BASIC_FIELDS if key in record}
            reason = "it is nested too deeply" if isinstance(exc, RecursionError) else _text(exc)
            basic["trace_error"] = f"the record could not be written whole: {reason}"
            cleaned = self._clean(basic)
            text = json.dumps(cleaned, ensure_ascii=False, default=self._other)
        return cleaned, text

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
        if self._log is not None:
            self._log.close()
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
        if self._log is not None:
            self._log.close()
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except (OSError, ValueError) as exc:
                    self._give_up(exc if isinstance(exc, OSError) else OSError(str(exc)))
                self._file = None


@dataclass(slots=True)
class RunTrace:
    """The tracing state of one run (also seen by nested runs of agents used as tools).

    It times the run: `run_end` gets the run's `started_at` and `duration_ms`, and, when the
    caller does not give them (a failed run), the `turns` and `usage` of the model calls
    recorded so far.
    """

    writer: TraceWriter
    guard: CallGuard = field(default_factory=CallGuard)
    trace_id: str = field(default_factory=new_trace_id)
    agent: str = ""
    last_input: list[Any] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    """When the run started (Unix seconds)."""
    _clock: float = field(default_factory=time.perf_counter)
    _started: dict[object, tuple[float, float]] = field(default_factory=dict)
    _turns: int = 0
    _usage: dict[str, int] = field(default_factory=dict)

    def record(self, kind: str, **fields: Any) -> None:
        if kind == "run_end":
            fields.setdefault("turns", self._turns)
            fields.setdefault("usage", {"requests": self._turns, **_NO_TOKENS, **self._usage})
            fields["started_at"] = self.started_at
            fields["duration_ms"] = _ms(self._clock)
        record = {"trace_id": self.trace_id, "type": kind, "time": time.time(), **fields}
        self.writer.notify(record)
        self.writer.write(record)

    def sensitive(self, value: Any) -> Any:
        return value if self.writer.include_sensitive_data else None

    def start(self, key: object) -> None:
        """Note that the call `key` starts now (see `took`)."""
        self._started[key] = (time.time(), time.perf_counter())

    def took(self, key: object) -> tuple[float | None, float | None]:
        """When the call `key` started (Unix seconds) and how long it took (ms); None, None
        when its start was not seen."""
        started = self._started.pop(key, None)
        if started is None:
            return None, None
        return started[0], _ms(started[1])

    def count_model_call(self, usage: Mapping[str, int]) -> None:
        """Add a model call's tokens to the run's totals (for a `run_end` without usage)."""
        self._turns += 1
        for key, value in usage.items():
            self._usage[key] = self._usage.get(key, 0) + value


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
                # a model call's start and end meet by the run's context object, the same in
                # both hooks, not by task. The model calls of one context are made one after
                # the other; nested runs (agents used as tools) have contexts of their own.
                trace.start(("llm", id(context)))

        async def on_llm_end(
            self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
        ) -> None:
            trace = current_trace.get()
            if trace is None:
                return
            started_at, duration_ms = trace.took(("llm", id(context)))
            usage = response.usage
            model = (
                agent.model if isinstance(agent.model, str) else getattr(agent.model, "model", "")
            )
            tokens = {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "reasoning_tokens": usage.output_tokens_details.reasoning_tokens,
            }
            trace.count_model_call(tokens)
            trace.record(
                "model_call",
                agent=agent.name,
                model=model,
                started_at=started_at,
                duration_ms=duration_ms,
                response_id=response.response_id,
                usage=tokens,
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
                trace.start(("tool", call_id))

        async def on_tool_end(
            self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
        ) -> None:
            trace = current_trace.get()
            if trace is None:
                return
            call_id = getattr(context, "tool_call_id", None)
            started_at, duration_ms = trace.took(("tool", call_id))
            trace.record(
                "tool_call",
                agent=agent.name,
                name=getattr(tool, "name", type(tool).__name__),
                call_id=call_id,
                arguments=trace.sensitive(getattr(context, "tool_arguments", None)),
                output=trace.sensitive(_text(result)),
                # The runtime tells the model of a tool's failure in a text that says so.
                failed=isinstance(result, str) and result.startswith("Error:"),
                started_at=started_at,
                duration_ms=duration_ms,
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


def _ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading)."""
    return round((time.perf_counter() - started) * 1000, 3)


def hooks() -> RunHooks[Any]:
    """Run hooks that trace into the current run's `RunTrace` (via `current_trace`)."""
    return _hooks_class()()
