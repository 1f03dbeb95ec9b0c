"""Durable runs from the command line: `worker` executes queued runs; `submit`, `result`,
`status`, `cancel` and `runs` queue them and look at them from any machine.

All of them need a `durability:` section in agents.yaml (or its database URL from
`--database-url` / `AGENT_RUNTIME_DATABASE_URL`). Only `worker` launches the durable engine
(DBOS); the others talk to the database as clients, so they never execute a run themselves.
DBOS and the Agents SDK are imported when a command runs, never for `--help`.

Exit codes are those of `run` (see `agent_runtime.cli`), and: `result` of a run not finished
yet (without `--wait`, or when `--timeout` passed) exits `EXIT_PENDING` (5); of a run that
failed, with its error and the exit code `run` would have given; of a cancelled run, 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from agent_runtime.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    Secrets,
    Terminated,
    config_option,
    configure_logging,
    debug_option,
    exit_with,
    handle_errors,
    load,
)
from agent_runtime.cli.inputs import read_stdin, session_option, valid_text
from agent_runtime.cli.signals import StopSignals
from agent_runtime.text import visible

if TYPE_CHECKING:
    from agent_runtime.config import Config
    from agent_runtime.durable import RunState, RunStatus
    from agent_runtime.results import RunResult
    from agent_runtime.runtime import Runtime

__all__ = [
    "EXIT_PENDING",
    "cancel_command",
    "result_command",
    "runs_command",
    "status_command",
    "submit_command",
    "worker_command",
]

EXIT_PENDING = 5
"""`result` of a run that has not finished (yet)."""

STATUSES: tuple[RunState, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
"""`agent_runtime.durable.RUN_STATES`, repeated here so that `--help` imports nothing more."""

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


F = TypeVar("F", bound=Callable[..., Any])


def database_url_option(function: F) -> F:
    """`--database-url URL`: the runs' database instead of `durability.database_url`."""
    return click.option(
        "--database-url",
        metavar="URL",
        help="The runs' database (postgresql://… or sqlite:///…) instead of "
        "durability.database_url in agents.yaml and $AGENT_RUNTIME_DATABASE_URL.",
    )(function)


def json_option(what: str) -> Callable[[F], F]:
    """`--json`: print `what` as JSON."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


def _secrets(database_url: str | None) -> Secrets:
    """The secrets of a command: the password of `--database-url` among them."""
    from agent_runtime.config.durability import database_url_secrets

    secrets = Secrets()
    if database_url:
        secrets.add(*database_url_secrets(database_url))
    return secrets


def _load(config_path: Path, database_url: str | None, secrets: Secrets) -> Config:
    """agents.yaml, checked for what durable runs need: a `durability:` section and a usable
    database URL (exit 2 otherwise); the URL's password joins `secrets`."""
    from agent_runtime.config.durability import (
        DurabilityError,
        database_url_secrets,
        missing_section_message,
    )
    from agent_runtime.config.durability import database_url as resolve

    config = load(config_path, secrets=secrets)
    if config.spec.durability is None:
        exit_with(EXIT_USAGE, missing_section_message(config.source), secrets)
    try:
        url = resolve(config, database_url)
    except DurabilityError as error:
        exit_with(EXIT_USAGE, str(error), secrets)
    secrets.add(*database_url_secrets(url))
    return config


@contextlib.contextmanager
def _run_errors(secrets: Secrets) -> Iterator[None]:
    """An unknown run id is a usage error (exit 2)."""
    from agent_runtime.durable import UnknownRunError

    try:
        yield
    except UnknownRunError as error:
        exit_with(EXIT_USAGE, str(error), secrets)


@contextlib.asynccontextmanager
async def _client(config: Config, database_url: str | None) -> AsyncIterator[Runtime]:
    """A runtime that queues and looks at durable runs (it executes none, starts no server)."""
    from agent_runtime.runtime import Runtime

    runtime = Runtime(config, database_url=database_url)
    try:
        yield runtime
    finally:
        await runtime.aclose()


# -- worker --------------------------------------------------------------------------------------


