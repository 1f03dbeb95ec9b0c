"""`LaunchStatus`: managed servers starting and stopping, as `run`, `chat` and `up` show them.

In a terminal, a spinner with the latest line of the server's log while a backend with
`launch: auto` starts; otherwise one line when it starts and one when it is ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from agent_runtime.cli.render import shorten

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from agent_runtime.launch import LaunchProgress

__all__ = ["LaunchStatus", "launch_status"]


class LaunchStatus:
    """Shows managed servers starting and stopping, on stderr.

    In a terminal: a spinner with the elapsed time and the latest line of the server's log
    while it starts, a line when it is ready, a spinner while it stops. Otherwise: a line when
    it starts and one when it is ready. `announce_ready=False` leaves the ready line out.
    """

    def __init__(self, console: Console, *, announce_ready: bool = True) -> None:
        self.console = console
        self.announce_ready = announce_ready
        self._status: Status | None = None

    def __call__(self, progress: LaunchProgress) -> None:
        """Show one progress event."""
        from rich.text import Text

        server = f"model server of backend `{progress.backend}`"
        if progress.state in ("ready", "failed", "stopped"):
            self._stop()
            if progress.state == "ready" and self.announce_ready:
                self._say(f"The {server} is ready at {progress.url} ({progress.elapsed_s:.1f} s).")
            return
        if not self.console.is_terminal:
            if progress.state == "starting":
                if progress.launched:
                    self._say(
                        f"Starting the {server}: {progress.command} (log: {progress.log_path})"
                    )
                else:
                    self._say(f"Waiting for the {server} at {progress.url} (started elsewhere)…")
            return
        if progress.state == "stopping":
            text = Text(f"Stopping the {server}…", style="dim")
        else:
            verb = "Starting" if progress.launched else "Waiting for"
            text = Text(f"{verb} the {server} ({progress.elapsed_s:.0f} s)", style="dim")
            if progress.line:
                width = max(20, self.console.width - len(text) - 8)
                text.append(f" · {shorten(progress.line, width)}", style="dim italic")
        if self._status is None:
            self._status = self.console.status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def _say(self, message: str) -> None:
        if self.console.is_terminal:
            self.console.print(message, style="dim", markup=False, highlight=False)
        else:
            click.echo(message, err=True)

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def launch_status() -> LaunchStatus:
    """The progress display for `Runtime(launch_progress=...)` in `run` and `chat`."""
    from rich.console import Console

    return LaunchStatus(Console(stderr=True))
