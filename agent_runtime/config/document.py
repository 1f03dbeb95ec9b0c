"""YAML with positions, and `${VAR}` interpolation, for `agent_runtime.config`.

`compose` parses a document with PyYAML's safe composer and builds plain Python values itself, so
that it can remember where every key and value sits, catch duplicate keys (PyYAML silently keeps
the last one) and interpolate `${VAR}` / `${VAR:-default}` in string values. Problems are collected
on the returned `Document` rather than raised, so the caller can report all of them at once
(`problems` places pydantic's errors on the same positions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agent_runtime.errors import ConfigError, ConfigProblem
from agent_runtime.redact import redact_text
from agent_runtime.text import sentence

__all__ = ["Document", "Loc", "Position", "compose", "format_loc", "interpolate"]

Loc = tuple[str | int, ...]
"""A place in the document: mapping keys and list indices from the root."""

_YAML_TAG = "tag:yaml.org,2002:"
_STR_TAG = _YAML_TAG + "str"
_MERGE_TAG = _YAML_TAG + "merge"
_COLLECTION_TAGS = frozenset(_YAML_TAG + t for t in ("map", "set", "seq", "omap", "pairs"))
# Aliases can multiply a small text into a huge document ("billion laughs"); stop early.
_MAX_VALUES = 100_000
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INTERPOLATION = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_SYNTAX_HELP = "write ${NAME} or ${NAME:-default}, or $${ for a literal ${"


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in the document."""

    line: int
    column: int


