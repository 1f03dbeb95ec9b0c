"""Words for messages, shared by every layer: "Did you mean …?", how YAML calls a value's type,
a value quoted for a message (never a secret), where JSON text is broken, the full stop at the
end, and text from outside (a model, a tool, a server) made safe to show on a terminal and cut
to a length with a note of what was left out.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "clip",
    "did_you_mean",
    "json_problem",
    "kind_of",
    "like_escaped",
    "one_line",
    "sentence",
    "show",
    "unknown",
    "valid_unicode",
    "valid_unicode_json",
    "visible",
]


def _visible_table(*, lines: bool) -> dict[int, str]:
    """What `visible` puts in place of each character a terminal would obey."""
    # C0 controls and DEL as their Unicode control pictures (ESC -> ␛, BEL -> ␇, CR -> ␍).
    table = {code: chr(0x2400 + code) for code in range(0x20)}
    table[0x7F] = "\u2421"
    # C1 controls (0x9b is a one-character CSI), the bidirectional overrides and isolates
    # (they reorder what is shown), and lone surrogates (no terminal encoding has them).
    table |= {code: f"\\x{code:02x}" for code in range(0x80, 0xA0)}
    for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), *range(0xD800, 0xE000)):
        table[code] = f"\\u{code:04x}"
    if lines:
        del table[ord("\n")], table[ord("\t")]
    return table


_VISIBLE_LINES = _visible_table(lines=True)
_VISIBLE_ONE_LINE = _visible_table(lines=False)
_WORD = re.compile(r"\S+")


def visible(text: str, *, lines: bool = True) -> str:
    """`text` from outside (a model, a tool, a server) as a terminal should show it: every
    character a terminal would obey is shown instead, so escape sequences (a title change
    `ESC ] 0 ;`, clearing the screen `ESC [ 2 J`, a clipboard write `ESC ] 52 ;`), a carriage
    return that overwrites the line, BEL and backspace are printed, not acted on.

    C0 controls become their control pictures (`␛` for ESC, `␍`, `␇`, `␈`), DEL `␡`; C1 controls,
    bidirectional overrides and lone surrogates become `\\x9b`, `\\u202e`, `\\ud800`.
    With `lines` (an answer) newlines and tabs stay and CRLF line ends read as newlines;
    without (one line of a listing) they are shown too.
    """
    if lines:
        return text.replace("\r\n", "\n").translate(_VISIBLE_LINES)
    return text.translate(_VISIBLE_ONE_LINE)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with a note of how many were left out:
    `abc… [9,999,000 more characters]`; whole when it fits."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def one_line(text: str, limit: int, *, note: bool = True) -> str:
    """`text` on one line (each run of whitespace as one space), made `visible`, cut to `limit`
    characters: with `note`, followed by `clip`'s note (the count is of `text` past `limit`),
    else by `…`.

    Only the words shown are looked at, so a 10 MB value costs no more than a short one.
    """
    words: list[str] = []
    size = -1
    for match in _WORD.finditer(text):
        words.append(match.group())
        size += 1 + len(words[-1])
        if size > limit:
            break
    line = visible(" ".join(words), lines=False)
    if len(line) <= limit:
        return line
    if not note:
        return line[: limit - 1] + "…"
    return f"{line[:limit]}… [{max(len(text) - limit, 1):,} more characters]"


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


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """`text` as valid Unicode, which UTF-8 can encode: a surrogate pair written as two code
    points (`"\\ud83d\\ude00"` in JSON) joined, each lone surrogate (a file name that was not
    UTF-8, as `os.listdir` returns it; `"\\ud800"` written by the model) replaced by U+FFFD."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def valid_unicode_json(value: Any) -> Any:
    """JSON values with every string (keys too) made `valid_unicode`. Containers are copied (a
    list subclass stays one, a tuple becomes a list); other values are returned as they are."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {
            valid_unicode(key) if isinstance(key, str) else key: valid_unicode_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return type(value)(valid_unicode_json(item) for item in value)
    if isinstance(value, tuple):
        return [valid_unicode_json(item) for item in value]
    return value


def like_escaped(text: str) -> str:
    """`text` for a SQL `LIKE` pattern with `ESCAPE '\\'`: its `%`, `_` and backslashes match
    themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
