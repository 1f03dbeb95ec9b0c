"""Words for messages, shared by every layer: "Did you mean …?", how YAML calls a value's type,
a value quoted for a message (never a secret), where JSON text is broken, and the full stop at
the end.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["did_you_mean", "json_problem", "kind_of", "sentence", "show", "unknown"]


def sentence(message: str) -> str:
    """`message` ending with a full stop unless it already ends with one, `?` or `!`."""
    return message if message.endswith((".", "?", "!")) else message + "."


def did_you_mean(value: object, names: list[str], *, quote: str = "`") -> str:
    """'. Did you mean `name`?' for the closest of `names`, or ''."""
    if not isinstance(value, str):
        return ""
    match = difflib.get_close_matches(value, names, n=1)
    return f". Did you mean {quote}{match[0]}{quote}?" if match else ""


def json_problem(error: json.JSONDecodeError) -> str:
    """What is wrong with JSON text, and where: 'Expecting value at line 1 column 15'."""
    # Some of json's messages end in "at" already ("Unterminated string starting at").
    return f"{error.msg.removesuffix(' at')} at line {error.lineno} column {error.colno}"


def kind_of(value: object) -> str:
    """How YAML would call the type of `value`: 'a mapping', 'a string', 'null'..."""
    if value is None:
        return "null"
    kinds: list[tuple[type, str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (dict, "a mapping"),
        (list, "a list"),
    ]
    for type_, name in kinds:
        if isinstance(value, type_):
            return name
    return f"a value of type {type(value).__name__}"


def show(value: object, *, secret: bool) -> str:
    """`value` quoted for a message (short scalars only), else its kind; never a secret."""
    if secret or not isinstance(value, str | int | float):
        return kind_of(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    shown = repr(value)
    if len(shown) <= 60:
        return shown
    close = shown[0] if isinstance(value, str) else ""  # the quote repr() opened with
    return shown[: 57 - len(close)] + "..." + close


def unknown(kind: str, value: str, names: Mapping[str, Any]) -> str:
    """`unknown <kind> 'value'` with a "Did you mean" hint, else the names that are declared."""
    if not names:
        return f"unknown {kind} {value!r} (no {kind}s are declared)"
    hint = did_you_mean(value, list(names), quote="'")
    if hint:
        return f"unknown {kind} {value!r}{hint}"
    return f"unknown {kind} {value!r} (declared: {', '.join(repr(n) for n in names)})"
