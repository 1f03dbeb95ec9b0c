"""The loop guard and the repair limit: what stops a model that keeps doing the same wrong thing.

- The same tool with the same arguments `max_repeated_calls` times in a row is not run again:
  the model is told it repeats itself and should use what it has. At twice that many the run
  ends with `RunLimitError`.
- `max_invalid_calls` invalid tool calls in a row (JSON that does not parse, arguments that fail
  the schema, tools that do not exist) end the run with `RunLimitError`; each one is first
  reported to the model so it can correct itself. A valid call resets the count.

The guard also follows each tool function from its start until it returns, so a run stopped at
its `run_timeout_s` can name the tools it had to leave behind (`CallGuard.left_behind`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.errors import RunLimitError
from agent_runtime.text import sentence

__all__ = ["CallGuard"]


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to parse
        return arguments.strip()


@dataclass(slots=True)
class _ToolRun:
    """One tool function, from its start until it returns or raises."""

    tool: str
    in_thread: bool
    ended: float | None = None
    """`time.monotonic()` when it returned or raised; None while it runs."""
    cancelled: bool = False
    """It ended by its cancellation (or has seen one, if still running)."""
    task: asyncio.Future[Any] | None = None
    """The task an async tool function runs in."""


@dataclass(slots=True)
class CallGuard:
    """Per-run counters of repeated and invalid tool calls (shared by the run's tool tasks)."""

    max_repeated_calls: int = 3
    max_invalid_calls: int = 5
    deadline: float | None = None
    """The run's deadline (`time.monotonic()`), if it has a `run_timeout_s`."""
    tripped: RunLimitError | None = None
    """Set when a limit was passed where raising was not possible; raised before the next
    model call."""
    _last: tuple[str, str] | None = None
    _repeats: int = 0
    _invalid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _runs: dict[int, _ToolRun] = field(default_factory=dict)
    _next_run: int = 0

    def before_call(self, tool: str, arguments: str) -> str | None:
        """Note a call; a refusal message for the model when it repeats itself, else None.

        Raises:
            RunLimitError: the call was repeated twice `max_repeated_calls` times in a row.
        """
        if self.max_repeated_calls <= 0:
            return None
        key = (tool, _canonical(arguments))
        with self._lock:
            self._repeats = self._repeats + 1 if key == self._last else 1
            self._last = key
            repeats = self._repeats
        if repeats >= 2 * self.max_repeated_calls:
            raise RunLimitError(
                f"loop guard: the model called `{tool}` with the same arguments {repeats} times "
                f"in a row ({arguments}); it was told to stop after {self.max_repeated_calls}. "
                "Raise `max_repeated_calls` in agents.yaml if the repetition is intended."
            )
        if repeats >= self.max_repeated_calls:
            return (
                f"Error: you called `{tool}` with these same arguments {repeats} times in a row; "
                "it was not run again, the result would not change. Use the results you already "
                "have, call something else, or answer."
            )
        return None

    def invalid_call(self, tool: str, problem: str, *, defer: bool = False) -> None:
        """Count an invalid call; with `defer`, a passed limit is kept in `tripped` instead.

        Raises:
            RunLimitError: `max_invalid_calls` invalid calls in a row.
        """
        with self._lock:
            self._invalid += 1
            invalid = self._invalid
        if self.max_invalid_calls and invalid >= self.max_invalid_calls:
            calls = "call" if invalid == 1 else "calls"
            error = RunLimitError(
                f"the model made {invalid} invalid tool {calls} in a row; the last one, to "
                f"`{tool}`: {sentence(problem)} Raise `max_invalid_calls` in agents.yaml, or check "
                "that the tools' names and schemas are clear."
            )
            if not defer:
                raise error
            self.tripped = error

    def valid_call(self) -> None:
        """A call went through: the invalid-call count starts over."""
        with self._lock:
            self._invalid = 0

    def raise_if_tripped(self) -> None:
        """Raise the limit error kept by a deferred `invalid_call`."""
        if self.tripped is not None:
            raise self.tripped

    def tool_started(self, tool: str, *, in_thread: bool) -> int:
        """Note that a tool function starts (in its own thread, or in the event loop); the
        number to give `tool_ended`."""
        with self._lock:
            self._next_run += 1
            self._runs[self._next_run] = _ToolRun(tool=tool, in_thread=in_thread)
            return self._next_run

    def tool_task(self, run: int, task: asyncio.Future[Any]) -> None:
        """The task an async tool function runs in (see `running_tasks`)."""
        with self._lock:
            entry = self._runs.get(run)
            if entry is not None and entry.ended is None:
                entry.task = task

    def tool_cancelled(self, run: int) -> None:
        """The call of a running tool function was cancelled (it may go on regardless)."""
        with self._lock:
            entry = self._runs.get(run)
            if entry is not None and entry.ended is None:
                entry.cancelled = True

    def tool_ended(self, run: int) -> None:
        """A tool function returned or raised (thread-safe). Only those that ended after the
        deadline are kept: the run's error names them."""
        now = time.monotonic()
        with self._lock:
            entry = self._runs.get(run)
            if entry is None:
                return
            if self.deadline is None or now < self.deadline:
                del self._runs[run]
            else:
                entry.ended = now
                entry.task = None

    def running_tasks(self) -> set[asyncio.Future[Any]]:
        """The tasks of the async tool functions still running."""
        with self._lock:
            return {
                run.task
                for run in self._runs.values()
                if run.ended is None and run.task is not None
            }

    def left_behind(self) -> list[str]:
        """What the tools running at the deadline did, one phrase each: those still running
        (abandoned), and async ones that returned late without seeing their cancellation
        (they blocked the event loop, so the run could not be stopped sooner)."""
        with self._lock:
            runs = list(self._runs.values())
        phrases = []
        for run in runs:
            if run.ended is None and run.in_thread:
                phrases.append(
                    f"`{run.tool}` did not return and was abandoned (it keeps running in its "
                    "thread)"
                )
            elif run.ended is None:
                phrases.append(
                    f"`{run.tool}` did not stop when cancelled and was abandoned (it keeps "
                    "running in the event loop)"
                )
            elif not run.cancelled and not run.in_thread and self.deadline is not None:
                late = run.ended - self.deadline
                phrases.append(
                    f"`{run.tool}` blocked the event loop until {late:.1f} s past the deadline "
                    "(an async tool must not make blocking calls: make it a plain `def` "
                    "function, which runs in a thread)"
                )
        return phrases