@click.command(name="worker")
@config_option
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    metavar="N",
    help="Runs executed at once by this worker (default: durability.concurrency).",
)
@database_url_option
@click.option(
    "--drain-grace",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    metavar="S",
    help="On SIGTERM, how long runs in flight may go on before the worker stops.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve this worker's Prometheus metrics at http://HOST:PORT/metrics (0: a free port, "
    "shown at start). Default: not served.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address of --metrics-port: 0.0.0.0 (or ::) for every interface.",
)
@debug_option
def worker_command(
    config_path: Path,
    concurrency: int | None,
    database_url: str | None,
    drain_grace: float,
    metrics_port: int | None,
    metrics_host: str,
    debug: bool,
) -> None:
    """Execute queued durable runs until stopped; start as many as you like, on any machine
    that reaches the database and the model servers.

    Each worker beats a heartbeat into the database every second; when one stops beating
    (killed, machine gone) for durability.takeover_after_s, another takes its unfinished runs
    over: their finished model and tool calls are not repeated.

    SIGTERM, SIGINT (Ctrl-C) or SIGHUP: the worker takes no new runs, lets those in flight
    finish for up to --drain-grace seconds, then stops (exit 0); runs still unfinished then are
    taken over by another worker. A second signal stops it at once.

    With --metrics-port, the worker serves its Prometheus metrics (runs, model and tool calls,
    tokens, retries, runs in flight: see agent_runtime.metrics) for Prometheus to scrape.

    \b
    Example:
      agent-runtime worker --concurrency 20 --metrics-port 9464 \\
        --database-url postgresql://app:$PGPASSWORD@db:5432/agents
    """
    secrets = _secrets(database_url)
    _configure_logging(debug, secrets)
    with handle_errors(debug, secrets):
        config = _load(config_path, database_url, secrets)
        metrics = None if metrics_port is None else (metrics_host, metrics_port)
        _run_loop(_work(config, database_url, concurrency, drain_grace, debug, metrics))


def _configure_logging(debug: bool, secrets: Secrets) -> None:
    """Warnings on stderr (a takeover is one), everything with --debug."""
    configure_logging(debug, secrets)
    if not debug:
        logging.getLogger().setLevel(logging.WARNING)
        # DBOS logs every start-up step at INFO on its own handler.
        logging.getLogger("dbos").setLevel(logging.WARNING)


@contextlib.asynccontextmanager
async def _metrics(runtime: Runtime, address: tuple[str, int] | None) -> AsyncIterator[None]:
    """The runtime's metrics served at `address` (host, port) while the block runs; nothing
    when None. A port that cannot be listened on is a usage error (exit 2)."""
    if address is None:
        yield
        return
    from agent_runtime.errors import AgentRuntimeError
    from agent_runtime.metrics import Metrics

    metrics = Metrics()
    stop = metrics.attach(runtime)
    try:
        server = metrics.serve(*address)
    except AgentRuntimeError as error:
        stop()
        reason = error.__cause__.strerror if isinstance(error.__cause__, OSError) else None
        host, port = address
        exit_with(
            EXIT_USAGE,
            f"cannot serve the metrics on {host}:{port}: {reason or error}. Choose another "
            "--metrics-port, or a --metrics-host of this machine.",
        )
    click.echo(f"Metrics at {server.url}", err=True)
    try:
        yield
    finally:
        stop()
        server.close()


async def _work(
    config: Config,
    database_url: str | None,
    concurrency: int | None,
    grace: float,
    debug: bool,
    metrics: tuple[str, int] | None = None,
) -> None:
    from agent_runtime.durable.worker import Worker
    from agent_runtime.runtime import Runtime

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stop = asyncio.Event()
    force = asyncio.Event()
    received: list[int] = []
    started = False

    def on_signal(signum: int) -> None:
        received.append(signum)
        if not started:
            main.cancel()
        (force if stop.is_set() else stop).set()

    heeded = [s for s in _STOP_SIGNALS if signal.getsignal(s) != signal.SIG_IGN]
    for signum in heeded:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        async with (
            Runtime(config, database_url=database_url) as runtime,
            _metrics(runtime, metrics),
            Worker(runtime, concurrency=concurrency) as worker,
        ):
            started = True
            if not debug:
                # DBOS configures its logger as it starts; a run cut off when the worker stops
                # is expected, not worth its warning.
                logging.getLogger("dbos").setLevel(logging.ERROR)
            click.echo(worker.ready_line, err=True)
            await worker.wait(stop)
            if worker.lost:
                exit_with(
                    EXIT_ERROR,
                    f"worker {worker.executor_id} was silent for more than "
                    f"{worker.takeover_after_s:g} s and its runs were taken over by another "
                    "worker; it stopped. Check the database connection and start it again.",
                )
            in_flight = worker.in_flight
            click.echo(
                f"Stopping: no new runs; {in_flight} run{'s' if in_flight != 1 else ''} in "
                f"flight may go on for up to {grace:g} s (signal again to stop now).",
                err=True,
            )
            left = await worker.drain(grace, force)
            if left:
                click.echo(
                    f"Stopped with {left} run{'s' if left != 1 else ''} unfinished: another "
                    f"worker takes {'them' if left != 1 else 'it'} over.",
                    err=True,
                )
    except asyncio.CancelledError:
        if received and not started:
            raise Terminated(received[0]) from None
        raise
    finally:
        for signum in heeded:
            loop.remove_signal_handler(signum)


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner() as runner:
        runner.run(main)


