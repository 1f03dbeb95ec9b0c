"""Strings that match a regular expression: the `pattern` of a JSON Schema string, made up.

Only the structure of the expression is parsed here (groups, alternatives, quantifiers); each
single-character piece (a literal, `.`, `\\d`, a class such as `[^a-z_]`) is compiled with `re`
and given the first character of a fixed pool it matches, so classes and escapes behave exactly
as Python reads them. Lookarounds and backreferences are not supported.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

__all__ = ["PatternError", "pattern_example"]

# Characters tried, in order, for each single-character piece: plain ones first.
_POOL = (
    string.ascii_lowercase
    + string.digits
    + string.ascii_uppercase
    + "_-. @:/+"
    + "".join(c for c in string.printable if c not in string.ascii_letters + string.digits)
    + "éß€"
)
_ZERO_WIDTH = frozenset("^$")
_ZERO_WIDTH_ESCAPES = frozenset("bBAZz")
_UNBOUNDED = -1


class PatternError(ValueError):
    """A pattern this module cannot make a string for (lookarounds, backreferences...)."""


@dataclass(frozen=True, slots=True)
class _Char:
    text: str  # one character of output


@dataclass(frozen=True, slots=True)
class _Repeat:
    node: _Node
    low: int
    high: int  # _UNBOUNDED for no upper bound


@dataclass(frozen=True, slots=True)
class _Sequence:
    nodes: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Alternatives:
    options: tuple[_Node, ...]


_Node = _Char | _Repeat | _Sequence | _Alternatives


def pattern_example(pattern: str, *, extra: int = 0) -> str:
    """A string in which `pattern` matches (it matches the whole string when the pattern is
    anchored or has no other way to match).

    Each repetition runs its minimum number of times plus `extra` (within its maximum), so a
    caller can ask for longer strings; alternatives take their first option.

    >>> pattern_example(r"^[A-Z]{2}-\\d{3}$")
    'AA-000'

    Raises:
        PatternError: the pattern uses what is not supported, or is not a valid expression.
    """
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PatternError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    parser = _Parser(pattern)
    node = parser.alternatives()
    if parser.position != len(pattern):
        raise PatternError(f"unbalanced `)` at {parser.position} in {pattern!r}")
    return _render(node, extra)


def _render(node: _Node, extra: int) -> str:
    if isinstance(node, _Char):
        return node.text
    if isinstance(node, _Sequence):
        return "".join(_render(part, extra) for part in node.nodes)
    if isinstance(node, _Alternatives):
        return _render(node.options[0], extra)
    count = node.low + extra
    if node.high != _UNBOUNDED:
        count = min(count, node.high)
    return _render(node.node, extra) * count


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0

    def _peek(self, size: int = 1) -> str:
        return self.pattern[self.position : self.position + size]

    def alternatives(self) -> _Node:
        options = [self._sequence()]
        while self._peek() == "|":
            self.position += 1
            options.append(self._sequence())
        return options[0] if len(options) == 1 else _Alternatives(tuple(options))

    def _sequence(self) -> _Node:
        nodes: list[_Node] = []
        while self.position < len(self.pattern) and self._peek() not in "|)":
            atom = self._atom()
            if atom is not None:
                nodes.append(self._quantified(atom))
        return _Sequence(tuple(nodes))

    def _atom(self) -> _Node | None:
        char = self._peek()
        if char in _ZERO_WIDTH:
            self.position += 1
            return None
        if char == "(":
            return self._group()
        if char == "[":
            return self._class()
        if char == "\\":
            return self._escape()
        self.position += 1
        return _single(".", self.pattern) if char == "." else _Char(char)

    def _group(self) -> _Node:
        self.position += 1
        if self._peek() == "?":
            head = self._peek(3)
            if head.startswith("?:"):
                self.position += 2
            elif head == "?P<" or (head.startswith("?<") and head[2:3] not in ("=", "!")):
                self.position = self.pattern.index(">", self.position) + 1
            else:
                raise PatternError(
                    f"the group `({head[:2]}...` in {self.pattern!r} is not supported "
                    "(lookarounds, flags and conditionals are not)"
                )
        inner = self.alternatives()
        if self._peek() != ")":
            raise PatternError(f"missing `)` in {self.pattern!r}")
        self.position += 1
        return inner

    def _class(self) -> _Node:
        start = self.position
        self.position += 1
        if self._peek() == "^":
            self.position += 1
        if self._peek() == "]":
            self.position += 1
        while self._peek() != "]":
            if self._peek() == "\\":
                self.position += 1
            self.position += 1
        self.position += 1
        return _single(self.pattern[start : self.position], self.pattern)

    def _escape(self) -> _Node | None:
        code = self._peek(2)
        letter = code[1:]
        if letter in _ZERO_WIDTH_ESCAPES:
            self.position += 2
            return None
        if letter.isdigit() and letter != "0":
            raise PatternError(f"backreferences (`{code}`) in {self.pattern!r} are not supported")
        match = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|0[0-7]{0,2}|.)")
        found = match.match(self.pattern, self.position)
        assert found is not None  # the pattern compiled, so the escape is complete
        self.position = found.end()
        return _single(found.group(), self.pattern)

    def _quantified(self, atom: _Node) -> _Node:
        char = self._peek()
        bounds: tuple[int, int] | None = None
        if char == "*":
            bounds, self.position = (0, _UNBOUNDED), self.position + 1
        elif char == "+":
            bounds, self.position = (1, _UNBOUNDED), self.position + 1
        elif char == "?":
            bounds, self.position = (0, 1), self.position + 1
        elif char == "{":
            counted = re.compile(r"\{(\d*)(,?)(\d*)\}").match(self.pattern, self.position)
            if counted is not None and (counted.group(1) or counted.group(3)):
                low = int(counted.group(1) or 0)
                high = int(counted.group(3)) if counted.group(3) else None
                if high is None:
                    high = _UNBOUNDED if counted.group(2) else low
                bounds, self.position = (low, high), counted.end()
        if bounds is None:
            return atom
        if self._peek() in ("?", "+"):  # lazy or possessive: the same strings match
            self.position += 1
        return _Repeat(atom, *bounds)


def _single(piece: str, pattern: str) -> _Char:
    """The first pool character that the one-character expression `piece` matches."""
    compiled = re.compile(piece)
    for char in _POOL:
        if compiled.fullmatch(char):
            return _Char(char)
    raise PatternError(f"no character found that `{piece}` in {pattern!r} matches")
