"""Asking a person on the terminal to approve tool calls (`approval: always` in agents.yaml).

`run` and `chat` show each pending call (tool, agent, arguments, made `visible` and redacted)
on stderr and read y/n, and a reason on n, from stdin. `--yes` approves every call (for
scripts). Without a terminal on stdin and without `--yes`, nobody can answer: each call is
rejected, with a line on stderr saying so, and the model is told; the command never waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import click

from agent_runtime.results import RunEvent, RunFinished, RunResult
from agent_runtime.text import visible

if TYPE_CHECKING:
    from agent_runtime.runtime import Runtime

__all__ = ["Approver", "events_with_approval"]

_ARGUMENTS_SHOWN = 2000
NO_TERMINAL = "nobody could approve it: no terminal to ask (run with --yes to approve)"


class Approver:
    """Decides the pending calls of a run: `--yes`, the person at the terminal, or no."""

    def __init__(self, *, yes: bool, interactive: bool, redact: Callable[[str], str]) -> None:
        self.yes = yes
        self.interactive = interactive
        self.redact = redact
        self._lines: _Lines | None = None

    async def decide(self, result: RunResult) -> tuple[list[str], dict[str, str | None]]:
        """The call ids to approve, and those to reject with their reasons."""
        approve: list[str] = []
        reject: dict[str, str | None] = {}
        for call in result.pending_approvals:
            name = visible(call.name, lines=False)
            agent = visible(call.agent, lines=False)
            if self.yes:
                approve.append(call.call_id)
                continue
            if not self.interactive:
                click.echo(
                    f"Not approved: `{name}` (agent {agent}) needs approval and there is no "
                    "terminal to ask; run with --yes to approve tool calls.",
                    err=True,
                )
                reject[call.call_id] = NO_TERMINAL
                continue
            arguments = visible(self.redact(call.arguments), lines=False)
            if len(arguments) > _ARGUMENTS_SHOWN:
                arguments = f"{arguments[:_ARGUMENTS_SHOWN]}… [{len(arguments):,} characters]"
            click.echo(f"Approval needed: `{name}` (agent {agent})", err=True)
            click.echo(f"  arguments: {arguments}", err=True)
            answer = await self._ask("Run it? [y/n] ", ("y", "yes", "n", "no"))
            if answer in ("y", "yes"):
                approve.append(call.call_id)
                continue
            reason = await self._ask("Reason (optional): ", None) if answer else ""
            reject[call.call_id] = reason or ("no answer" if answer is None else None)
        return approve, reject

    async def _ask(self, prompt: str, choices: tuple[str, ...] | None) -> str | None:
        """An answer typed on stdin (None at its end)."""
        if self._lines is None:
            self._lines = _Lines()
        while True:
            click.echo(prompt, err=True, nl=False)
            line = await self._lines.next()
            if line is None:
                click.echo(err=True)
                return None
            answer = line.strip()
            if choices is None or answer.lower() in choices:
                return answer.lower() if choices is not None else answer
            click.echo("Please answer y or n.", err=True)


class _Lines:
    """Lines of stdin, read without blocking the event loop (Ctrl-C and signals work)."""

    def __init__(self) -> None:
        from agent_runtime.cli.chat import _StdinLines

        self._stdin = _StdinLines()

    async def next(self) -> str | None:
        return await self._stdin.next()


async def events_with_approval(
    runtime: Runtime,
    events: AsyncIterator[RunEvent],
    approver: Approver,
    *,
    before_asking: Callable[[], None] = lambda: None,
    after_asking: Callable[[], None] = lambda: None,
) -> AsyncIterator[RunEvent]:
    """The events of a run, continued after each stop for approval with the approver's
    decisions; only the last `RunFinished` (the run's end) is passed on."""
    while True:
        pending: RunResult | None = None
        async for event in events:
            if isinstance(event, RunFinished) and event.result.pending_approvals:
                pending = event.result
                continue
            yield event
        if pending is None:
            return
        before_asking()
        approve, reject = await approver.decide(pending)
        after_asking()
        events = runtime.resume_stream(pending, approve=approve, reject=reject)
