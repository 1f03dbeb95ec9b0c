"""Managed model servers: start `vllm serve` for a backend with `launch: auto`, and stop it.

```python
plan = plan_launch(config, "local")   # agent_runtime.launch.plan
server = await ensure_server(plan)    # use the server that answers, else start one and wait
...
await server.stop()                   # stops it only if it was started here
answer = await probe_server(plan)     # what answers there now, starting nothing
```

A server is *ready* when `GET /health` answers 200 and `GET /v1/models` lists the backend's
model. Before anything is started the backend's URL is probed: a ready server is used as it is
(and left running); a server that answers otherwise is an error that names the port and what
answered; one that holds the port without answering yet (a vLLM still loading, started by
someone else) is waited for. Otherwise the launch command runs in its own process group, in
the agents.yaml's folder, with its output in `.agent-runtime/vllm-<backend>.log` there, and the
URL is polled until the server is ready, the process exits (an error showing the last lines of
its log) or `startup_timeout_s` passes (an error; the process is stopped). Stopping sends
SIGTERM to the process group and SIGKILL after a grace period; a start-up that is cancelled
(Ctrl-C) stops the process as well. A server started here that is still running when the
interpreter exits (its runtime never closed) is stopped then, the same way, as it is when
its `ManagedServer` is garbage-collected: a server is never left behind by a clean exit.

httpx2 is imported when a server is probed, so importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from agent_runtime.errors import BackendError
from agent_runtime.launch.plan import LaunchPlan
from agent_runtime.launch.probe import (
    PROBE_TIMEOUT_S,
    Answer,
    exited,
    latest_line,
    probe,
    taken,
    timed_out,
)
from agent_runtime.redact import own_logger

if TYPE_CHECKING:
    import httpx2

__all__ = ["LaunchProgress", "ManagedServer", "ensure_server", "probe_server"]

logger = own_logger(__name__)

_POLL_S = 0.5

State = Literal["starting", "waiting", "ready", "failed", "stopping", "stopped"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchProgress:
    """What a managed server is doing, for progress displays.

    Attributes:
        backend: the backend's name.
        state: starting (the process was started), waiting (not ready yet; sent about twice a
            second), ready, failed (an error follows), stopping, stopped.
        url: the backend's base URL.
        launched: whether the server is (being) started here, rather than found running.
        elapsed_s: seconds since the start-up (or the stop) began.
        line: the latest line of the server's log ("" when there is none yet).
        log_path: the server's log (None for a server started elsewhere).
        command: the command that was started, as a shell line ("" for a server started
            elsewhere).
    """

    backend: str
    state: State
    url: str
    launched: bool
    elapsed_s: float = 0.0
    line: str = ""
    log_path: Path | None = None
    command: str = ""


Progress = Callable[[LaunchProgress], object]


class ManagedServer:
    """The server of a backend: started here (`launched`), or found running.

    Only a server started here is stopped by `stop()`; one that was not stopped is stopped
    when the interpreter exits (or this object is garbage-collected), synchronously.
    """

    def __init__(
        self,
        plan: LaunchPlan,
        process: subprocess.Popen[bytes] | None = None,
        *,
        lock: _PortLock | None = None,
        progress: Progress | None = None,
        stop_timeout_s: float = 20.0,
    ) -> None:
        self.plan = plan
        self.process = process
        self._lock = lock
        self._progress = progress
        self._stop_timeout_s = stop_timeout_s
        self._stopped = process is None
        self._at_exit = (
            None
            if process is None
            else weakref.finalize(self, _stop_now, process, lock, stop_timeout_s, os.getpid())
        )

    @property
    def launched(self) -> bool:
        """Whether this server was started here (and so is stopped by `stop()`)."""
        return self.process is not None

    @property
    def pid(self) -> int | None:
        """The process id of a server started here."""
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code of a server started here once it has ended (None while it runs)."""
        return self.process.poll() if self.process is not None else None

    def __repr__(self) -> str:
        how = f"pid {self.pid}" if self.launched else "found running"
        return f"<ManagedServer {self.plan.backend!r} at {self.plan.base_url} ({how})>"

    def _report(self, state: State, started: float) -> None:
        if self._progress is not None:
            self._progress(
                LaunchProgress(
                    backend=self.plan.backend,
                    state=state,
                    url=self.plan.base_url,
                    launched=True,
                    elapsed_s=time.monotonic() - started,
                    log_path=self.plan.log_path,
                    command=self.plan.shown_command,
                )
            )

    async def stop(self) -> None:
        """Stop the server if it was started here; a server found running is left alone.

        SIGTERM goes to the server's process group; whatever is left of the group after the
        grace period (or when this is cancelled) is killed. Calling it again does nothing.
        """
        process = self.process
        if process is None or self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        running = process.poll() is None
        try:
            if running:
                self._report("stopping", started)
                _signal_group(process, signal.SIGTERM)
                deadline = started + self._stop_timeout_s
                # Polled: a Popen (unlike an asyncio subprocess) is not tied to one event loop.
                while process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            _kill(process)
            if self._lock is not None:
                self._lock.release()  # other processes may start a server on the port again
            if self._at_exit is not None:
                self._at_exit.detach()
        logger.info(
            "backend `%s`: stopped its server (pid %d, exit code %s)",
            self.plan.backend,
            process.pid,
            process.returncode,
        )
        if running:
            self._report("stopped", started)


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The server runs in its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill what is left of the process group (vLLM's engine processes too) and reap it."""
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _stop_now(
    process: subprocess.Popen[bytes], lock: _PortLock | None, grace_s: float, owner: int
) -> None:
    """`ManagedServer.stop` without an event loop, for a server still running at exit."""
    if os.getpid() != owner:  # a forked child exiting: the server is its parent's
        return
    if process.poll() is None:
        logger.info("stopping the model server (pid %d) left running at exit", process.pid)
        _signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    _kill(process)
    if lock is not None:
        lock.release()


# -- start-up ---------------------------------------------------------------------------------


async def ensure_server(
    plan: LaunchPlan,
    *,
    progress: Progress | None = None,
    stop_timeout_s: float = 20.0,
) -> ManagedServer:
    """Make sure the backend's server is ready: use the one running at its URL, else start it.

    Args:
        plan: what to start and where (`plan_launch`).
        progress: called with each `LaunchProgress` (start, about twice a second while
            waiting, ready or failed).
        stop_timeout_s: grace period between SIGTERM and SIGKILL when stopping.

    Raises:
        BackendError: the command is not installed; the port is taken by something that is
            not a server of this model; the server exited during start-up or was not ready
            within `startup_timeout_s` (both with the last lines of its log).
    """
    async with _probe_client(plan) as http:
        while True:
            answer = await probe(http, plan)
            if answer.kind == "ready":
                logger.info(
                    "backend `%s`: a server is already running at %s; using it",
                    plan.backend,
                    plan.base_url,
                )
                return ManagedServer(plan)
            if answer.kind in ("foreign", "other_model", "unauthorized", "starting"):
                raise BackendError(taken(plan, answer), url=plan.base_url)
            if answer.kind == "absent":
                lock = _PortLock.take(plan.port)
                if lock is not None:
                    return await _launch(http, plan, lock, progress, stop_timeout_s)
            # Another agent-runtime process is starting a server on this port (it holds the
            # port's lock), or something accepts connections without answering yet (a vLLM
            # still loading): wait for it, as for our own.
            if await _wait_ready(http, plan, None, progress):
                return ManagedServer(plan)
            # That process stopped before its server was ready: start one here.


async def probe_server(plan: LaunchPlan) -> Answer:
    """What the backend's URL answers now (`ready`: its model is served); nothing is started."""
    async with _probe_client(plan) as http:
        return await probe(http, plan)


def _probe_client(plan: LaunchPlan) -> httpx2.AsyncClient:
    import httpx2

    headers = {"Authorization": f"Bearer {plan.api_key or 'EMPTY'}", **plan.headers}
    return httpx2.AsyncClient(timeout=PROBE_TIMEOUT_S, headers=headers, trust_env=False)


async def _launch(
    http: httpx2.AsyncClient,
    plan: LaunchPlan,
    lock: _PortLock,
    progress: Progress | None,
    stop_timeout_s: float,
) -> ManagedServer:
    try:
        process = _start(plan)
    except BaseException:
        lock.release()
        raise
    server = ManagedServer(
        plan, process, lock=lock, progress=progress, stop_timeout_s=stop_timeout_s
    )
    try:
        await _wait_ready(http, plan, server, progress)
    except BaseException:
        await server.stop()
        raise
    return server


def _start(plan: LaunchPlan) -> subprocess.Popen[bytes]:
    executable = _executable(plan)
    plan.log_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info(
        "backend `%s`: starting %s (log: %s)", plan.backend, plan.shown_command, plan.log_path
    )
    try:
        with plan.log_path.open("wb") as log:
            # Popen rather than an asyncio subprocess: the server may outlive this event loop
            # (a runtime started in one loop, closed in another); starting it does not block.
            process = subprocess.Popen(
                [executable, *plan.command[1:]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=plan.cwd,
                env=_environment(plan),
                start_new_session=True,  # its own process group: stopped with its children
            )
    except OSError as exc:
        raise BackendError(
            f"cannot start the model server of backend `{plan.backend}` "
            f"({plan.shown_command}): {exc.strerror or exc}",
            url=plan.base_url,
        ) from None
    return process


async def _wait_ready(
    http: httpx2.AsyncClient,
    plan: LaunchPlan,
    server: ManagedServer | None,
    progress: Progress | None,
) -> bool:
    """Poll until the server is ready (True); raise when it exits, answers wrongly or times
    out. For a server started elsewhere (`server` None): False when nothing answers and
    nobody holds the port's lock any more."""
    started = time.monotonic()
    deadline = started + plan.startup_timeout_s
    launched = server is not None

    def report(state: State) -> None:
        if progress is not None:
            progress(
                LaunchProgress(
                    backend=plan.backend,
                    state=state,
                    url=plan.base_url,
                    launched=launched,
                    elapsed_s=time.monotonic() - started,
                    line=latest_line(plan.log_path) if launched else "",
                    log_path=plan.log_path if launched else None,
                    command=plan.shown_command if launched else "",
                )
            )

    def fail(message: str) -> BackendError:
        return BackendError(message, url=plan.base_url)

    report("starting")
    answer = Answer("absent")
    try:
        while True:
            code = server.returncode if server is not None else None
            if code is not None:
                raise fail(exited(plan, code))
            answer = await probe(http, plan)
            if answer.kind == "ready":
                break
            if not launched and answer.kind == "absent" and not _port_locked(plan.port):
                return False
            if answer.kind in ("other_model", "unauthorized") or (
                not launched and answer.kind == "foreign"
            ):
                raise fail(taken(plan, answer, own=launched))
            now = time.monotonic()
            if now >= deadline:  # the caller stops a server started here
                raise fail(timed_out(plan, answer, own=launched))
            report("waiting")
            await asyncio.sleep(min(_POLL_S, deadline - now))
    except BaseException:
        report("failed")
        raise
    elapsed = time.monotonic() - started
    logger.info("backend `%s`: ready at %s after %.1f s", plan.backend, plan.base_url, elapsed)
    report("ready")
    return True


class _PortLock:
    """This machine's lock on starting a server on one port, held while that server runs.

    Other agent-runtime processes (and runtimes) that find it held wait for that server instead
    of starting a second one; the system drops it when its holder exits. The lock file is
    removed while the lock is still held, and a process that locked a file checks it is still
    the one at the path, so no two processes ever hold the lock of one port.
    """

    def __init__(self, path: Path, file: BinaryIO | None) -> None:
        self.path = path
        self._file = file

    @classmethod
    def take(cls, port: int) -> _PortLock | None:
        """The lock of `port`, or None when another process (or runtime) holds it."""
        import fcntl

        path = Path(tempfile.gettempdir()) / f"agent-runtime-{os.getuid()}-port-{port}.lock"
        while True:
            try:
                file = path.open("ab")
            except OSError:  # no lock file: no reason not to start
                return cls(path, None)
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = os.fstat(file.fileno()).st_ino == path.stat().st_ino
            except OSError:
                file.close()
                return None
            except BaseException:
                file.close()
                raise
            if locked:
                return cls(path, file)
            file.close()  # its holder removed it meanwhile: lock the one there now

    def release(self) -> None:
        """Release the lock (and remove its file). Calling it again does nothing."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._file.close()
            self._file = None


def _port_locked(port: int) -> bool:
    lock = _PortLock.take(port)
    if lock is None:
        return True
    lock.release()
    return False


def _executable(plan: LaunchPlan) -> str:
    """The command's program, found on PATH (or next to this Python, for a venv's vllm)."""
    name = plan.command[0]
    if os.sep in name and not os.path.isabs(name):
        name = str(plan.cwd / name)
    found = shutil.which(name)
    if found is None and os.sep not in name:
        found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is not None:
        return found
    where = f"cannot start the model server of backend `{plan.backend}`"
    if plan.default_command:
        message = (
            f"{where}: `vllm` is not installed (not found on PATH). Install it with "
            "`uv pip install vllm` (or `pip install 'agent-runtime[vllm]'`), or start the "
            "server yourself and set `launch: never`."
        )
    else:
        message = (
            f"{where}: `{plan.command[0]}` (the first element of `launch_command`) was not "
            "found. Install it, or fix `launch_command`."
        )
    raise BackendError(message, url=plan.base_url)


def _environment(plan: LaunchPlan) -> dict[str, str]:
    """The server's environment: ours, with `VLLM_API_KEY` matching the backend's api_key."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # log lines as they happen, for progress
    if plan.api_key is None:
        env.pop("VLLM_API_KEY", None)
    else:
        env["VLLM_API_KEY"] = plan.api_key
    return env
