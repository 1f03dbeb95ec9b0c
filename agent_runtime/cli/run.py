"""`agent-runtime run AGENT PROMPT`: run one agent and show what it does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from agent_runtime.cli.common import (
    EXIT_USAGE,
    Overrides,
    Secrets,
    backend_options,
    config_option,
    configure_logging,
    debug_option,
    exit_with,
    handle_errors,
    load,
)
from agent_runtime.cli.continuing import continue_option, pick_session
from agent_runtime.cli.inputs import read_stdin, session_option, valid_text
from agent_runtime.cli.render import PlainRenderer, TerminalRenderer, format_output
from agent_runtime.cli.signals import StopSignals
from agent_runtime.config import Config
from agent_runtime.results import RunFinished, RunResult
from agent_runtime.text import visible

__all__ = ["run_command"]


def _read_prompt(prompt: str) -> str:
    """The prompt from argv, or stdin for `-`; bytes that are not UTF-8 become U+FFFD."""
    prompt = read_stdin() if prompt == "-" else valid_text(prompt)
    if not prompt.strip():
        exit_with(EXIT_USAGE, "the prompt is empty; give it as an argument or pipe it in with -")
    return prompt


@click.command(name="run")
@click.argument("agent")
@click.argument("prompt")
@config_option
@backend_options
@session_option("Continue this stored conversation.")
@continue_option("Continue the conversation of the last `run`.")
@click.option(
    "--max-turns",
    type=click.IntRange(1),
    metavar="N",
    help="Model calls allowed (default: the agent's).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object: final_output, items, usage, turns, trace_id, agent.",
)
@click.option(
    "--show-reasoning/--hide-reasoning",
    default=None,
    help="Show the model's reasoning (default: in a terminal; in a pipe, on stderr).",
)
@click.option("-v", "--verbose", is_flag=True, help="In a pipe, also print tool calls to stderr.")
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Approve every tool call that needs approval (`approval: always`) without asking.",
)
@debug_option
def run_command(
    agent: str,
    prompt: str,
    config_path: Path,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    session: str | None,
    continue_: bool,
    max_turns: int | None,
    as_json: bool,
    show_reasoning: bool | None,
    verbose: bool,
    yes: bool,
    debug: bool,
) -> None:
    """Run AGENT on PROMPT (`-` reads the prompt from stdin).

    In a terminal it streams the reasoning (dimmed), each tool call and result, then the
    answer. In a pipe only the answer goes to stdout. Bytes of PROMPT that are not UTF-8
    become U+FFFD. Ctrl-C, SIGTERM and SIGHUP stop the run (exit 130, 143, 129): its input
    is kept in the session, the trace gets its end, servers started for it are stopped.

    A call of a tool declared with `approval: always` is shown (tool, agent, arguments) and
    runs only if you answer y; on n, your reason goes to the model. `--yes` approves every
    call; without a terminal on stdin and without `--yes`, such calls are rejected.

    Each run keeps its conversation in the session store: under `--session`, or else a new
    id `run-…`. `--continue` goes on with the newest of those `run-…` conversations, with
    the AGENT named (it may be another one).

    \b
    Examples:
      agent-runtime run weather-haiku "What's the weather in Tokyo?"
      agent-runtime run --continue weather-haiku "And tomorrow?"
    """
    secrets = Secrets()
    secrets.add(api_key)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        text = _read_prompt(prompt)
        config = load(config_path, secrets=secrets)
        session = pick_session(config, session, continue_, kind="run")
        stop.run(
            _run(
                agent=agent,
                prompt=text,
                overrides=Overrides(base_url=base_url, model=model, api_key=api_key),
                session=session,
                max_turns=max_turns,
                as_json=as_json,
                show_reasoning=show_reasoning,
                verbose=verbose,
                yes=yes,
                config=config,
            )
        )


async def _run(
    *,
    agent: str,
    prompt: str,
    overrides: Overrides,
    session: str | None,
    max_turns: int | None,
    as_json: bool,
    show_reasoning: bool | None,
    verbose: bool,
    yes: bool,
    config: Config,
) -> None:
    from rich.console import Console

    from agent_runtime.cli.approval import Approver, events_with_approval
    from agent_runtime.cli.status import launch_status
    from agent_runtime.runtime import Runtime

    async with Runtime(config, **overrides, launch_progress=launch_status()) as runtime:
        approver = Approver(yes=yes, interactive=sys.stdin.isatty(), redact=runtime.redactor.text)
        if as_json:
            result = await runtime.run(agent, prompt, session=session, max_turns=max_turns)
            while result.pending_approvals:
                approve, reject = await approver.decide(result)
                result = await runtime.resume(result, approve=approve, reject=reject)
            click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
            _warn(result)
            return
        console = Console()
        terminal = console.is_terminal
        renderer: TerminalRenderer | PlainRenderer
        if terminal:
            renderer = TerminalRenderer(
                console, show_reasoning=show_reasoning is not False, redact=runtime.redactor.text
            )
        else:
            renderer = PlainRenderer(
                sys.stderr,
                show_reasoning=bool(show_reasoning),
                show_tools=verbose,
                redact=runtime.redactor.text,
            )
        final: RunResult | None = None
        renderer.waiting()
        try:
            events = runtime.stream(agent, prompt, session=session, max_turns=max_turns)
            async for event in events_with_approval(
                runtime,
                events,
                approver,
                before_asking=renderer.close,
                after_asking=renderer.waiting,
            ):
                renderer.event(event)
                if isinstance(event, RunFinished):
                    final = event.result
        finally:
            renderer.close()
        if final is not None and not terminal:
            # color=True: the answer is data for programs, written as the model gave it.
            click.echo(format_output(final.final_output), color=True)
        if final is not None:
            _warn(final)


def _warn(result: RunResult) -> None:
    """What went wrong around an answer that still came (the session not written): a
    `Warning:` line on stderr; the command still succeeds."""
    for warning in result.warnings:
        click.echo(f"Warning: {visible(warning, lines=False)}", err=True)
