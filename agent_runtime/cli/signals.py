"""SIGTERM and SIGHUP end a command as Ctrl-C does.

`kill`, `timeout`, `docker stop` and systemd send SIGTERM; a closed terminal or SSH session
sends SIGHUP. Without a handler either one would end the process on the spot: a run's input
lost, no `run_end` in the trace, and a model server started for a `launch: auto` backend left
running (it runs in its own process group, so the signal does not reach it).

```python
with StopSignals() as stop:      # outside the event loop: the signal raises `Terminated`
    text = sys.stdin.read()
    stop.run(main(text))         # inside it: the main task is cancelled, as Ctrl-C does;
                                 # once it has unwound, `Terminated` is raised
```

`Terminated` (a `KeyboardInterrupt`) becomes `Stopped by SIGTERM.` and exit code 143 (SIGHUP:
129) in `handle_errors`. A second signal while the command is stopping cancels again, which
cuts short what is left (a server still given its grace period is killed).

A signal that is ignored when the command starts stays ignored: `nohup agent-runtime run …`
goes on when its terminal closes.

Tasks left when the command's main task ends (an async tool that ignored its cancellation and
was abandoned at `run_timeout_s`) are cancelled once more and waited for `LEFTOVER_S`; those
still running then are left behind with their event loop, so the command ends on time.

When the terminal itself has gone (SIGHUP from a closed window or SSH session), writing to it
fails; stdout and stderr are then pointed at /dev/null before `Terminated` is raised, so the
last message and the flush at exit do not turn the exit code into another error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, TypeVar

from agent_runtime.cli.common import Terminated

__all__ = ["LEFTOVER_S", "STOP_SIGNALS", "StopSignals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""The signals that end a command as Ctrl-C does."""

LEFTOVER_S = 2.0
"""How long the tasks left when a command ends get to finish once cancelled."""

T = TypeVar("T")

_Handler = Callable[[int, FrameType | None], Any] | int | None


class StopSignals:
    """SIGTERM and SIGHUP for one command (in the main thread); `signum` is the one received.

    Within `with`, a signal raises `Terminated` where the main thread is; `run` runs the
    command's event loop, during which a signal cancels the main task instead. The previous
    handlers are back after each.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[signal.Signals, _Handler] = {}
        self._terminals: list[int] = []

    def __enter__(self) -> StopSignals:
        self._terminals = [fd for fd in _OUTPUTS if _is_terminal(fd)]
        self._previous = _install(self._raise)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _restore(self._previous)

    def _raise(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum
        raise self._terminated()

    def _terminated(self) -> Terminated:
        assert self.signum is not None
        for fd in self._terminals:
            if not _is_terminal(fd):  # hung up: writes fail with EIO from now on
                _to_devnull(fd)
        return Terminated(self.signum)

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """`asyncio.run(main)`; a signal cancels the main task, and `Terminated` is raised
        once it has ended, whatever it ended with (unless it returned: `main` decided the
        signal was a normal end)."""
        runner = asyncio.Runner()
        try:
            return runner.run(self._guarded(main))
        except BaseException as error:
            if self.signum is None or isinstance(error, Terminated):
                raise
            raise self._terminated() from error
        finally:
            _close(runner)

    async def _guarded(self, main: Coroutine[Any, Any, T]) -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def cancel(signum: int) -> None:
            if self.signum is None:
                self.signum = signum
            task.cancel()

        previous = {signum: signal.getsignal(signum) for signum in _heeded()}
        for signum in previous:
            loop.add_signal_handler(signum, cancel, signum)
        try:
            return await main
        finally:
            for signum in previous:
                loop.remove_signal_handler(signum)
            _restore(previous)


def _close(runner: asyncio.Runner) -> None:
    """`runner.close()`, unless a task left over will not end: `asyncio.run` would wait for it
    for ever."""
    loop = runner.get_loop()
    leftover = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftover:
        task.cancel()
    if leftover:
        loop.run_until_complete(asyncio.wait(leftover, timeout=LEFTOVER_S))
    if all(task.done() for task in leftover):
        runner.close()


_OUTPUTS = (1, 2)
"""stdout and stderr."""


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _to_devnull(fd: int) -> None:
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def _heeded() -> list[signal.Signals]:
    """The stop signals not ignored (`nohup` ignores SIGHUP)."""
    return [signum for signum in STOP_SIGNALS if signal.getsignal(signum) != signal.SIG_IGN]


def _install(handler: Callable[[int, FrameType | None], None]) -> dict[signal.Signals, _Handler]:
    previous = {}
    for signum in _heeded():
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handler)
    return previous


def _restore(previous: dict[signal.Signals, _Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
