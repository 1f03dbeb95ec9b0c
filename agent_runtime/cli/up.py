"""`agent-runtime up [BACKEND]`: start a backend's vLLM server and keep it in the foreground."""

from __future__ import annotations

import asyncio
import codecs
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent_runtime.cli.common import (
    EXIT_USAGE,
    Secrets,
    config_option,
    configure_logging,
    debug_option,
    exit_with,
    handle_errors,
    load,
)
from agent_runtime.cli.signals import StopSignals
from agent_runtime.cli.status import LaunchStatus
from agent_runtime.config import Config
from agent_runtime.text import unknown

if TYPE_CHECKING:
    from rich.console import Console

    from agent_runtime.launch import LaunchPlan, LaunchProgress, ManagedServer

__all__ = ["up_command"]


class _LogFollower:
    """Copies what a server writes to its log onto stderr, from a given offset on."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def echo(self) -> None:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                data = log.read()
        except OSError:
            return
        self.offset += len(data)
        text = self._decoder.decode(data)
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()


@click.command(name="up")
@click.argument("backend", required=False)
@config_option
@debug_option
def up_command(backend: str | None, config_path: Path, debug: bool) -> None:
    """Start BACKEND's model server and keep it running until Ctrl-C.

    It runs `vllm serve MODEL` with gpt-oss's flags (`--tool-call-parser openai
    --enable-auto-tool-choice --reasoning-parser openai_gptoss`), the backend's `serve_args`,
    on the host and port of its base_url (or the backend's `launch_command`), waits until
    `/health` and `/v1/models` answer (in a terminal a spinner shows the latest line of the
    server's log meanwhile), prints the base URL on stdout, then follows the server's log on
    stderr. Ctrl-C, SIGTERM or SIGHUP stops the server. A server that is already running at
    base_url is left as it is: the command says so and exits.

    Without BACKEND: the backend with `launch: auto` (or the only backend). A backend with
    `launch: never` (the default) is not started: the command only says whether its server
    answers (exit 0) or what to do (exit 2).

    Exit codes: 0 stopped by Ctrl-C, SIGTERM or SIGHUP, or already running; 2 bad config or
    usage, or `launch: never` and no server ready; 3 the server could not start or stopped on
    its own; 130, 143, 129 stopped by Ctrl-C, SIGTERM, SIGHUP during start-up.

    \b
    Example, in two terminals:
      agent-runtime up local
      agent-runtime run weather-haiku "What's the weather in Tokyo?"
    """
    from rich.console import Console

    from agent_runtime.launch import plan_launch

    secrets = Secrets()
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets), StopSignals() as stop:
        config = load(config_path, import_tools=False, secrets=secrets)
        name = _choose(config, backend)
        spec = config.spec.backends[name]
        if spec.kind == "vllm-embedded":
            exit_with(
                EXIT_USAGE,
                f"backend `{name}` runs vLLM in the agent's own process (kind vllm-embedded): "
                "there is no server to start",
            )
        if spec.base_urls is not None:
            exit_with(
                EXIT_USAGE,
                f"backend `{name}` has several replicas (base_urls), and `up` starts one "
                "server: start each replica yourself (`vllm serve`), and check them with "
                f"`agent-runtime doctor --backend {name}`",
            )
        if spec.launch == "never":
            _look(config, name, stop)
            code = 0
        else:
            code = stop.run(_up(plan_launch(config, name), Console(stderr=True)))
    sys.exit(code)


def _choose(config: Config, backend: str | None) -> str:
    backends = config.spec.backends
    if backend is not None:
        if backend not in backends:
            exit_with(EXIT_USAGE, unknown("backend", backend, backends))
        return backend
    auto = [name for name, spec in backends.items() if spec.launch == "auto"]
    candidates = auto or list(backends)
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(f"'{name}'" for name in candidates)
    which = "have `launch: auto`" if auto else "are declared"
    exit_with(
        EXIT_USAGE,
        f"several backends {which} ({names}); name the one to start: agent-runtime up BACKEND",
    )


def _look(config: Config, backend: str, stop: StopSignals) -> None:
    """`up` of a backend with `launch: never`: show the server running at its URL, or say what
    to do; nothing is started."""
    from agent_runtime.config import launch_problem
    from agent_runtime.launch import not_started, plan_launch, probe_server

    plan = plan_launch(config, backend, to_start=False)
    answer = stop.run(probe_server(plan))
    if answer.kind != "ready":
        startable = launch_problem(plan.base_url) is None
        exit_with(EXIT_USAGE, not_started(plan, answer, source=config.source, startable=startable))
    _announce_running(plan)


def _announce_running(plan: LaunchPlan) -> None:
    click.echo(plan.base_url)
    sys.stdout.flush()
    click.echo(
        f"A server is already running at {plan.base_url} for backend `{plan.backend}` "
        "(not started here); leaving it as it is.",
        err=True,
    )


async def _up(plan: LaunchPlan, console: Console) -> int:
    from agent_runtime.launch import ensure_server

    task = asyncio.current_task()
    assert task is not None
    status = LaunchStatus(console, announce_ready=False)
    follower = _LogFollower(plan.log_path)

    def progress(event: LaunchProgress) -> None:
        status(event)
        if not console.is_terminal and event.state in ("waiting", "ready"):
            follower.echo()  # in a pipe the whole log is shown, as it comes

    server = await ensure_server(plan, progress=progress)
    try:
        return await _serve(server, console, follower, task)
    finally:
        await server.stop()  # on any error too (stdout closed: `up | head -1`)


async def _serve(
    server: ManagedServer, console: Console, follower: _LogFollower, task: asyncio.Task[int]
) -> int:
    """Announce the ready server and follow its log until Ctrl-C, SIGTERM, SIGHUP or its end."""
    from agent_runtime.errors import BackendError
    from agent_runtime.launch import log_tail

    plan = server.plan
    if not server.launched:
        _announce_running(plan)
        return 0
    click.echo(plan.base_url)
    sys.stdout.flush()
    click.echo(
        f"The model server of backend `{plan.backend}` is ready at {plan.base_url} "
        f"(pid {server.pid}, log: {plan.log_path}). Ctrl-C stops it.",
        err=True,
    )
    if console.is_terminal:
        follower.offset = plan.log_path.stat().st_size  # start-up was shown by the spinner
    try:
        code = await _follow(server, follower)
    except asyncio.CancelledError:
        task.uncancel()
        await server.stop()
        click.echo(f"Stopped the model server of backend `{plan.backend}`.", err=True)
        return 0
    await server.stop()  # what is left of its process group
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    lines = "\n".join(f"  {line}" for line in log_tail(plan.log_path))
    raise BackendError(
        f"the model server of backend `{plan.backend}` {how} while serving. The last "
        f"lines of its log ({plan.log_path}):\n{lines}",
        url=plan.base_url,
    )


async def _follow(server: ManagedServer, follower: _LogFollower) -> int:
    """Show the server's log until it exits; its exit code."""
    while True:
        code = server.returncode
        follower.echo()
        if code is not None:
            return code
        await asyncio.sleep(0.2)
