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
    """Await `work`; when the client disconnects first, cancel it and give None."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(disconnected(receive))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in (task, gone):
            waiting.cancel()
        await asyncio.wait({task, gone})
    if task.cancelled():
        return None
    return task.result()
