"""`sample_value` and `pattern_example`: values that the schemas tools and output types really
have accept, checked with `jsonschema`, also over generated schemas."""

from __future__ import annotations

import datetime
import enum
import re
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from agent_runtime.testing.pattern import PatternError, pattern_example
from agent_runtime.testing.sample import SampleError, sample_value


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Node(BaseModel):
    name: str
    children: list[Node]
    parent: Node | None


class Address(BaseModel):
    street: str = Field(min_length=12)
    zip: str = Field(pattern=r"^\d{5}(-\d{4})?$")
    tags: list[str] = Field(min_length=2, max_length=3)


class Order(BaseModel):
    id: int = Field(gt=10, le=20, multiple_of=3)
    price: float = Field(gt=0, lt=0.1)
    when: datetime.date
    at: datetime.datetime
    color: Color
    mode: Literal["a", "b"]
    address: Address
    note: str | None
    tree: Node
    ratio: Annotated[float, Field(ge=0.25, le=0.75, multiple_of=0.25)]


def strict_schemas() -> list[dict[str, Any]]:
    """Schemas as the Agents SDK sends them: a function tool's (strict) and an output type's."""
    from agents import AgentOutputSchema, function_tool

    def place(order: Order, count: int, email: str | None) -> str:
        """Place an order."""
        return ""

    return [
        function_tool(place).params_json_schema,
        AgentOutputSchema(Order).json_schema(),
        function_tool(place, strict_mode=False).params_json_schema,
    ]


def test_sdk_schemas() -> None:
    for schema in strict_schemas():
        value = sample_value(schema)
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
        assert sample_value(schema) == value


def test_plain_values() -> None:
    schema = {
        "type": "object",
        "properties": {
            "unit": {"enum": ["C", "F"]},
            "days": {"type": "integer", "minimum": 3},
            "note": {"type": "string"},
            "email": {"type": "string", "format": "email"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["unit", "days", "email", "tags"],
    }
    assert sample_value(schema) == {
        "unit": "C",
        "days": 3,
        "email": "someone@example.com",
        "tags": ["example"],
    }


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        pytest.param({"const": {"a": 1}}, {"a": 1}, id="const"),
        pytest.param({"type": ["null", "integer"]}, 1, id="type-list"),
        pytest.param({"not": {"type": "string"}}, 1, id="not"),
        pytest.param(
            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, 0.5, id="open"
        ),
        pytest.param(
            {
                "type": "array",
                "items": {"type": "integer", "maximum": 2},
                "minItems": 3,
                "uniqueItems": True,
            },
            [1, 2, 0],
            id="unique",
        ),
        pytest.param(
            {"type": "array", "prefixItems": [{"type": "boolean"}, {"const": 0}]},
            [True, 0],
            id="prefix",
        ),
        pytest.param({"type": "string", "minLength": 10}, "examplexxx", id="min-length"),
        pytest.param({"type": "string", "maxLength": 3}, "exa", id="max-length"),
        pytest.param(
            {"type": "object", "minProperties": 1, "properties": {"a": {"type": "null"}}},
            {"a": None},
            id="min-properties",
        ),
        pytest.param(
            {
                "allOf": [
                    {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"properties": {"b": {"const": "x"}}, "required": ["b"]},
                ]
            },
            {"a": 1, "b": "x"},
            id="all-of",
        ),
        pytest.param(True, "example", id="true"),
        pytest.param(
            {"oneOf": [{"type": "integer"}, {"type": "integer", "minimum": 0}]}, -1, id="one-of"
        ),
    ],
)
def test_keywords(schema: Any, value: Any) -> None:
    assert sample_value(schema) == value
    jsonschema.validate(value, schema)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        pytest.param(
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}, "required": ["a"]},
            "a: $ref '#/$defs/Nope' points nowhere",
            id="dangling-ref",
        ),
        pytest.param(
            {"type": "string", "pattern": "(?=a)b"},
            "the schema: the group `(?=...` in '(?=a)b' is not supported (lookarounds, flags "
            "and conditionals are not)",
            id="lookahead",
        ),
        pytest.param(False, "the schema: accepts no value (False)", id="false"),
    ],
)
def test_what_cannot_be_met(schema: Any, message: str) -> None:
    with pytest.raises(SampleError) as error:
        sample_value(schema)
    assert str(error.value) == message


