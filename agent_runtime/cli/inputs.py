"""Text that commands take from argv and stdin: made valid UTF-8 before anything uses it.

Python hands on argv bytes that are not UTF-8 as lone surrogates (`surrogateescape`), which
nothing downstream can encode (the request to the model, the trace, SQLite); stdin can hold
any bytes. Both are decoded with every invalid byte replaced by U+FFFD (`�`), so a prompt
is sent, stored and traced the same way whatever it holds. A session ID is a name, not
text to pass on: an empty one or one that is not UTF-8 is a usage error.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["read_stdin", "session_option", "valid_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")

F = TypeVar("F", bound=Callable[..., Any])


def valid_text(text: str) -> str:
    """`text` with each byte that was not UTF-8 (a lone surrogate) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # bytes that Python decoded with surrogateescape: one U+FFFD per broken sequence
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # other lone surrogates
            return _SURROGATE.sub("\ufffd", text)
    return text


def read_stdin() -> str:
    """All of stdin, as UTF-8 with invalid bytes replaced by U+FFFD."""
    return sys.stdin.buffer.read().decode("utf-8", "replace")


def _check_session(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter(
            "the session ID is empty. Give one (e.g. --session work), or leave out --session."
        )
    if valid_text(value) != value:
        raise click.BadParameter("the session ID is not valid UTF-8 text. Use another one.")
    return value


def session_option(help: str) -> Callable[[F], F]:
    """`--session ID`: a non-empty, UTF-8 session ID."""
    return click.option("--session", metavar="ID", callback=_check_session, help=help)