# -- submit --------------------------------------------------------------------------------------


@click.command(name="submit")
@click.argument("agent")
@click.argument("input")
@config_option
@database_url_option
@session_option("Continue this stored conversation (runs of one session go in order).")
@click.option(
    "--run-id",
    metavar="ID",
    help="The run's id (default: a new one); submitting the same id again is the same run.",
)
@debug_option
def submit_command(
    agent: str,
    input: str,
    config_path: Path,
    database_url: str | None,
    session: str | None,
    run_id: str | None,
    debug: bool,
) -> None:
    """Queue a durable run of AGENT on INPUT (`-` reads stdin) and print its id alone.

    A worker (`agent-runtime worker`) executes it; follow it with `status`, get its answer
    with `result`.

    \b
    Example:
      id=$(agent-runtime submit weather-haiku "What's the weather in Tokyo?")
      agent-runtime result "$id" --wait
    """
    secrets = _secrets(database_url)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        text = read_stdin() if input == "-" else valid_text(input)
        if not text.strip():
            exit_with(EXIT_USAGE, "the input is empty; give it as an argument or pipe it in with -")
        if run_id is not None and not run_id.strip():
            exit_with(EXIT_USAGE, "the run id is empty; give one, or leave out --run-id")
        config = _load(config_path, database_url, secrets)

        async def submit() -> str:
            async with _client(config, database_url) as runtime:
                handle = await runtime.submit(agent, text, session=session, run_id=run_id)
                return handle.run_id

        click.echo(stop.run(submit()))


# -- result --------------------------------------------------------------------------------------


@click.command(name="result")
@click.argument("run_id", metavar="RUN_ID")
@config_option
@database_url_option
@click.option("--wait", is_flag=True, help="Wait until the run has finished.")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    metavar="S",
    help="With --wait: give up after S seconds (exit 5).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Print the run's reasoning, tool calls and results on stderr as its steps finish, "
    "then its final output (waits for the end).",
)
@json_option("the whole result (final_output, items, usage, turns, trace_id, agent)")
@debug_option
def result_command(
    run_id: str,
    config_path: Path,
    database_url: str | None,
    wait: bool,
    timeout: float | None,
    follow: bool,
    as_json: bool,
    debug: bool,
) -> None:
    """Print the final output of run RUN_ID, as `run` prints it.

    A run not finished yet: a message and exit 5 (with --wait, once --timeout has passed).
    A failed run: its error and the exit code `run` would have given (3 model server, 4 run
    limit, 1 other); a cancelled run: exit 1. --follow shows the run's steps as they finish
    (from any machine; the model's text comes whole, not token by token).
    """
    if timeout is not None and not wait:
        exit_with(EXIT_USAGE, "--timeout needs --wait")
    if timeout is not None and follow:
        exit_with(EXIT_USAGE, "--timeout cannot be used with --follow")
    secrets = _secrets(database_url)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        config = _load(config_path, database_url, secrets)
        with _run_errors(secrets):
            stop.run(_result(config, database_url, run_id, wait, timeout, as_json, follow))


async def _result(
    config: Config,
    database_url: str | None,
    run_id: str,
    wait: bool,
    timeout_s: float | None,
    as_json: bool,
    follow: bool = False,
) -> None:
    from agent_runtime.cli.render import format_output
    from agent_runtime.durable import RunPendingError

    async with _client(config, database_url) as runtime:
        if follow:
            result = await _followed(runtime, run_id)
        else:
            try:
                result = await runtime.result(run_id, wait=wait, timeout=timeout_s)
            except RunPendingError as pending:
                exit_with(EXIT_PENDING, str(pending))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        # color=True: the answer is data for programs, written as the model gave it.
        click.echo(format_output(result.final_output), color=True)
    for warning in result.warnings:
        click.echo(f"Warning: {visible(warning, lines=False)}", err=True)