def format_loc(loc: Loc) -> str:
    """The dotted path of `loc`: `agents.weather-haiku.tools[0]`; odd keys as `['a.b']`."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            parts.append(f".{part}" if parts else part)
        else:
            parts.append(f"[{part!r}]")
    return "".join(parts)


@dataclass(slots=True, kw_only=True)
class Document:
    """A composed document: plain values, where each one came from, and the problems so far."""

    source: str
    data: Any = None
    keys: dict[Loc, Position] = field(default_factory=dict)
    values: dict[Loc, Position] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    tainted: set[Loc] = field(default_factory=set)
    """Places already reported as broken; later checks skip them and everything below."""

    def is_tainted(self, loc: Loc) -> bool:
        """Whether `loc` or one of its parents was already reported as broken."""
        return any(loc[:end] in self.tainted for end in range(len(loc) + 1))

    def position(self, loc: Loc, *, at: Literal["key", "value"] = "value") -> Position | None:
        """Where `loc` is (its key or its value), else where its nearest known parent is."""
        while True:
            if at == "key" and loc in self.keys:
                return self.keys[loc]
            if loc in self.values:
                return self.values[loc]
            if not loc:
                return None
            loc = loc[:-1]

    def report(
        self,
        loc: Loc,
        message: str,
        *,
        at: Literal["key", "value"] = "value",
        position: Position | None = None,
    ) -> None:
        """Record a problem at `loc` (at its key or its value, or at an explicit `position`);
        URL user-info and secret-looking values in the message are masked (`redact_text`)."""
        where = position or self.position(loc, at=at)
        self.problems.append(
            ConfigProblem(
                file=self.source,
                line=where.line if where else None,
                column=where.column if where else None,
                path=format_loc(loc),
                message=sentence(redact_text(message)),
            )
        )


def compose(
    text: str,
    *,
    source: str,
    environ: Mapping[str, str],
    is_secret: Callable[[Loc], bool],
) -> Document:
    """Parse `text` into a `Document`, interpolating environment variables in string values.

    Args:
        text: the YAML text (one document).
        source: the file name to put in problems.
        environ: where `${VAR}` values come from.
        is_secret: whether the value at a place must never be quoted in a message.

    Raises:
        ConfigError: the text is not YAML at all (syntax error, several documents, too large).
    """
    document = Document(source=source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            document.data = _Builder(document, environ, is_secret).build(node, (), None)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(exc, source)], source=source) from None
    except yaml.reader.ReaderError as exc:
        where = _offset_position(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"invalid YAML: {exc.reason} (character #x{code:04x})"
        raise ConfigError([_problem(source, where, message)], source=source) from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises the two kinds above
        raise ConfigError([_problem(source, None, f"invalid YAML: {exc}")], source=source) from None
    except _TooLarge:
        message = f"the document has more than {_MAX_VALUES} values once aliases are expanded"
        raise ConfigError([_problem(source, None, message)], source=source) from None
    except RecursionError:
        message = "the document is nested too deeply"
        raise ConfigError([_problem(source, None, message)], source=source) from None
    return document


def interpolate(text: str, environ: Mapping[str, str], *, quote: bool) -> tuple[str, list[str]]:
    """Replace `${VAR}` and `${VAR:-default}` in `text`; `$${` stands for a literal `${`.

    `${VAR:-default}` uses the default when `VAR` is unset or empty, as in the shell. A default
    cannot contain another `${...}`.

    Args:
        text: a string value from the document.
        environ: the variables.
        quote: whether messages may quote the offending part of `text` (not for secrets).

    Returns:
        The interpolated text, and one message per problem (the text is unusable if any).
    """
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group(1)
        if body is None:
            problems.append(f"unclosed `${{`: {_SYNTAX_HELP}")
            return token
        what = f" {token!r}" if quote else ""
        parsed = _VARIABLE.fullmatch(body)
        if parsed is None or "${" in (parsed.group(2) or ""):
            problems.append(f"invalid interpolation{what}: {_SYNTAX_HELP}")
            return token
        name, default = parsed.group(1), parsed.group(2)
        value = environ.get(name)
        if default is not None:
            return value or default
        if value is None:
            problems.append(
                f"environment variable `{name}` is not set (use ${{{name}:-default}} for a default)"
            )
            return token
        return value

    return _INTERPOLATION.sub(replace, text), problems


class _TooLarge(Exception):
    pass


class _Builder:
    """Turns composed nodes into plain values, recording positions and problems on a Document."""

    def __init__(
        self, document: Document, environ: Mapping[str, str], is_secret: Callable[[Loc], bool]
    ) -> None:
        self._document = document
        self._environ = environ
        self._is_secret = is_secret
        self._constructor = SafeConstructor()
        self._count = 0
        self._open: set[int] = set()  # collections being built: an alias to one is a cycle

    def build(self, node: Node, loc: Loc, key: Position | None) -> Any:
        self._count += 1
        if self._count > _MAX_VALUES:
            raise _TooLarge
        self._document.values[loc] = _position(node)
        if key is not None:
            self._document.keys[loc] = key
        if isinstance(node, ScalarNode):
            return self._scalar(node, loc)
        if id(node) in self._open:
            self._broken(loc, "this alias refers to a value that contains it (a cycle)")
            return None
        if node.tag not in _COLLECTION_TAGS:
            self._broken(loc, f"unsupported YAML tag {_short_tag(node.tag)!r}")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*loc, i), None) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self._mapping(node, loc)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, Position] = {}
        for key_node, value_node, merged in self._pairs(node, loc):
            where = _position(key_node)
            if not isinstance(key_node, ScalarNode):
                kind = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
                message = f"a mapping key must be a plain string, not {kind}"
                self._document.report(loc, message, position=where)
                continue
            key = key_node.value
            if key in first:
                if not merged:  # keys brought in by `<<` give way to explicit ones, by design
                    message = f"duplicate key {key!r} (first at line {first[key].line})"
                    self._document.report((*loc, key), message, position=where)
                continue
            first[key] = where
            result[key] = self.build(value_node, (*loc, key), where)
        return result

    def _pairs(self, node: MappingNode, loc: Loc) -> list[tuple[Node, Node, bool]]:
        """The key/value pairs of `node`: its own first, then those merged in with `<<`."""
        own: list[tuple[Node, Node, bool]] = []
        merged: list[tuple[Node, Node, bool]] = []
        for key_node, value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag == _MERGE_TAG):
                own.append((key_node, value_node, False))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode) or id(source) in self._open:
                    message = "`<<` can only merge mappings (or a list of mappings) into this one"
                    self._document.report(loc, message, position=_position(source))
                    continue
                self._open.add(id(source))
                try:
                    merged.extend((k, v, True) for k, v, _ in self._pairs(source, loc))
                finally:
                    self._open.discard(id(source))
        return own + merged

    def _scalar(self, node: ScalarNode, loc: Loc) -> Any:
        if node.tag == _STR_TAG:
            if "$" not in node.value:
                return node.value
            quote = not self._is_secret(loc)
            value, problems = interpolate(node.value, self._environ, quote=quote)
            for message in problems:
                self._document.report(loc, message)
            if problems:
                self._document.tainted.add(loc)
            return value
        if node.tag == _MERGE_TAG:  # a lone `<<` as a value is just text
            return node.value
        if node.tag == _YAML_TAG + "binary":  # bytes would pass for text, decoded
            self._broken(loc, "binary values (!!binary) are not supported; write the text itself")
            return None
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError:
            self._broken(loc, f"unsupported YAML tag {_short_tag(node.tag)!r}")
        except Exception:  # int('x') and the like, for an explicit tag such as `!!int x`
            self._broken(loc, f"this value is not a valid {_short_tag(node.tag)}")
        return None

    def _broken(self, loc: Loc, message: str) -> None:
        self._document.report(loc, message)
        self._document.tainted.add(loc)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


def _position(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _offset_position(text: str, offset: int) -> Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return Position(text.count("\n", 0, offset) + 1, offset - line_start + 1)


def _problem(source: str, where: Position | None, message: str) -> ConfigProblem:
    return ConfigProblem(
        file=source,
        line=where.line if where else None,
        column=where.column if where else None,
        path="",
        message=sentence(message),
    )


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    where = Position(mark.line + 1, mark.column + 1) if mark else None
    problem, context = exc.problem, exc.context
    if problem and context and context.startswith("while "):
        # "could not find expected ':' (while scanning a simple key at line 3)"
        context_mark = exc.context_mark
        at = ""
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            at = f" at line {context_mark.line + 1}"
        message = f"{problem} ({context}{at})"
    else:  # "expected a single document in the stream, but found another document"
        message = ", ".join(part for part in (context, problem) if part)
    return _problem(source, where, f"invalid YAML: {message}")
