"""Tools whose results try to drive the terminal they are shown on: rich markup, escape
sequences, control characters (tests/project/hostile.yaml, tests/cli/test_terminal_safety.py)."""

from __future__ import annotations

HOSTILE = (
    "x [/y] z [link=https://evil.example]click[/link] [bold red]loud "
    "\x1b]0;pwned\x07 \x1b[2J \x1b]52;c;cm0gLXJmIH4=\x07 \x1b[31mred\x9b1m \rover\x08\x07 :smile:"
)
"""Markup that breaks rich (`[/y]`) or spoofs a link, a title change, a screen clear, a
clipboard write (OSC 52), a colour, a C1 CSI, a carriage return, a backspace, BEL, an emoji code."""


def page() -> str:
    """Fetch the page (a scraped page full of markup and escape sequences)."""
    return HOSTILE


def echo(text: str) -> str:
    """Say the text back.

    Args:
        text: What to say back.
    """
    return text
