"""The exception tree of agent-runtime (every error it raises on purpose is one of these), and
`ToolRetry`, the one exception it expects from tools.

```
AgentRuntimeError
├── ConfigError              agents.yaml cannot be used (every problem at once)
├── ToolResolutionError      a tool's "package.module:function" cannot be imported
├── BackendError             the model server failed (after retries)
│   └── BackendUnavailableError   ... could not be reached at all
└── RunError                 a run could not finish
    └── RunLimitError        ... because it hit a limit (max turns, time budget)

ToolRetry                    raised by a tool: the model is to call it again, corrected
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AgentRuntimeError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "ConfigProblem",
    "RunError",
    "RunLimitError",
    "ToolResolutionError",
    "ToolRetry",
]


class AgentRuntimeError(Exception):
    """Root of every error agent-runtime raises on purpose."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigProblem:
    """One problem in a configuration document.

    Attributes:
        file: the file name as given (or `<string>`).
        line: 1-based line, or None when the problem has no place in the file.
        column: 1-based column, or None.
        path: the dotted path of the value (`agents.weather-haiku.tools[0]`), or "" for the
            document itself.
        message: what is wrong and how to fix it.
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    @property
    def location(self) -> str:
        """`file:line:col`, `file:line` or `file`."""
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.location}: {where}{self.message}"


class ConfigError(AgentRuntimeError):
    """agents.yaml (or another configuration document) cannot be used.

    Carries every problem found, sorted by position; `str()` renders them one per line.
    """

    def __init__(self, problems: Sequence[ConfigProblem], *, source: str | None = None) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems = tuple(
            sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0, p.path))
        )
        self.source = source or self.problems[0].file
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, aligned: `agents.yaml has 2 problems:` then one indented line each."""
        if len(self.problems) == 1:
            return str(self.problems[0])
        width = max(len(p.location) for p in self.problems)
        lines = [f"{self.source} has {len(self.problems)} problems:"]
        for problem in self.problems:
            where = f"{problem.path}: " if problem.path else ""
            lines.append(f"  {problem.location:<{width}}  {where}{problem.message}")
        return "\n".join(lines)


class ToolResolutionError(AgentRuntimeError):
    """A tool's `package.module:function` reference cannot be imported or is not callable."""


class BackendError(AgentRuntimeError):
    """The model server answered with errors (after retries); the message names URL and cause."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class BackendUnavailableError(BackendError):
    """The model server could not be reached at all (connection refused, DNS, timeout)."""


class RunError(AgentRuntimeError):
    """A run could not finish (bad model output beyond repair, a failed structured answer...)."""


class RunLimitError(RunError):
    """A run hit one of its limits: max turns or its time budget."""


class ToolRetry(Exception):
    """Raised by a tool to have the model call it again: the message says what to fix.

    The message goes back to the model as the call's result, marked as an error to fix, and the
    run goes on. Like invalid arguments, it counts towards `max_invalid_calls`: that many in a
    row end the run with `RunLimitError`.

    ```python
    from agent_runtime import ToolRetry

    def get_order(order_id: str) -> Order:
        if not order_id.startswith("A-"):
            raise ToolRetry(f"order ids look like 'A-1042', not {order_id!r}")
        ...
    ```

    It is not an `AgentRuntimeError`: agent-runtime never raises it, and never lets it out of a
    run.
    """
