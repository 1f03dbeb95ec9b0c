"""A sync tool that blocks until a test opens its gate (module state: tests reset it)."""

from __future__ import annotations

import threading

entered = threading.Event()
opened = threading.Event()


def wait_at_gate(label: str) -> str:
    """Waits until the gate is opened.

    Args:
        label: Who waits.
    """
    entered.set()
    opened.wait(timeout=30)
    return label


def reset() -> None:
    """Close the gate again, with nobody at it."""
    entered.clear()
    opened.clear()
