"""`agent-runtime mock --record CASSETTE --upstream URL`: the recording proxy in the foreground.

It checks that the upstream server answers at all before it listens, prints its own base URL on
stdout (as the mock does), saves the cassette after every model call and once more when it
stops (Ctrl-C or SIGTERM), so an interrupted session loses nothing.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import click

from agent_runtime.redact import redact_text

__all__ = ["UpstreamUnreachable", "record"]


class UpstreamUnreachable(click.ClickException):
    """The upstream server does not answer (exit status 3, as for any model server)."""

    exit_code = 3


def record(
    cassette: Path | None,
    upstream: str | None,
    *,
    host: str,
    port: int,
    conflicts: Mapping[str, bool],
) -> None:
    """Record calls to `upstream` into `cassette` until Ctrl-C or SIGTERM.

    `conflicts` names the mock's options that make no sense with a recording (True when given).
    """
    if cassette is None:
        raise click.UsageError(
            "--upstream needs --record CASSETTE: the file to record the answers into"
        )
    if upstream is None:
        raise click.UsageError(
            "--record needs --upstream URL: the vLLM server to record, e.g. "
            "--upstream http://gpu-box:8000/v1"
        )
    used = [name for name, given in conflicts.items() if given]
    if used:
        raise click.UsageError(
            f"--record answers every call from --upstream, so it does not take {', '.join(used)}"
        )
    if not cassette.parent.is_dir():
        raise click.UsageError(
            f"cannot record into {str(cassette)!r}: the folder {str(cassette.parent)!r} does not "
            "exist"
        )
    from agent_runtime.testing.proxy import Recorder, transport_problem

    try:
        recorder = Recorder(upstream, path=cassette, host=host, port=port)
    except ValueError as exc:
        raise click.UsageError(f"--upstream: {exc}") from None
    _check_upstream(recorder.upstream, transport_problem)
    try:
        recorder.start()
    except OSError as exc:
        raise click.UsageError(
            f"{exc.strerror}; choose another port with --port (0 picks a free one)"
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(recorder.url)
    sys.stdout.flush()
    click.echo(
        f"recording the model calls to {redact_text(recorder.upstream)} into {cassette} "
        f"(saved after each call) at {recorder.url}; Ctrl-C stops.",
        err=True,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        recorder.stop()
    count = len(recorder.entries)
    if count:
        recorder.save(cassette)
    calls = f"{count} model call{'s' if count != 1 else ''}"
    where = f"recorded in {cassette}" if count else f"recorded; {cassette} was not written"
    click.echo(f"{calls} {where}.", err=True)


def _check_upstream(upstream: str, problem: Callable[[BaseException], str]) -> None:
    """Fail with exit status 3 unless something answers HTTP at `upstream`."""
    import httpx2

    try:
        httpx2.get(f"{upstream}/models", timeout=10.0, trust_env=False)
    except httpx2.TransportError as exc:
        raise UpstreamUnreachable(
            f"cannot reach the upstream server {redact_text(upstream)}: {problem(exc)}. "
            "Start vLLM there, or give its OpenAI base URL (ending in /v1) with --upstream."
        ) from None
