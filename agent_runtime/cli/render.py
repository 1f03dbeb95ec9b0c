"""How a streamed run looks: rich output in a terminal, plain lines in a pipe.

In a terminal: reasoning dimmed, each tool call with its arguments, its result (shortened),
handoffs, then the answer as it streams, with a spinner while the model has not started.
In a pipe, only what was asked for goes to stderr; the answer goes to stdout at the end.
"""

from __future__ import annotations

import json
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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

__all__ = ["PlainRenderer", "TerminalRenderer", "format_output", "shorten"]


def shorten(text: str, limit: int = 160) -> str:
    """One line of at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


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


class TerminalRenderer:
    """Streams a run to a terminal with rich."""

    def __init__(self, console: Console, *, show_reasoning: bool) -> None:
        self.console = console
        self.show_reasoning = show_reasoning
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
        if isinstance(event, ReasoningDelta | TextDelta):
            kind = "reasoning" if isinstance(event, ReasoningDelta) else "text"
            if kind == "reasoning" and not self.show_reasoning:
                return
            self._stop_waiting()
            if self._in != kind:
                self._close_stream()
                self._in = kind
            style = "dim italic" if kind == "reasoning" else None
            self.console.print(event.text, style=style, end="", markup=False, highlight=False)
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
                f"[cyan]→ {event.name}[/cyan] [dim]{shorten(event.arguments, 200)}[/dim]",
                highlight=False,
            )
        elif isinstance(event, ToolResult):
            style = "red" if event.output.startswith("Error:") else "green"
            self.console.print(
                f"[{style}]← {event.name}[/{style}] [dim]{shorten(event.output)}[/dim]",
                markup=True,
                highlight=False,
            )
            self.waiting()
        elif isinstance(event, Handoff):
            self._close_stream()
            self.console.print(f"[magenta]⇢ handed to {event.to_agent}[/magenta]")
            self.waiting()
        elif isinstance(event, Retrying):
            self._close_stream()
            self.console.print(
                f"[yellow]↻ asking again: {event.cause}[/yellow]",
                highlight=False,
            )
            self.waiting()
        elif isinstance(event, RunFinished):
            self._close_stream()
            if not isinstance(event.result.final_output, str):
                self.console.print_json(json.dumps(_jsonable(event.result.final_output)))

    def close(self) -> None:
        """Stop the spinner and end the current line."""
        self._stop_waiting()
        self._close_stream()


class PlainRenderer:
    """Writes events as plain lines (to stderr in a pipe): tool calls, results, reasoning."""

    def __init__(self, stream: TextIO, *, show_reasoning: bool, show_tools: bool) -> None:
        self.stream = stream
        self.show_reasoning = show_reasoning
        self.show_tools = show_tools

    def waiting(self) -> None:
        """Nothing to show in a pipe."""

    def event(self, event: RunEvent) -> None:
        """Render one event."""
        line: str | None = None
        if isinstance(event, Reasoning) and self.show_reasoning:
            line = f"[reasoning] {event.text}"
        elif isinstance(event, ToolCall) and self.show_tools:
            line = f"[tool] {event.name} {event.arguments}"
        elif isinstance(event, ToolResult) and self.show_tools:
            line = f"[result] {event.name} {shorten(event.output)}"
        elif isinstance(event, Handoff) and self.show_tools:
            line = f"[handoff] {event.agent} -> {event.to_agent}"
        elif isinstance(event, Retrying) and self.show_tools:
            line = f"[retry] {event.cause}"
        if line is not None:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """Nothing to close."""
