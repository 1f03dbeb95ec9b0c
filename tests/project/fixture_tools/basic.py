"""Tools with known behaviour: results, failures, slowness, large outputs, concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import httpx2
from agents import RunContextWrapper

_meetings: dict[str, asyncio.Event] = {}
_lock = threading.Lock()


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name, e.g. "Tokyo".
    """
    return json.dumps({"city": city, "condition": "sunny", "temperature_c": 21})


async def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def fail(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why it fails.
    """
    raise LookupError(f"no such thing: {reason}")


def slow_sync(seconds: float) -> str:
    """Sleeps in a thread.

    Args:
        seconds: How long to sleep.
    """
    time.sleep(seconds)
    return "woke up"


async def slow_async(seconds: float) -> str:
    """Sleeps asynchronously.

    Args:
        seconds: How long to sleep.
    """
    await asyncio.sleep(seconds)
    return "woke up"


def big_output(size: int) -> str:
    """Returns a long text.

    Args:
        size: How many characters.
    """
    return "x" * size


async def meet(token: str, who: str, other: str) -> str:
    """Waits until `other` has arrived at the same meeting (proves concurrent calls).

    Args:
        token: The meeting's name.
        who: Who arrives.
        other: Who to wait for.
    """
    with _lock:
        mine = _meetings.setdefault(f"{token}:{who}", asyncio.Event())
        theirs = _meetings.setdefault(f"{token}:{other}", asyncio.Event())
    mine.set()
    await asyncio.wait_for(theirs.wait(), timeout=5)
    return f"{who} met {other}"


def whoami(context: RunContextWrapper[object]) -> str:
    """Says whether the run context reached the tool."""
    return f"context: {type(context).__name__}"


async def hang(marker: str) -> str:
    """Tells the mock server it started (GET /health), then waits until it is cancelled,
    and then tells the mock that too (GET /version).

    Args:
        marker: A file to write "cancelled" to when the call is cancelled.
    """
    root = os.environ["MOCK_URL"].removesuffix("/v1")
    try:
        async with httpx2.AsyncClient() as client:
            await client.get(f"{root}/health")
        await asyncio.sleep(600)
    except asyncio.CancelledError:
        # Blocking on purpose: this must be done before the cancellation goes on.
        Path(marker).write_text("cancelled")  # noqa: ASYNC240
        urllib.request.urlopen(f"{root}/version", timeout=5).close()  # noqa: ASYNC210
        raise
    return "done"


calls: dict[str, int] = {}


def count(key: str) -> int:
    """Counts its calls per key (tests read `calls`).

    Args:
        key: What to count.
    """
    with _lock:
        calls[key] = calls.get(key, 0) + 1
        return calls[key]
