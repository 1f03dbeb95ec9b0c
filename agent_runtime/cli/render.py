"""How a streamed run looks: rich output in a terminal, plain lines in a pipe.

In a terminal: reasoning dimmed, each tool call with its arguments, its result (shortened),
handoffs, then the answer as it streams, with a spinner while the model has not started.
In a pipe, only what was asked for goes to stderr; the answer goes to stdout at the end.

Model, tool and server text is data: it is never read as rich markup, every control character
and escape sequence in it is shown (`visible`), not obeyed, and tool arguments and results are
cut to one line with a note of how much was left out. The answer in a terminal keeps its
newlines and tabs; the answer a command writes to a pipe does not pass through here (it is data
for programs, written as it is).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from agent_runtime.results import (
    AgentChanged,
    Handoff,
    Message,
    Reasoning,
    ReasoningDelta,
    Retrying,
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCall,
    ToolResult,
)
from agent_runtime.text import one_line, visible

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

__all__ = ["PlainRenderer", "TerminalRenderer", "format_output", "shorten"]

ARGUMENTS_LIMIT = 200
"""How much of a tool call's arguments a terminal shows."""
RESULT_LIMIT = 160
"""How much of a tool's result is shown, in a terminal and with `-v`."""
PIPE_ARGUMENTS_LIMIT = 2000
"""How much of a tool call's arguments `-v` writes to stderr."""


def _as_is(text: str) -> str:
    return text


def _cut(text: str, limit: int, redact: Callable[[str], str]) -> str:
    """`one_line(text, limit)` with secrets masked in what is shown; the rest is only counted,
    so a 10 MB value costs no more than a short one."""
    window = limit + 512
    return one_line(redact(text[:window]) + text[window:], limit)


def shorten(text: str, limit: int = RESULT_LIMIT) -> str:
    """One line of at most `limit` characters, safe for a terminal (cut with `…`)."""
    return one_line(text, limit, note=False)


def format_output(value: Any) -> str:
    """The final output as text: strings as they are, structured answers (typed ones too) as
    indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(_jsonable(value), indent=2, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    """A structured answer as plain JSON values (a pydantic model or a dataclass as its fields)."""
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=str)


def _visible_json(value: Any) -> Any:
    """JSON values with every string (keys too) made `visible`: JSON escapes C0 controls, but
    not C1 controls or bidirectional overrides."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, list):
        return [_visible_json(item) for item in value]
    if isinstance(value, dict):
        return {visible(str(key)): _visible_json(item) for key, item in value.items()}
    return value


class TerminalRenderer:
    """Streams a run to a terminal with rich."""

    def __init__(
        self,
        console: Console,
        *,
        show_reasoning: bool,
        redact: Callable[[str], str] = _as_is,
    ) -> None:
        self.console = console
        self.show_reasoning = show_reasoning
        self.redact = redact
        self._status: Status | None = None
        self._in: str | None = None  # "reasoning" or "text" while a stream is open
        self._agent: str | None = None

    def waiting(self) -> None:
        """Show the spinner until the next event."""
        if self._status is None:
            self._status = self.console.status("[dim]Thinking…[/dim]", spinner="dots")
            self._status.start()

    def _stop_waiting(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _close_stream(self) -> None:
        if self._in is not None:
            self.console.print()
            self._in = None

    def event(self, event: RunEvent) -> None:
        """Render one event."""
        from rich.text import Text

        if isinstance(event, ReasoningDelta | TextDelta):
            kind = "reasoning" if isinstance(event, ReasoningDelta) else "text"
            if kind == "reasoning" and not self.show_reasoning:
                return
            self._stop_waiting()
            if self._in != kind:
                self._close_stream()
                self._in = kind
            style = "dim italic" if kind == "reasoning" else ""
            self.console.print(Text(visible(event.text), style=style), end="")
            return
        self._stop_waiting()
        if isinstance(event, AgentChanged):
            if self._agent is not None and event.agent != self._agent:
                self._close_stream()
            self._agent = event.agent
        elif isinstance(event, Reasoning | Message):
            self._close_stream()
        elif isinstance(event, ToolCall):
            self._close_stream()
            self.console.print(
                Text.assemble(
                    (f"→ {one_line(event.name, ARGUMENTS_LIMIT)}", "cyan"),
                    " ",
                    (_cut(event.arguments, ARGUMENTS_LIMIT, self.redact), "dim"),
                )
            )
        elif isinstance(event, ToolResult):
            style = "red" if event.output.startswith("Error:") else "green"
            self.console.print(
                Text.assemble(
                    (f"← {one_line(event.name, ARGUMENTS_LIMIT)}", style),
                    " ",
                    (_cut(event.output, RESULT_LIMIT, self.redact), "dim"),
                )
            )
            self.waiting()
        elif isinstance(event, Handoff):
            self._close_stream()
            self.console.print(Text(f"⇢ handed to {visible(event.to_agent)}", style="magenta"))
            self.waiting()
        elif isinstance(event, Retrying):
            self._close_stream()
            cause = visible(self.redact(event.cause))
            self.console.print(Text(f"↻ asking again: {cause}", style="yellow"))
            self.waiting()
        elif isinstance(event, RunFinished):
            self._close_stream()
            if not isinstance(event.result.final_output, str):
                data = _visible_json(_jsonable(event.result.final_output))
                self.console.print_json(data=data, ensure_ascii=False)

    def close(self) -> None:
        """Stop the spinner and end the current line."""
        self._stop_waiting()
        self._close_stream()


class PlainRenderer:
    """Writes events as plain lines (to stderr in a pipe): tool calls, results, reasoning.

    stderr is often still a terminal when stdout is a pipe, so its lines are made `visible` and
    tool calls and results cut to one line with a note of what was left out.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        show_reasoning: bool,
        show_tools: bool,
        redact: Callable[[str], str] = _as_is,
    ) -> None:
        self.stream = stream
        self.show_reasoning = show_reasoning
        self.show_tools = show_tools
        self.redact = redact

    def waiting(self) -> None:
        """Nothing to show in a pipe."""

    def event(self, event: RunEvent) -> None:
        """Render one event."""
        line: str | None = None
        if isinstance(event, Reasoning) and self.show_reasoning:
            line = f"[reasoning] {visible(self.redact(event.text))}"
        elif isinstance(event, ToolCall) and self.show_tools:
            name = one_line(event.name, ARGUMENTS_LIMIT)
            line = f"[tool] {name} {_cut(event.arguments, PIPE_ARGUMENTS_LIMIT, self.redact)}"
        elif isinstance(event, ToolResult) and self.show_tools:
            name = one_line(event.name, ARGUMENTS_LIMIT)
            line = f"[result] {name} {_cut(event.output, RESULT_LIMIT, self.redact)}"
        elif isinstance(event, Handoff) and self.show_tools:
            line = f"[handoff] {visible(event.agent)} -> {visible(event.to_agent)}"
        elif isinstance(event, Retrying) and self.show_tools:
            line = f"[retry] {visible(self.redact(event.cause))}"
        if line is not None:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """Nothing to close."""
