"""YAML with positions, and problems placed on them, for `agent_runtime.config`.

`compose` parses a document with PyYAML's safe composer and builds plain Python values itself, so
that it can remember where every key and value sits, catch duplicate keys (PyYAML silently keeps
the last one) and interpolate `${VAR}` / `${VAR:-default}` in string values. Problems are collected
on the returned `Document` rather than raised, so the caller can report all of them at once;
`report_validation_error` places pydantic's errors (by their `loc`) on the same positions.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agent_runtime.errors import ConfigError, ConfigProblem

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


def sentence(message: str) -> str:
    """`message` ending with a full stop unless it already ends with one, `?` or `!`."""
    return message if message.endswith((".", "?", "!")) else message + "."


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
        """Record a problem at `loc` (at its key or its value, or at an explicit `position`)."""
        where = position or self.position(loc, at=at)
        self.problems.append(
            ConfigProblem(
                file=self.source,
                line=where.line if where else None,
                column=where.column if where else None,
                path=format_loc(loc),
                message=sentence(message),
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


# --- pydantic errors as problems ----------------------------------------------------------------


def report_validation_error(
    document: Document,
    loc: Loc,
    error: ErrorDetails,
    *,
    root: type[BaseModel],
    is_secret: Callable[[Loc], bool],
) -> None:
    """Record one pydantic error as a problem at the right key or value of `document`.

    A missing field is reported at the key of the mapping that lacks it; an unknown field at
    its own key, with "Did you mean …?" from the fields of that model (and of models nested in
    it, e.g. `model_settings.temperature`); a bad value at the value, in short human words.
    Values at places where `is_secret` says so are never quoted.
    """
    kind = error["type"]
    if kind == "missing":
        document.report(loc[:-1], f"missing required field `{loc[-1]}`", at="key")
    elif kind == "extra_forbidden":
        document.report(loc, "unknown field" + _field_hint(root, loc), at="key")
    else:
        document.report(loc, _value_message(error, secret=is_secret(loc)))


def _value_message(error: ErrorDetails, *, secret: bool) -> str:
    kind, value, ctx = error["type"], error["input"], error.get("ctx", {})
    shown = show(value, secret=secret)
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        return f"expected {expected}, got {shown}" + did_you_mean(value, choices, quote="'")
    messages = {
        "string_type": f"expected a string, got {kind_of(value)}",
        "int_type": f"expected an integer, got {shown}",
        "int_parsing": f"expected an integer, got {shown}",
        "int_from_float": f"expected an integer, got {shown}",
        "float_type": f"expected a number, got {shown}",
        "float_parsing": f"expected a number, got {shown}",
        "bool_type": f"expected true or false, got {shown}",
        "bool_parsing": f"expected true or false, got {shown}",
        "dict_type": f"expected a mapping, got {kind_of(value)}",
        "model_type": f"expected a mapping, got {kind_of(value)}",
        "model_attributes_type": f"expected a mapping, got {kind_of(value)}",
        "list_type": f"expected a list, got {kind_of(value)}",
        "greater_than": f"must be greater than {_number(ctx.get('gt'))}, got {shown}",
        "greater_than_equal": f"must be at least {_number(ctx.get('ge'))}, got {shown}",
        "less_than_equal": f"must be at most {_number(ctx.get('le'))}, got {shown}",
        "finite_number": f"must be a finite number, got {shown}",
    }
    message = messages.get(kind, error["msg"].removeprefix("Value error, "))
    if kind == "string_type" and isinstance(value, bool | int | float):
        message += " (quote the value to keep it as text)"
    elif kind == "list_type" and isinstance(value, str) and not secret:
        message += f" (write [{value}] for a single item)"
    return message


def _number(value: object) -> str:
    """A bound as written in the model: 1 rather than pydantic's 1.0 for a float field."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _field_hint(root: type[BaseModel], loc: Loc) -> str:
    """'. Did you mean `x`?' for an unknown key, or the list of the allowed keys."""
    model = _model_at(root, loc[:-1])
    if model is None:
        return ""
    candidates = {name: f"`{name}`" for name in model.model_fields}
    for name, info in model.model_fields.items():  # a key put one level too high
        nested = _model_in(info.annotation)
        for inner in nested.model_fields if nested else ():
            candidates.setdefault(inner, f"`{name}.{inner}`")
    match = difflib.get_close_matches(str(loc[-1]), list(candidates), n=1)
    if match:
        return f". Did you mean {candidates[match[0]]}?"
    return " (allowed: " + ", ".join(f"`{name}`" for name in model.model_fields) + ")"


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model whose fields live at `loc` in a document validated as `root`, if any."""
    annotation: Any = root
    for part in loc:
        model = _model_in(annotation)
        if model is not None:
            if not isinstance(part, str) or part not in model.model_fields:
                return None
            annotation = model.model_fields[part].annotation
            continue
        annotation = _strip_optional(annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is dict and isinstance(part, str):
            annotation = args[1]
        elif origin is list and isinstance(part, int):
            annotation = args[0]
        else:
            return None
    return _model_in(annotation)


def _strip_optional(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _strip_optional(members[0])
    return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model in `annotation`, through Optional, Annotated and `str | Model` unions."""
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            model = _model_in(member)
            if model is not None:
                return model
    return None


# --- words for messages -------------------------------------------------------------------------


def did_you_mean(value: object, names: list[str], *, quote: str = "`") -> str:
    """'. Did you mean `name`?' for the closest of `names`, or ''."""
    if not isinstance(value, str):
        return ""
    match = difflib.get_close_matches(value, names, n=1)
    return f". Did you mean {quote}{match[0]}{quote}?" if match else ""


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
    return shown if len(shown) <= 60 else shown[:56] + "...'"
