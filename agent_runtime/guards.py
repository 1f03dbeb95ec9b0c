"""The loop guard and the repair limit: what stops a model that keeps doing the same wrong thing.

- The same tool with the same arguments `max_repeated_calls` times in a row is not run again:
  the model is told it repeats itself and should use what it has. At twice that many the run
  ends with `RunLimitError`.
- `max_invalid_calls` invalid tool calls in a row (JSON that does not parse, arguments that fail
  the schema, tools that do not exist) end the run with `RunLimitError`; each one is first
  reported to the model so it can correct itself. A valid call resets the count.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from agent_runtime.errors import RunLimitError
from agent_runtime.text import sentence

__all__ = ["CallGuard"]


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return arguments.strip()


@dataclass(slots=True)
class CallGuard:
    """Per-run counters of repeated and invalid tool calls (shared by the run's tool tasks)."""

    max_repeated_calls: int = 3
    max_invalid_calls: int = 5
    tripped: RunLimitError | None = None
    """Set when a limit was passed where raising was not possible; raised before the next
    model call."""
    _last: tuple[str, str] | None = None
    _repeats: int = 0
    _invalid: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
