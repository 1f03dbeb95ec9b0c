"""A value a JSON Schema accepts, made up deterministically: tool arguments and structured answers.

`sample_value(schema)` walks the schema (`$ref`/`$defs`, `allOf`/`anyOf`/`oneOf`, `enum`,
`const`, types and their bounds, string formats and simple patterns) and builds the plainest
value it can; every candidate is checked with `jsonschema`, and the next one is tried when the
check fails, so what comes back is valid or a `SampleError` says which part could not be met.
The same schema always gives the same value.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from agent_runtime.testing.pattern import PatternError, pattern_example

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = ["SampleError", "sample_value"]

# From this depth on, optional parts are left out (`null` options, empty arrays) so that
# recursive schemas (a tree of nodes) end.
_SHALLOW = 4
_MAX_DEPTH = 24
# Candidates checked per schema node before giving up on it.
_TRIES = 40

_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "someone@example.com",
    "idn-email": "someone@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri-reference": "https://example.com/",
    "uri-template": "https://example.com/{id}",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "json-pointer": "/example",
    "relative-json-pointer": "0",
    "regex": "^example$",
}
_TEXT = "example"
_FALLBACKS: tuple[Any, ...] = (_TEXT, 1, 0.5, True, None, {}, [])
_ALTERNATIVES = ("anyOf", "oneOf")


class SampleError(ValueError):
    """No value was found that the schema accepts; the message names the part that failed."""


def sample_value(schema: Mapping[str, Any] | bool) -> Any:
    """A value `schema` accepts: the same one every time.

    Objects get their required properties (and more only when `minProperties` asks); arrays
    get one item (or `minItems`); strings are `"example"`, a sample of their `format`, or made
    to match their `pattern`; numbers are 1 when the bounds allow. Recursive schemas end with
    their `null` options and empty arrays.

    >>> sample_value({"type": "object", "properties": {"unit": {"enum": ["C", "F"]},
    ...     "days": {"type": "integer", "minimum": 3}}, "required": ["unit", "days"]})
    {'unit': 'C', 'days': 3}

    Raises:
        SampleError: no value fits (the schema contradicts itself, or uses a pattern or a
            combination this function cannot satisfy).
    """
    return _Sampler(schema).value(schema, 0, "")


class _Sampler:
    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        import jsonschema
        import jsonschema.validators

        self.root = root
        self._validator_class = (
            jsonschema.validators.validator_for(root, default=jsonschema.Draft202012Validator)
            if isinstance(root, Mapping)
            else jsonschema.Draft202012Validator
        )
        self._validators: dict[int, Validator] = {}
        self._kept: list[Any] = []  # keeps the schemas cached by id alive

    # -- checking -----------------------------------------------------------------------------

    def valid(self, instance: Any, schema: Mapping[str, Any] | bool) -> bool:
        """Whether `schema` (a part of the root, its `$ref`s resolved in the root) accepts
        `instance`."""
        validator = self._validators.get(id(schema))
        if validator is None:
            document: Any = schema
            if isinstance(schema, Mapping) and isinstance(self.root, Mapping):
                document = dict(schema)
                for keyword in ("$defs", "definitions"):
                    if keyword in self.root and keyword not in document:
                        document[keyword] = self.root[keyword]
            validator = self._validator_class(
                document, format_checker=self._validator_class.FORMAT_CHECKER
            )
            self._validators[id(schema)] = validator
            self._kept.append(schema)
        return bool(validator.is_valid(instance))

    def value(self, schema: Any, depth: int, where: str) -> Any:
        """The first candidate for `schema` that it accepts."""
        if depth > _MAX_DEPTH:
            raise SampleError(f"{_place(where)}: nested too deep (a recursive schema?)")
        if schema is True or schema == {}:
            return _TEXT
        if not isinstance(schema, Mapping):
            raise SampleError(f"{_place(where)}: accepts no value ({schema!r})")
        problems: list[str] = []
        for tried, candidate in enumerate(self._candidates(schema, depth, where, problems)):
            if self.valid(candidate, schema):
                return candidate
            if tried >= _TRIES:
                break
        for candidate in _FALLBACKS:
            if self.valid(candidate, schema):
                return candidate
        if problems:  # the innermost part that failed says most
            raise SampleError(problems[0])
        shown = json.dumps(schema, ensure_ascii=False, default=str)
        if len(shown) > 300:
            shown = shown[:300] + "…"
        raise SampleError(f"{_place(where)}: no value found for {shown}")

    # -- candidates ---------------------------------------------------------------------------

    def _candidates(
        self, schema: Mapping[str, Any], depth: int, where: str, problems: list[str]
    ) -> Iterator[Any]:
        """Values to try for `schema`, plainest first (any of them may still fail it)."""
        if "$ref" in schema:
            target = self._resolve(schema["$ref"], where)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            yield from self._candidates(_merge(target, rest), depth + 1, where, problems)
            return
        if "const" in schema:
            yield copy.deepcopy(schema["const"])
        if isinstance(schema.get("enum"), list):
            yield from (copy.deepcopy(value) for value in schema["enum"])
            return
        if "default" in schema:
            yield copy.deepcopy(schema["default"])
        if isinstance(schema.get("examples"), list):
            yield from (copy.deepcopy(value) for value in schema["examples"])
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self._resolved(part, where))
            yield from self._candidates(merged, depth + 1, where, problems)
            return
        for keyword in _ALTERNATIVES:
            options = schema.get(keyword)
            if isinstance(options, list) and options:
                rest = {k: v for k, v in schema.items() if k != keyword}
                for option in self._ordered(options, depth, where):
                    merged = _merge(rest, option)
                    yield from self._attempt(merged, depth + 1, where, problems)
                    if keyword == "oneOf":  # its first value may fit other options too
                        yield from self._candidates(merged, depth + 1, where, problems)
                return
        for kind in self._types(schema, depth):
            yield from self._typed(kind, schema, depth, where, problems)

    def _attempt(
        self, schema: Mapping[str, Any], depth: int, where: str, problems: list[str]
    ) -> Iterator[Any]:
        """`value(schema)` as one candidate (nothing when it has none)."""
        try:
            yield self.value(schema, depth, where)
        except SampleError as exc:
            problems.append(str(exc))

    def _ordered(self, options: list[Any], depth: int, where: str) -> list[Any]:
        """`anyOf`/`oneOf` options in the order to try: `null` last, or first when deep."""
        nulls = [o for o in options if self._is_null(o, where)]
        others = [o for o in options if not self._is_null(o, where)]
        return nulls + others if depth >= _SHALLOW else others + nulls

    def _is_null(self, option: Any, where: str) -> bool:
        resolved = self._resolved(option, where)
        return isinstance(resolved, Mapping) and resolved.get("type") == "null"

    def _types(self, schema: Mapping[str, Any], depth: int) -> list[str]:
        kind = schema.get("type")
        if isinstance(kind, str):
            return [kind]
        if isinstance(kind, list):
            kinds = [k for k in kind if isinstance(k, str)]
            real = [k for k in kinds if k != "null"]
            if "null" not in kinds:
                return real
            return ["null", *real] if depth >= _SHALLOW else [*real, "null"]
        if any(k in schema for k in ("properties", "required", "additionalProperties")):
            return ["object"]
        if any(k in schema for k in ("items", "prefixItems", "minItems", "contains")):
            return ["array"]
        if any(k in schema for k in ("pattern", "format", "minLength", "maxLength")):
            return ["string"]
        if any(k in schema for k in ("minimum", "maximum", "multipleOf", "exclusiveMinimum")):
            return ["number"]
        return ["string", "integer", "boolean", "object", "array", "null"]

    def _typed(
        self, kind: str, schema: Mapping[str, Any], depth: int, where: str, problems: list[str]
    ) -> Iterator[Any]:
        if kind == "object":
            yield from self._objects(schema, depth, where, problems)
        elif kind == "array":
            yield from self._arrays(schema, depth, where, problems)
        elif kind == "string":
            yield from _strings(schema, where, problems)
        elif kind in ("integer", "number"):
            yield from _numbers(schema, integer=kind == "integer")
        elif kind == "boolean":
            yield from (True, False)
        elif kind == "null":
            yield None

    def _objects(
        self, schema: Mapping[str, Any], depth: int, where: str, problems: list[str]
    ) -> Iterator[dict[str, Any]]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [n for n in schema.get("required") or () if isinstance(n, str)]
        optional = [n for n in properties if n not in required]
        minimum = schema.get("minProperties")
        extra = max(0, minimum - len(required)) if isinstance(minimum, int) else 0
        choices = [required + optional[:extra]]
        if depth < _SHALLOW and optional[extra:]:
            choices.append(required + optional)
        for names in choices:
            try:
                yield {
                    name: self.value(
                        self._property_schema(schema, name), depth + 1, f"{where}.{name}"
                    )
                    for name in names
                }
            except SampleError as exc:
                problems.append(str(exc))

    def _property_schema(self, schema: Mapping[str, Any], name: str) -> Any:
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and name in properties:
            return properties[name]
        additional = schema.get("additionalProperties")
        return additional if isinstance(additional, Mapping) else True

    def _arrays(
        self, schema: Mapping[str, Any], depth: int, where: str, problems: list[str]
    ) -> Iterator[list[Any]]:
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items", True)
        if isinstance(items, list):  # draft 4-7 tuples
            prefix, items = items, schema.get("additionalItems", True)
        low = schema.get("minItems")
        low = low if isinstance(low, int) else 0
        high = schema.get("maxItems")
        wanted = max(low, len(prefix))
        if depth < _SHALLOW and items is not False and wanted == 0:
            wanted = 1
        if isinstance(high, int):
            wanted = min(wanted, high)
        try:
            values = [
                self.value(part, depth + 1, f"{where}[{i}]")
                for i, part in enumerate(prefix[:wanted])
            ]
            if len(values) < wanted:
                values += self._items(schema, items, wanted - len(values), depth, where)
        except SampleError as exc:
            problems.append(str(exc))
            if low == 0:
                yield []
            return
        if "contains" in schema and not any(self.valid(v, schema["contains"]) for v in values):
            yield [*values, *self._attempt(schema["contains"], depth + 1, f"{where}[]", problems)]
        yield values
        if low == 0:
            yield []

    def _items(
        self, schema: Mapping[str, Any], items: Any, count: int, depth: int, where: str
    ) -> list[Any]:
        """`count` more items; different ones when `uniqueItems` asks."""
        first = self.value(items, depth + 1, f"{where}[]")
        if not schema.get("uniqueItems") or count <= 1:
            return [copy.deepcopy(first) for _ in range(count)]
        found = [first]
        if isinstance(items, Mapping):
            problems: list[str] = []
            for candidate in self._candidates(items, depth + 1, f"{where}[]", problems):
                if len(found) == count:
                    break
                if candidate not in found and self.valid(candidate, items):
                    found.append(candidate)
        if len(found) < count:
            raise SampleError(f"{where}: not enough different items for uniqueItems")
        return found

    # -- references -----------------------------------------------------------------------------

    def _resolved(self, schema: Any, where: str) -> Any:
        while isinstance(schema, Mapping) and set(schema) == {"$ref"}:
            schema = self._resolve(schema["$ref"], where)
        return schema

    def _resolve(self, reference: Any, where: str) -> Any:
        """The schema a local `$ref` (`#/$defs/Name`) points at."""
        if not isinstance(reference, str) or not reference.startswith("#"):
            raise SampleError(f"{_place(where)}: only local $refs are followed: {reference!r}")
        node: Any = self.root
        for part in reference[1:].strip("/").split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, Mapping) and key in node:
                node = node[key]
            else:
                raise SampleError(f"{_place(where)}: $ref {reference!r} points nowhere")
        return node


def _merge(base: Any, extra: Any) -> Any:
    """Two schemas that must both hold, as one (properties and `required` combined)."""
    if not isinstance(base, Mapping) or not base:
        return extra
    if not isinstance(extra, Mapping):
        return base if extra is True else extra
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        elif key == "required" and isinstance(merged.get(key), list):
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        else:
            merged[key] = value
    return merged


def _place(where: str) -> str:
    """Where in the value a schema part applies: `order.items[0]`, or `the schema`."""
    return where.lstrip(".") or "the schema"


def _strings(schema: Mapping[str, Any], where: str, problems: list[str]) -> Iterator[str]:
    low = schema.get("minLength")
    low = low if isinstance(low, int) else 0
    high = schema.get("maxLength")
    high = high if isinstance(high, int) else None
    pattern = schema.get("pattern")
    bases: list[str] = []
    if isinstance(pattern, str):
        try:
            for extra in (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89):
                text = pattern_example(pattern, extra=extra)
                bases.append(text)
                if len(text) >= low:
                    break
        except PatternError as exc:
            problems.append(f"{_place(where)}: {exc}")
    if isinstance(schema.get("format"), str):
        bases.append(_FORMATS.get(schema["format"], _TEXT))
    bases.append(_TEXT)
    for text in bases:
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None and len(text) > high:
            text = text[:high]
        yield text


def _numbers(schema: Mapping[str, Any], *, integer: bool) -> Iterator[int | float]:
    low, high = _bounds(schema, integer=integer)
    step = schema.get("multipleOf")
    step = step if isinstance(step, int | float) and step > 0 else None
    starts: list[float] = [1]
    if low is not None:
        starts.append(low)
    if high is not None:
        starts.append(high)
    if low is not None and high is not None:
        starts.append((low + high) / 2)
    starts += [0, -1]
    for start in starts:
        value = start
        if step is not None:
            value = math.ceil(value / step) * step
            if high is not None and value > high:
                value = math.floor(start / step) * step
        if integer:
            value = math.ceil(value)
        elif step is not None and isinstance(step, float):
            value = round(value, 10)
        yield int(value) if float(value).is_integer() else value


def _bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float | None, float | None]:
    """The lowest and highest values allowed (exclusive bounds moved inside)."""
    nudge = 1 if integer else 0.5
    low: float | None = None
    high: float | None = None
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = max(low if low is not None else -math.inf, schema["exclusiveMinimum"] + nudge)
    if isinstance(schema.get("maximum"), int | float):
        high = schema["maximum"]
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = min(high if high is not None else math.inf, schema["exclusiveMaximum"] - nudge)
    if not integer and low is not None and high is not None and low > high:
        # a narrow open interval: its middle
        middle = (schema.get("exclusiveMinimum", low) + schema.get("exclusiveMaximum", high)) / 2
        return middle, middle
    return low, high
