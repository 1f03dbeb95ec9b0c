"""`agent-runtime serve`: every agent of agents.yaml as an OpenAI-compatible model over HTTP.

The app (`agent_runtime.server.create_app`) runs under uvicorn on a socket bound here first, so
that a port in use is a one-line error (exit 2) before any model server is started.

Stopping drains: the first SIGTERM, SIGINT (Ctrl-C) or SIGHUP makes new `/v1` runs get 503
while the runs in flight go on for up to `drain_grace_s`; then the server stops, runs still
going are cancelled (their input kept in the session) and the command exits 0. A second
signal cuts the grace short.

With `--workers N` the socket is bound once and N processes (forked) serve it; the command
forwards stop signals to them and exits 0 once all have drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
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

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

    from agent_runtime.config import Config
    from agent_runtime.server.options import ServeOptions

__all__ = ["CLOSE_S", "serve_command"]

T = TypeVar("T")

CLOSE_S = 2
"""After the grace period, how long responses get to be written and connections closed
before what is left is cancelled."""

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@click.command(name="serve")
@config_option
@click.option(
    "--host", metavar="HOST", help="Address to listen on (default: serve.host, 127.0.0.1)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Port to listen on (default: serve.port, 8080); 0 picks a free one.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    metavar="N",
    help="Processes serving the same port (each with its own runtime).",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY",
    help="A key clients must send as `Authorization: Bearer KEY` (repeatable); replaces "
    "serve.api_keys.",
)
@click.option(
    "--ui/--no-ui", default=None, help="Serve the dev UI at / (default: on for a loopback host)."
)
@click.option(
    "--drain-grace",
    type=click.FloatRange(0),
    metavar="S",
    help="On SIGTERM, how long runs in flight may go on (default: serve.drain_grace_s, 30).",
)
@debug_option
def serve_command(
    config_path: Path,
    host: str | None,
    port: int | None,
    workers: int,
    api_keys: tuple[str, ...],
    ui: bool | None,
    drain_grace: float | None,
    debug: bool,
) -> None:
    """Serve every agent as an OpenAI-compatible model: /v1/responses, /v1/chat/completions,
    /v1/models; /health, /ready, /metrics; a dev UI at /.

    SIGTERM, SIGINT (Ctrl-C) or SIGHUP drain the server: new runs get 503, runs in flight go
    on for up to --drain-grace seconds, then it stops (exit 0). A second signal stops it at
    once. A port in use is an error (exit 2).

    \b
    Example:
      agent-runtime serve --port 8080 --api-key "$SERVE_KEY"
      curl localhost:8080/v1/models -H "Authorization: Bearer $SERVE_KEY"
    """
    secrets = Secrets()
    secrets.add(*api_keys)
    _configure_logging(debug, secrets)
    with handle_errors(debug, secrets):
        config = load(config_path, secrets=secrets)
        from agent_runtime.server.options import ServeOptions

        spec = config.spec.serve
        setup = _Setup(
            config=config,
            host=host or spec.host,
            options=ServeOptions.from_config(
                config, host=host, api_keys=api_keys, ui=ui, drain_grace_s=drain_grace
            ),
            debug=debug,
            secrets=secrets,
        )
        sock = _bind(setup.host, spec.port if port is None else port)
        if workers == 1:
            with _logs_off_the_loop():
                _run_loop(_serve(setup, sock, announce=True))
        else:
            code = _supervise(setup, sock, workers)
            if code:
                exit_with(EXIT_ERROR, f"{code} worker(s) of {workers} did not end cleanly")


def _configure_logging(debug: bool, secrets: Secrets) -> None:
    """On stderr, secrets masked: the access log (one line per request) and warnings; with
    `--debug` everything."""
    from agent_runtime.server.access_log import LOGGER_NAME

    configure_logging(debug, secrets)
    if not debug:
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger(LOGGER_NAME).setLevel(logging.INFO)


@contextlib.contextmanager
def _logs_off_the_loop() -> Iterator[None]:
    """While serving, log lines (the access log above all) are written to stderr by a thread
    of their own: a slow reader of stderr (a full pipe) then never holds up the event loop.
    What is queued is written before this ends."""
    import queue
    from logging.handlers import QueueHandler, QueueListener

    root = logging.getLogger()
    handlers = list(root.handlers)
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(lines, *handlers, respect_handler_level=True)
    root.handlers = [QueueHandler(lines)]
    listener.start()
    try:
        yield
    finally:
        listener.stop()
        root.handlers = handlers


@dataclass(frozen=True, slots=True)
class _Setup:
    config: Config
    host: str
    options: ServeOptions
    debug: bool
    secrets: Secrets

    def url(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    def ready_line(self, port: int, workers: int = 1) -> str:
        url = self.url(port)
        agents = len(self.config.spec.agents)
        ui = f"UI: {url}/" if self.options.ui else "UI off"
        line = f"Serving {agents} agent{'s' if agents != 1 else ''} at {url}/v1 ({ui})"
        return line + (f", {workers} workers" if workers > 1 else "")


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, not yet listening; a clear usage error when it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        exit_with(EXIT_USAGE, f"cannot listen on {host!r}: {exc.strerror}. Check --host.")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        if exc.errno == errno.EADDRINUSE:
            exit_with(
                EXIT_USAGE,
                f"cannot listen on {where}: the port is in use (another server?). Stop it, or "
                "pick another port with --port (0 picks a free one).",
            )
        exit_with(EXIT_USAGE, f"cannot listen on {where}: {exc.strerror}. Check --host and --port.")
    return sock


async def _serve(
    setup: _Setup, sock: socket.socket, *, announce: bool, ready: int | None = None
) -> None:
    """Run the app on `sock` until a stop signal, then drain (see the module)."""
    import uvicorn

    from agent_runtime.cli.status import launch_status
    from agent_runtime.runtime import Runtime
    from agent_runtime.server.app import create_app
    from agent_runtime.server.http import http_protocol

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stop = asyncio.Event()
    force = asyncio.Event()
    received: list[int] = []
    started = False

    def on_signal(signum: int) -> None:
        received.append(signum)
        if not started:  # still starting (a model server launching): stop as Ctrl-C does
            main.cancel()
        (force if stop.is_set() else stop).set()

    heeded = [s for s in _STOP_SIGNALS if signal.getsignal(s) != signal.SIG_IGN]
    for signum in heeded:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        async with Runtime(setup.config, launch_progress=launch_status()) as runtime:
            app = create_app(runtime, setup.options)
            config = uvicorn.Config(
                app,
                http=http_protocol(),
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=CLOSE_S,
            )
            server = _uvicorn_server(config)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            if not await _started(server, serving):
                await serving  # raises what ended it
                return
            started = True
            if announce:
                click.echo(setup.ready_line(sock.getsockname()[1]), err=True)
            if ready is not None:
                os.write(ready, b"1")
                os.close(ready)
            await _first(stop.wait(), serving)
            if not serving.done():
                await _drain(app, server, setup.options.drain_grace_s, force, announce=announce)
            await serving
    except asyncio.CancelledError:
        if received and not started:
            raise Terminated(received[0]) from None
        raise
    finally:
        for signum in heeded:
            loop.remove_signal_handler(signum)


def _uvicorn_server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn's server without its own signal handling: `_serve` drains on signals."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    """Wait until uvicorn listens (True) or has ended (False)."""
    while not server.started:
        if serving.done():
            return False
        await asyncio.sleep(0.02)
    return True


async def _first(*awaitables: Any) -> None:
    """Wait until the first of `awaitables` is done; cancel the others (tasks given are kept)."""
    tasks = [a if isinstance(a, asyncio.Task) else asyncio.ensure_future(a) for a in awaitables]
    given = {a for a in awaitables if isinstance(a, asyncio.Task)}
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        if task not in given:
            task.cancel()


async def _drain(
    app: Starlette, server: uvicorn.Server, grace: float, force: asyncio.Event, *, announce: bool
) -> None:
    """New runs get 503; runs in flight go on up to `grace` seconds (less on a second signal);
    then uvicorn stops, cancelling what is left after `CLOSE_S`."""
    from agent_runtime.server.state import ServerState

    state = app.state.server
    assert isinstance(state, ServerState)
    gate = state.gate
    gate.start_draining()
    if announce:
        runs = gate.in_flight
        click.echo(
            f"Stopping: new runs get 503; {runs} run{'s' if runs != 1 else ''} in flight may go "
            f"on for up to {grace:g} s (signal again to stop now).",
            err=True,
        )
    await _first(gate.drained(grace), force.wait())
    if force.is_set():
        server.config.timeout_graceful_shutdown = 0
    server.should_exit = True
    forced = asyncio.ensure_future(force.wait())
    forced.add_done_callback(lambda _: setattr(server, "force_exit", True))


def _supervise(setup: _Setup, sock: socket.socket, workers: int) -> int:
    """Fork `workers` processes serving `sock` and wait for them; the number that failed.

    Workers heed SIGTERM only: a stop signal to this process (Ctrl-C in a terminal reaches the
    whole process group) is passed on to each as one SIGTERM, a second as another.

    Raises:
        Terminated: a stop signal came before every worker was serving.
    """
    port = sock.getsockname()[1]
    children: list[int] = []
    received: list[int] = []
    ready = 0

    def stop_all(signum: int, _frame: object = None) -> None:
        if not received and ready == workers:
            click.echo(
                f"Stopping: new runs get 503; runs in flight may go on for up to "
                f"{setup.options.drain_grace_s:g} s (signal again to stop now).",
                err=True,
            )
        received.append(signum)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    previous = {s: signal.signal(s, stop_all) for s in _STOP_SIGNALS}
    try:
        reader, writer = os.pipe()
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                os.close(reader)
                os._exit(_worker(setup, sock, writer))
            children.append(pid)
        os.close(writer)
        sock.close()
        while ready < workers:
            chunk = os.read(reader, workers)
            if not chunk:  # a worker ended before it served
                stop_all(signal.SIGTERM)
                break
            ready += len(chunk)
        os.close(reader)
        if ready == workers:
            click.echo(setup.ready_line(port, workers), err=True)
        failed = 0
        for child in children:
            _, status = os.waitpid(child, 0)
            code = os.waitstatus_to_exitcode(status)
            stopped = received and code in (128 + signal.SIGTERM, -signal.SIGTERM)
            failed += code != 0 and not stopped
        if received and ready < workers:
            raise Terminated(received[0])
        return failed
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _worker(setup: _Setup, sock: socket.socket, ready: int) -> int:
    """One forked worker: serve until SIGTERM; its exit code."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        with handle_errors(setup.debug, setup.secrets), _logs_off_the_loop():
            _run_loop(_serve(setup, sock, announce=False, ready=ready))
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else EXIT_ERROR
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def _run_loop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop when it is installed (a dependency on Linux and macOS:
    a faster event loop for the HTTP server and the model calls), asyncio's loop otherwise."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
