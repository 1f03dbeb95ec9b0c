"""What every command shares: the `-c/--config` option, loading, errors and exit codes."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypedDict, TypeVar

import click

from agent_runtime.config import Config, load_config
from agent_runtime.errors import (
    AgentRuntimeError,
    BackendError,
    ConfigError,
    RunLimitError,
)

__all__ = [
    "EXIT_BACKEND",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_LIMIT",
    "EXIT_STDOUT_CLOSED",
    "EXIT_USAGE",
    "Overrides",
    "backend_options",
    "config_option",
    "configure_logging",
    "debug_option",
    "exit_stdout_closed",
    "exit_with",
    "handle_errors",
    "load",
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
EXIT_LIMIT = 4
EXIT_INTERRUPTED = 130
EXIT_STDOUT_CLOSED = 141
"""128 + SIGPIPE: what a shell reports for a command whose reader went away (`| head`)."""


class Overrides(TypedDict):
    """`--base-url`, `--model`, `--api-key` as `Runtime` keyword arguments."""

    base_url: str | None
    model: str | None
    api_key: str | None


def configure_logging(debug: bool) -> None:
    """Debug logs with --debug; otherwise none: errors reach the user as `Error:` lines."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.CRITICAL,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def backend_options(function: click.decorators.FC) -> click.decorators.FC:
    """`--base-url`, `--model`, `--api-key`: point the agents' backends somewhere else."""
    for option in (
        click.option(
            "--api-key",
            metavar="KEY",
            help="API key for the model server (instead of agents.yaml's).",
        ),
        click.option("--model", metavar="NAME", help="Model name to request instead."),
        click.option(
            "--base-url", metavar="URL", help="Model server to use instead (e.g. a mock's URL)."
        ),
    ):
        function = option(function)
    return function


F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    """`-c/--config PATH` (default `$AGENT_RUNTIME_CONFIG`, then ./agents.yaml)."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="AGENT_RUNTIME_CONFIG",
        show_envvar=True,
        default="agents.yaml",
        show_default=True,
        help="The agents.yaml to use.",
    )(function)


def debug_option(function: F) -> F:
    """`--debug`: show tracebacks and debug logs."""
    return click.option("--debug", is_flag=True, help="Show tracebacks and debug logs on errors.")(
        function
    )


def exit_with(code: int, message: str) -> NoReturn:
    """Print `Error: message` on stderr and exit with `code`."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def exit_stdout_closed() -> NoReturn:
    """Exit quietly because whoever read stdout stopped (`agent-runtime doctor | head -3`).

    stdout is pointed at /dev/null first, so that what is still buffered, and the flush when
    Python exits, do not raise the broken pipe again.
    """
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    sys.exit(EXIT_STDOUT_CLOSED)


def load(path: Path, *, import_tools: bool = True) -> Config:
    """Load agents.yaml; a missing file gets a message that says where it looked."""
    if not path.exists():
        exit_with(
            EXIT_USAGE,
            f"no agents.yaml at {path.resolve()}. Create one, pass -c/--config PATH, or set "
            "AGENT_RUNTIME_CONFIG.",
        )
    return load_config(path, import_tools=import_tools)


def exit_code(error: BaseException) -> int:
    """The exit code for an error that ended a command."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, ConfigError):
        return EXIT_USAGE
    if isinstance(error, BackendError):
        return EXIT_BACKEND
    if isinstance(error, RunLimitError):
        return EXIT_LIMIT
    return EXIT_ERROR


@contextlib.contextmanager
def handle_errors(debug: bool) -> Iterator[None]:
    """Turn errors into `Error: …` lines and exit codes; tracebacks only with `--debug`.

    A closed stdout is no error: the command exits quietly (`exit_stdout_closed`).
    """
    try:
        yield
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        exit_stdout_closed()
    except AgentRuntimeError as error:
        if debug:
            traceback.print_exc()
        exit_with(exit_code(error), str(error))
    except Exception as error:
        if debug:
            traceback.print_exc()
            sys.exit(EXIT_ERROR)
        exit_with(
            EXIT_ERROR,
            f"{type(error).__name__}: {error} (run again with --debug for the traceback)",
        )
