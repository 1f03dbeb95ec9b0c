"""A client that leaves: what the routes watch for while a run goes on, so that a run nobody
will read is cancelled at once (streamed or not)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

__all__ = ["disconnected", "unless_gone"]

T = TypeVar("T")


async def disconnected(receive: Receive) -> None:
    """Return when the client has disconnected (`http.disconnect`)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_gone(work: Awaitable[T], receive: Receive) -> T | None:
    """Await `work` in this task; when the client disconnects first, cancel it and give None.

    The work runs in the calling task (no task of its own: one hop of the event loop less per
    request); a task of its own watches for the disconnect and cancels the caller's. A
    cancellation from elsewhere (the server stopping) is not taken for a disconnect."""
    current = asyncio.current_task()
    assert current is not None
    left = False

    def on_gone(watch: asyncio.Future[None]) -> None:
        nonlocal left
        if not watch.cancelled() and watch.exception() is None:
            left = True
            current.cancel()

    watch = asyncio.ensure_future(disconnected(receive))
    watch.add_done_callback(on_gone)
    try:
        return await work
    except asyncio.CancelledError:
        if left and current.uncancel() == 0:
            return None
        raise
    finally:
        watch.remove_done_callback(on_gone)
        watch.cancel()
