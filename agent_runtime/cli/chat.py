"""`agent-runtime chat AGENT`: an interactive conversation with session memory."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent_runtime.cli.common import (
    EXIT_ERROR,
    Overrides,
    Secrets,
    backend_options,
    config_option,
    configure_logging,
    debug_option,
    exit_code,
    handle_errors,
    load,
)
from agent_runtime.cli.continuing import continue_option, pick_session
from agent_runtime.cli.inputs import session_option
from agent_runtime.cli.render import PlainRenderer, TerminalRenderer, format_output
from agent_runtime.cli.signals import StopSignals
from agent_runtime.config import Config
from agent_runtime.errors import AgentRuntimeError, ConfigError
from agent_runtime.results import RunFinished
from agent_runtime.text import visible

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from rich.console import Console

    from agent_runtime.cli.approval import Approver
    from agent_runtime.runtime import Runtime

__all__ = ["chat_command", "history_path"]

HELP_LINE = "/reset starts over, /exit or Ctrl-D quits."


@click.command(name="chat")
@click.argument("agent")
@config_option
@backend_options
@session_option("Continue this stored conversation.")
@continue_option("Continue the last chat.")
@click.option(
    "--show-reasoning/--hide-reasoning",
    default=None,
    help="Show the model's reasoning (default: in a terminal).",
)
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Approve every tool call that needs approval (`approval: always`) without asking.",
)
@debug_option
def chat_command(
    agent: str,
    config_path: Path,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    session: str | None,
    continue_: bool,
    show_reasoning: bool | None,
    yes: bool,
    debug: bool,
) -> None:
    """Talk with AGENT; the conversation is kept in the session store (SQLite).

    Line editing and history in a terminal (the lines typed are kept in `chat_history` next
    to the session store); `/reset` starts a new conversation, `/exit` or Ctrl-D quits,
    Ctrl-C stops the current answer. Lines piped on stdin are sent one by one (bytes that
    are not UTF-8 become U+FFFD). SIGTERM and SIGHUP end the chat (exit 143, 129) as Ctrl-C
    ends a piped one: the running answer's input is kept in the session.

    A call of a tool declared with `approval: always` is shown (tool, agent, arguments) and
    runs only if you answer y; on n, your reason goes to the model. `--yes` approves every
    call; in a piped chat without `--yes`, such calls are rejected.

    Without `--session` a chat gets a new session `chat-…`; `--continue` resumes the newest
    of those.
    """
    secrets = Secrets()
    secrets.add(api_key)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        config = load(config_path, secrets=secrets)
        if agent not in config.spec.agents:
            from agent_runtime.runtime import Runtime

            Runtime(config, trace_path=False).agent(agent)  # raises the "Did you mean" error
        session = pick_session(config, session, continue_, kind="chat")
        code = stop.run(
            _chat(
                config,
                agent,
                Overrides(base_url=base_url, model=model, api_key=api_key),
                session,
                show_reasoning,
                debug,
                stop,
                yes,
            )
        )
    sys.exit(code)


async def _chat(
    config: Config,
    agent: str,
    overrides: Overrides,
    session: str,
    show_reasoning: bool | None,
    debug: bool,
    stop: StopSignals,
    yes: bool = False,
) -> int:
    from rich.console import Console
    from rich.text import Text

    from agent_runtime.cli.approval import Approver
    from agent_runtime.cli.status import launch_status
    from agent_runtime.runtime import Runtime

    console = Console()
    interactive = sys.stdin.isatty() and console.is_terminal
    lines = _Lines(config, interactive)
    async with Runtime(config, **overrides, launch_progress=launch_status()) as runtime:
        approver = Approver(yes=yes, interactive=interactive, redact=runtime.redactor.text)
        if interactive:
            console.print(f"[bold]{agent}[/bold] [dim](session {session}). {HELP_LINE}[/dim]")
        while True:
            line = await lines.next()
            if line is None:
                return 0
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                return 0
            if text == "/reset":
                await runtime.clear_session(session)
                _say(console, interactive, "Conversation cleared.")
                continue
            if text.startswith("/"):
                _say(console, interactive, f"Unknown command {text!r}. {HELP_LINE}")
                continue
            try:
                await _turn(runtime, console, agent, text, session, show_reasoning, approver)
            except asyncio.CancelledError:
                # Ctrl-C: asyncio.run cancelled this task; stop the answer, keep chatting.
                # SIGTERM and SIGHUP end the chat.
                task = asyncio.current_task()
                if not interactive or task is None or stop.signum is not None:
                    raise
                task.uncancel()
                console.print("[dim]Cancelled.[/dim]")
            except AgentRuntimeError as error:
                message = visible(runtime.redactor.text(str(error)), lines=False)
                if isinstance(error, ConfigError) or not interactive:
                    click.echo(f"Error: {message}", err=True)
                    return exit_code(error)
                console.print(Text.assemble(("Error:", "red"), f" {message}"), highlight=False)
            except BrokenPipeError:
                raise  # stdout was closed: the command ends quietly
            except Exception as error:
                if debug:
                    raise
                message = runtime.redactor.text(f"{type(error).__name__}: {error}")
                click.echo(f"Error: {visible(message, lines=False)}", err=True)
                return EXIT_ERROR


def _say(console: Console, interactive: bool, message: str) -> None:
    if interactive:
        console.print(f"[dim]{message}[/dim]")
    else:
        click.echo(message, err=True)


async def _turn(
    runtime: Runtime,
    console: Console,
    agent: str,
    text: str,
    session: str,
    show_reasoning: bool | None,
    approver: Approver,
) -> None:
    from agent_runtime.cli.approval import events_with_approval

    renderer: TerminalRenderer | PlainRenderer
    if console.is_terminal:
        renderer = TerminalRenderer(
            console, show_reasoning=show_reasoning is not False, redact=runtime.redactor.text
        )
    else:
        renderer = PlainRenderer(
            sys.stderr,
            show_reasoning=bool(show_reasoning),
            show_tools=False,
            redact=runtime.redactor.text,
        )
    renderer.waiting()
    try:
        events = runtime.stream(agent, text, session=session)
        async for event in events_with_approval(
            runtime,
            events,
            approver,
            before_asking=renderer.close,
            after_asking=renderer.waiting,
        ):
            renderer.event(event)
            if isinstance(event, RunFinished):
                if not console.is_terminal:
                    click.echo(format_output(event.result.final_output), color=True)
                for warning in event.result.warnings:
                    click.echo(f"Warning: {visible(warning, lines=False)}", err=True)
    finally:
        renderer.close()


def history_path(config: Config) -> Path:
    """Where the lines typed in `chat` are kept: `chat_history` beside the session store
    (`sessions.path` in agents.yaml), so both live, and are cleaned up, together."""
    return config.resolve_path(config.spec.sessions.path).parent / "chat_history"


class _Lines:
    """Input lines: prompt_toolkit with history in a terminal, plain stdin otherwise."""

    def __init__(self, config: Config, interactive: bool) -> None:
        self._session: PromptSession[str] | None = None
        self._stdin = _StdinLines()
        if interactive:
            from prompt_toolkit import PromptSession
            from prompt_toolkit.history import FileHistory

            history = history_path(config)
            history.parent.mkdir(parents=True, exist_ok=True)
            self._session = PromptSession(history=FileHistory(str(history)))

    async def next(self) -> str | None:
        """The next line, or None at end of input (Ctrl-D)."""
        if self._session is None:
            return await self._stdin.next()
        while True:
            try:
                result: str = await self._session.prompt_async("> ")
                return result
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return None


class _StdinLines:
    """The lines of stdin, as UTF-8 with invalid bytes replaced by U+FFFD.

    Each read runs in a daemon thread on the file descriptor itself (no lock of `sys.stdin`
    held): a chat that ends (a signal, Ctrl-C) while stdin is a pipe nobody writes to exits
    at once instead of waiting for a line that may never come.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._ended = False

    async def next(self) -> str | None:
        """The next line (with its newline, except at the end), or None at end of input."""
        while "\n" not in self._text and not self._ended:
            data = await _read_chunk(sys.stdin.fileno())
            self._ended = not data
            self._text += self._decoder.decode(data, final=self._ended)
        if not self._text:
            return None
        line, newline, self._text = self._text.partition("\n")
        return line + newline


async def _read_chunk(fd: int) -> bytes:
    """What one `os.read` of `fd` gives, read in a daemon thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bytes] = loop.create_future()

    def settle(data: bytes | None, error: OSError | None) -> None:
        if future.done():  # cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(data or b"")

    def read() -> None:
        try:
            data, error = os.read(fd, 65536), None
        except OSError as exc:
            data, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, data, error)

    threading.Thread(target=read, name="agent-runtime chat stdin", daemon=True).start()
    return await future