PATTERNS = [
    r"^[A-Z]{2}-\d{3}$",
    r"^(foo|bar)+\.txt$",
    r"[^a-z_]",
    r"^\w+@\w+\.com$",
    r"^(?P<x>ab){2,}c?$",
    r"^\$\d+(\.\d{2})?$",
    r"x{,3}y",
    r"^[]a]$",
    r"^\S+\s\S+$",
    r"^(?:[a-f0-9]{8}-){2}[a-f0-9]+$",
    r"^\x41\u00e9+?$",
    r"a{2}b{1,}?c*",
    r"^[+-]?\d+(\.\d+)?(e\d+)?$",
    r"^é|ü$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("extra", [0, 3])
def test_pattern_examples_match(pattern: str, extra: int) -> None:
    assert re.search(pattern, pattern_example(pattern, extra=extra))


def test_pattern_example() -> None:
    assert pattern_example(r"^[A-Z]{2}-\d{3}$") == "AA-000"
    assert pattern_example(r"^a+$", extra=2) == "aaa"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        pytest.param(
            "(a",
            "'(a' is not a valid regular expression: missing ), unterminated "
            "subpattern at position 0",
            id="invalid",
        ),
        pytest.param(
            r"(a)\1", r"backreferences (`\1`) in '(a)\\1' are not supported", id="backreference"
        ),
    ],
)
def test_patterns_not_supported(pattern: str, message: str) -> None:
    with pytest.raises(PatternError) as error:
        pattern_example(pattern)
    assert str(error.value) == message


# -- generated schemas ------------------------------------------------------------------------

NAMES = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)


@st.composite
def integers(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(-1000, 1000))
    span = draw(st.integers(0, 100))
    schema: dict[str, Any] = {"type": "integer"}
    if draw(st.booleans()):
        schema["minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = low + span + 1
    if span >= 10 and draw(st.booleans()):
        schema["multipleOf"] = draw(st.integers(1, 10))
    return schema


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.floats(-1e6, 1e6, allow_nan=False))
    span = draw(st.floats(1e-3, 1e3))
    schema: dict[str, Any] = {"type": "number"}
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = low + span
    return schema


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    choice = draw(st.sampled_from(["plain", "length", "format", "pattern"]))
    if choice == "length":
        low = draw(st.integers(0, 20))
        schema["minLength"] = low
        if draw(st.booleans()):
            schema["maxLength"] = low + draw(st.integers(0, 5))
    elif choice == "format":
        schema["format"] = draw(st.sampled_from(["date", "date-time", "email", "uuid", "uri"]))
    elif choice == "pattern":
        schema["pattern"] = draw(st.sampled_from(PATTERNS))
    return schema


LEAVES = st.one_of(
    integers(),
    numbers(),
    strings(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), min_size=1, max_size=4).map(
        lambda values: {"enum": values}
    ),
)


def containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.dictionaries(NAMES, children, max_size=4).flatmap(
        lambda properties: st.builds(
            lambda required, closed: {
                "type": "object",
                "properties": properties,
                "required": [name for name in properties if name in required],
                **({"additionalProperties": False} if closed else {}),
            },
            st.sets(st.sampled_from(sorted(properties) or ["-"])),
            st.booleans(),
        )
    )
    arrays = st.builds(
        lambda items, low, more: {
            "type": "array",
            "items": items,
            "minItems": low,
            "maxItems": low + more,
        },
        children,
        st.integers(0, 3),
        st.integers(0, 3),
    )
    nullable = children.map(lambda child: {"anyOf": [child, {"type": "null"}]})
    return st.one_of(objects, arrays, nullable)


SCHEMAS = st.recursive(LEAVES, containers, max_leaves=12)


@given(SCHEMAS, st.booleans())
def test_generated_schemas(schema: dict[str, Any], through_defs: bool) -> None:
    if through_defs:
        schema = {
            "$defs": {"Part": schema},
            "type": "object",
            "properties": {"part": {"$ref": "#/$defs/Part"}},
            "required": ["part"],
            "additionalProperties": False,
        }
    value = sample_value(schema)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