async def _followed(runtime: Runtime, run_id: str) -> RunResult:
    """The run's result, its events shown on stderr as they come (`result --follow`)."""
    from agent_runtime.cli.render import PlainRenderer
    from agent_runtime.results import RunFinished

    renderer = PlainRenderer(
        sys.stderr, show_reasoning=True, show_tools=True, redact=runtime.redactor.text
    )
    result: RunResult | None = None
    try:
        async for event in runtime.follow(run_id):
            renderer.event(event)
            if isinstance(event, RunFinished):
                result = event.result
    finally:
        renderer.close()
    if result is None:  # pragma: no cover - a followed run ends with RunFinished or raises
        raise RuntimeError(f"run {run_id!r} ended without a result")
    return result


# -- status, cancel, runs -----------------------------------------------------------------------


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _status_lines(status: RunStatus) -> str:
    rows = [
        ("run", status.run_id),
        ("agent", status.agent),
        ("status", status.status),
        ("created", _when(status.created_at)),
        ("updated", _when(status.updated_at)),
        ("session", status.session or "-"),
        ("input", status.input_preview or "-"),
        ("worker", status.executor or "-"),
    ]
    if status.error:
        rows.append(("error", status.error))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {visible(value)}" for name, value in rows)


@click.command(name="status")
@click.argument("run_id", metavar="RUN_ID")
@config_option
@database_url_option
@json_option("the status")
@debug_option
def status_command(
    run_id: str, config_path: Path, database_url: str | None, as_json: bool, debug: bool
) -> None:
    """Show run RUN_ID: its agent, status (queued, running, succeeded, failed, cancelled),
    times, session, the start of its input, its error and the worker executing it."""
    secrets = _secrets(database_url)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        config = _load(config_path, database_url, secrets)

        async def status() -> RunStatus:
            async with _client(config, database_url) as runtime:
                return runtime.status(run_id)

        with _run_errors(secrets):
            found = stop.run(status())
        if as_json:
            click.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        else:
            click.echo(_status_lines(found))


@click.command(name="cancel")
@click.argument("run_id", metavar="RUN_ID")
@config_option
@database_url_option
@json_option("the status after cancelling")
@debug_option
def cancel_command(
    run_id: str, config_path: Path, database_url: str | None, as_json: bool, debug: bool
) -> None:
    """Cancel run RUN_ID: a queued run never starts, a running one stops at its next model
    or tool call. A run that has finished is left as it is (and said so)."""
    secrets = _secrets(database_url)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        config = _load(config_path, database_url, secrets)

        async def cancel() -> RunStatus:
            async with _client(config, database_url) as runtime:
                return await runtime.cancel(run_id)

        with _run_errors(secrets):
            found = stop.run(cancel())
        if as_json:
            click.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        elif found.status == "cancelled":
            click.echo(f"Cancelled run {visible(found.run_id)}.")
        else:
            click.echo(f"Run {visible(found.run_id)} had already {found.status}; left as it is.")


@click.command(name="runs")
@config_option
@database_url_option
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    metavar="N",
    help="How many runs to show.",
)
@click.option("--agent", metavar="AGENT", help="Only the runs of this agent.")
@click.option(
    "--status",
    "state",
    type=click.Choice(STATUSES),
    help="Only the runs in this state.",
)
@json_option("a list of run statuses")
@debug_option
def runs_command(
    config_path: Path,
    database_url: str | None,
    limit: int,
    agent: str | None,
    state: RunState | None,
    as_json: bool,
    debug: bool,
) -> None:
    """List recent durable runs, newest first: id, agent, status, when created, session and
    the start of the input."""
    secrets = _secrets(database_url)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        config = _load(config_path, database_url, secrets)

        async def runs() -> list[RunStatus]:
            async with _client(config, database_url) as runtime:
                return runtime.runs(limit=limit, agent=agent, status=state)

        found = stop.run(runs())
        if as_json:
            click.echo(json.dumps([run.to_dict() for run in found], indent=2, ensure_ascii=False))
            return
        if not found:
            click.echo("No runs.", err=True)
            return
        table = [["RUN", "AGENT", "STATUS", "CREATED", "SESSION", "INPUT"]]
        for run in found:
            table.append(
                [
                    visible(run.run_id),
                    run.agent,
                    run.status,
                    _when(run.created_at),
                    visible(run.session or "-"),
                    visible(_shorten(run.input_preview or "-", 40)),
                ]
            )
        click.echo(_table(table))


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
