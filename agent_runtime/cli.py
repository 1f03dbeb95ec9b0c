"""The `agent-runtime` command line. The only module that reads argv and the environment."""

from __future__ import annotations

import click

from agent_runtime import __version__
from agent_runtime.testing.command import mock_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="agent-runtime")
def cli() -> None:
    """Tool-calling agents on self-hosted gpt-oss, declared in one agents.yaml."""


cli.add_command(mock_command)


def main() -> None:
    """Entry point of the `agent-runtime` console script."""
    cli(prog_name="agent-runtime")
