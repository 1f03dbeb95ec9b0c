"""The `agent-runtime` command line. The only part of the package that reads argv and the
environment; it assembles a `Runtime` and renders what it does.

Exit codes: 0 ok; 2 bad config or usage; 3 model server unreachable or failing after retries;
4 run limit hit (max turns, time budget); 5 a durable run not finished yet (`result`); 130
interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP; 141 stdout closed early (`| head`), quietly; 1
anything else.

Each command's module is imported only when that command runs, so `--help` and the fast
commands start quickly.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from agent_runtime import __version__

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("agent_runtime.cli.run", "run_command", "Run AGENT on PROMPT."),
    "chat": ("agent_runtime.cli.chat", "chat_command", "Talk with AGENT, with memory."),
    "list": ("agent_runtime.cli.info", "list_command", "List the agents, backends and tools."),
    "validate": ("agent_runtime.cli.info", "validate_command", "Check agents.yaml."),
    "schema": ("agent_runtime.cli.info", "schema_command", "Print agents.yaml's JSON Schema."),
    "doctor": ("agent_runtime.cli.doctor", "doctor_command", "Check a live model server."),
    "up": ("agent_runtime.cli.up", "up_command", "Start a backend's vLLM server, until Ctrl-C."),
    "serve": (
        "agent_runtime.cli.serve",
        "serve_command",
        "Serve every agent as an OpenAI-compatible model (HTTP).",
    ),
    "worker": ("agent_runtime.cli.durable", "worker_command", "Execute queued durable runs."),
    "submit": ("agent_runtime.cli.durable", "submit_command", "Queue a durable run; print its id."),
    "result": ("agent_runtime.cli.durable", "result_command", "Print a durable run's answer."),
    "status": ("agent_runtime.cli.durable", "status_command", "Show where a durable run is."),
    "cancel": ("agent_runtime.cli.durable", "cancel_command", "Cancel a durable run."),
    "runs": ("agent_runtime.cli.durable", "runs_command", "List recent durable runs."),
    "logs": ("agent_runtime.cli.logs", "logs_command", "List logged runs, or show one run."),
    "mock": ("agent_runtime.testing.command", "mock_command", "Run the mock vLLM server."),
    "eval": ("agent_runtime.cli.eval", "eval_command", "Run eval files' cases and check them."),
}
"""Command name → (module, attribute, one-line help shown by `agent-runtime --help`)."""


@contextlib.contextmanager
def _stdout_closed_quietly() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        from agent_runtime.cli.common import exit_stdout_closed

        exit_stdout_closed()


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    # A reader that goes away (`agent-runtime doctor | head -3`) ends any command quietly:
    # `--help` and `--version` are printed while parsing, everything else while invoking.

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _stdout_closed_quietly():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with _stdout_closed_quietly():
            try:
                return super().invoke(ctx)
            finally:
                sys.stdout.flush()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help) for name, (_, _, help) in COMMANDS.items()])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="agent-runtime")
def cli() -> None:
    """Tool-calling agents on self-hosted gpt-oss, declared in one agents.yaml.

    \b
    Quick start (no GPU needed):
      agent-runtime mock --script examples/weather-haiku.mock.yaml &
      agent-runtime run weather-haiku "What's the weather in Tokyo?"

    Run `agent-runtime COMMAND --help` for a command's options. Exit codes: 0 ok, 2 bad
    config or usage, 3 model server unreachable or failing, 4 run limit hit, 5 durable run
    not finished yet, 130 interrupted (143 SIGTERM, 129 SIGHUP), 141 stdout closed early, 1
    anything else.
    """


def main() -> None:
    """Entry point of the `agent-runtime` console script."""
    cli(prog_name="agent-runtime")
