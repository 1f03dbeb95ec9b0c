"""Tools that misbehave: they try to end the program, return what cannot be sent, or do not
stop when told to (see tests/project/hostile_tools.yaml and tests/test_hostile_tools.py)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

released = threading.Event()
"""Set by a test to let `stuck_sync` and `ignores_cancel` calls end (abandoned by then)."""


def exits(code: int) -> str:
    """Ends the program with `sys.exit(code)`, as a command-line parser inside a tool does.

    Args:
        code: The exit status.
    """
    sys.exit(code)


async def exits_async(code: int) -> str:
    """Raises `SystemExit(code)` in the event loop.

    Args:
        code: The exit status.
    """
    raise SystemExit(code)


def interrupts() -> str:
    """Raises `KeyboardInterrupt` in its thread."""
    raise KeyboardInterrupt


async def interrupts_async() -> str:
    """Raises `KeyboardInterrupt` in the event loop."""
    raise KeyboardInterrupt


class Unprintable:
    """An object that cannot be turned into text."""

    def __str__(self) -> str:
        raise RuntimeError("no text for this object")

    def __repr__(self) -> str:
        raise RuntimeError("no text for this object")


@dataclass
class Node:
    """A node of a graph that links back to itself."""

    name: str
    next: Any = None


def unsendable(kind: str) -> Any:
    """Returns a value that cannot be formatted as text or JSON.

    Args:
        kind: "huge" (an integer of 6,001 digits), "unprintable" (an object whose `__str__`
            and `__repr__` raise) or "cycle" (a dataclass that contains itself).
    """
    if kind == "huge":
        return 10**6000
    if kind == "unprintable":
        return Unprintable()
    node = Node(name="loop")
    node.next = node
    return node


def odd_name() -> str:
    """Returns a file name that is not valid UTF-8, as `os.listdir` gives it
    (surrogate-escaped)."""
    return b"report-\xff.txt".decode("utf-8", errors="surrogateescape")


async def blocks_loop(seconds: float) -> str:
    """Blocks the event loop (a blocking call in an async tool).

    Args:
        seconds: How long to block.
    """
    time.sleep(seconds)  # noqa: ASYNC251
    return "unblocked"


async def ignores_cancel(seconds: float) -> str:
    """Sleeps and keeps sleeping when cancelled, until `seconds` pass or a test releases it.

    Args:
        seconds: How long to sleep, cancelled or not.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not released.is_set():
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            continue
    return "slept"


def stuck_sync(seconds: float) -> str:
    """Blocks its thread until a test releases it (at most `seconds`).

    Args:
        seconds: The longest it waits.
    """
    released.wait(seconds)
    return "unstuck"
