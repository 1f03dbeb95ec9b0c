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
from agent_runtime.redact import RedactFilter, Redactor, redact_text
from agent_runtime.text import visible

__all__ = [
    "EXIT_BACKEND",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_LIMIT",
    "EXIT_STDOUT_CLOSED",
    "EXIT_USAGE",
    "Overrides",
    "Secrets",
    "Terminated",
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


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by SIGTERM or SIGHUP: it ends like Ctrl-C (input kept,
    `run_end` written, servers it started stopped), with the shell's exit code 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        import signal

        return signal.Signals(self.signum).name


class Secrets:
    """The secrets a command knows, masked in its `Error:` lines, `--debug` tracebacks and log
    lines: at first only the patterns of `agent_runtime.redact` (URL user-info, `Authorization`,
    `Bearer`, `--api-key`); then the configuration's (`load(..., secrets=...)`) and keys given
    on the command line (`add`).

    ```python
    secrets = Secrets()
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets):
        secrets.add(api_key)
        config = load(config_path, secrets=secrets)
    ```
    """

    def __init__(self) -> None:
        self.redactor = Redactor()

    def add(self, *values: str | None) -> None:
        """Mask `values` too (None and empty ones are skipped)."""
        new = [value for value in values if value]
        if new:
            self.redactor = self.redactor.with_secrets(new)

    def add_config(self, config: Config) -> None:
        """Mask the secrets of `config` too (`Config.secrets()`)."""
        self.add(*config.secrets())

    def text(self, text: str) -> str:
        """`text` with every known secret masked."""
        return self.redactor.text(text)


class Overrides(TypedDict):
    """`--base-url`, `--model`, `--api-key` as `Runtime` keyword arguments."""

    base_url: str | None
    model: str | None
    api_key: str | None


def configure_logging(debug: bool, secrets: Secrets | None = None) -> None:
    """Debug logs with --debug; otherwise none: errors reach the user as `Error:` lines. Every
    line passes through `secrets` (the patterns only without it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets.text if secrets is not None else redact_text))
    logging.basicConfig(level=logging.DEBUG if debug else logging.CRITICAL, handlers=[handler])


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


def exit_with(code: int, message: str, secrets: Secrets | None = None) -> NoReturn:
    """Print `Error: message` on stderr, secrets masked and control characters shown (server
    and tool text can be in it), and exit with `code`."""
    click.echo(f"Error: {visible(_redact(message, secrets))}", err=True)
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


def load(path: Path, *, import_tools: bool = True, secrets: Secrets | None = None) -> Config:
    """Load agents.yaml; a missing file gets a message that says where it looked. The secrets
    of the configuration are added to `secrets`."""
    if not path.exists():
        exit_with(
            EXIT_USAGE,
            f"no agents.yaml at {path.resolve()}. Create one, pass -c/--config PATH, or set "
            "AGENT_RUNTIME_CONFIG.",
        )
    config = load_config(path, import_tools=import_tools)
    if secrets is not None:
        secrets.add_config(config)
    return config


def exit_code(error: BaseException) -> int:
    """The exit code for an error that ended a command."""
    if isinstance(error, Terminated):
        return error.exit_code
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
def handle_errors(debug: bool, secrets: Secrets | None = None) -> Iterator[None]:
    """Turn errors into `Error: …` lines and exit codes; tracebacks only with `--debug`. Both
    pass through `secrets` (the patterns of `agent_runtime.redact` without it).

    A closed stdout is no error: the command exits quietly (`exit_stdout_closed`).
    """
    try:
        yield
    except Terminated as stop:
        click.echo(f"\nStopped by {stop.signal_name}.", err=True)
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        exit_stdout_closed()
    except AgentRuntimeError as error:
        if debug:
            _print_traceback(secrets)
        exit_with(exit_code(error), str(error), secrets)
    except Exception as error:
        if debug:
            _print_traceback(secrets)
            sys.exit(EXIT_ERROR)
        exit_with(
            EXIT_ERROR,
            f"{type(error).__name__}: {error} (run again with --debug for the traceback)",
            secrets,
        )


def _print_traceback(secrets: Secrets | None) -> None:
    """The traceback of the error being handled, on stderr, secrets masked."""
    click.echo(_redact(traceback.format_exc(), secrets), err=True, nl=False)


def _redact(text: str, secrets: Secrets | None) -> str:
    return secrets.text(text) if secrets is not None else redact_text(text)
