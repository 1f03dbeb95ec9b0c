"""Ready-made responders: replies computed from the request, for open-ended or concurrent use."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.testing.recording import PromptMessage, RecordedRequest
from agent_runtime.testing.script import Call, Reply

__all__ = ["ToolLoop", "example_arguments"]

# How deep `$ref`s and nested objects are followed when making up arguments.
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolLoop:
    """Call a tool `steps` times, then answer: a stateless model for any number of runs.

    It counts the results of that tool since the last user message of the request, so
    concurrent runs interleave freely and every new user message of a conversation (a chat, a
    session) starts a new round of calls. The final answer quotes the last tool result of the
    round, so a test can see the result reached the model.

    When the request does not offer `tool`, it calls the first function tool the request offers
    instead (a handoff's `transfer_to_…` too), with arguments made up from that tool's JSON
    Schema (see `example_arguments`); when the request offers no tool, it answers at once.

    Use it as `MockVLLM(default=ToolLoop(tool="get_weather", arguments={"city": "Tokyo"}))`.
    """

    tool: str = "get_weather"
    arguments: Mapping[str, Any] = field(default_factory=lambda: {"city": "Tokyo"})
    steps: int = 1
    reasoning: str = "The user wants the weather; call the tool."
    final: str = "Done: {output}"
    final_reasoning: str = "I have the result; answer."

    def __call__(self, request: RecordedRequest) -> Reply:
        round_ = _since_last_user(request.messages)
        target = self._target(request)
        if target is not None:
            done = sum(1 for m in round_ if m.role == "tool" and m.name == f"functions.{target}")
            if done < self.steps:
                return Reply(
                    reasoning=f"{self.reasoning} (step {done + 1})",
                    calls=(Call(target, self._arguments_for(target, request)),),
                )
        results = [m.text for m in round_ if m.role == "tool"]
        output = results[-1] if results else ""
        return Reply(reasoning=self.final_reasoning, final=self.final.format(output=output))

    def _target(self, request: RecordedRequest) -> str | None:
        """The tool to call: `tool` when offered, else the first offered one, else None."""
        if self.tool in request.tool_names:
            return self.tool
        return request.tool_names[0] if request.tool_names else None

    def _arguments_for(self, name: str, request: RecordedRequest) -> Mapping[str, Any]:
        if name == self.tool:
            return self.arguments
        return example_arguments(request.tool_parameters.get(name), known=self.arguments)


def _since_last_user(messages: Sequence[PromptMessage]) -> Sequence[PromptMessage]:
    """The messages after the last user message (all of them when there is none)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index + 1 :]
    return messages


def example_arguments(
    schema: Mapping[str, Any] | None, *, known: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Arguments a tool with parameters `schema` (a JSON Schema object) accepts.

    Every required property gets a value: from `known` when it has one of that name, else one
    made up from the property's schema (`const`, the first `enum` value, `default`, or a plain
    value of its type within its bounds). Optional properties are left out.

    >>> example_arguments({"type": "object", "properties": {"n": {"type": "integer",
    ...     "minimum": 3}, "q": {"type": "string"}}, "required": ["n", "q"]})
    {'n': 3, 'q': 'example'}
    """
    if not isinstance(schema, Mapping):
        return {}
    return _object_example(schema, schema, 0, known or {})


def _object_example(
    schema: Mapping[str, Any], root: Mapping[str, Any], depth: int, known: Mapping[str, Any]
) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = schema.get("required")
    names = [n for n in required if n in properties] if isinstance(required, list) else []
    return {
        name: known[name] if name in known else _example(properties[name], root, depth + 1)
        for name in names
    }


def _example(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    """A value that `schema` accepts (best effort: the common JSON Schema keywords)."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return _example(_resolve(schema["$ref"], root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for keyword in ("anyOf", "oneOf", "allOf"):
        options = schema.get(keyword)
        if isinstance(options, list) and options:
            typed = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return _example((typed or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    return _typed_example(kind, schema, root, depth)


def _typed_example(
    kind: Any, schema: Mapping[str, Any], root: Mapping[str, Any], depth: int
) -> Any:
    if kind == "object":
        return _object_example(schema, root, depth, {})
    if kind == "array":
        count = schema.get("minItems", 0)
        count = count if isinstance(count, int) else 0
        return [_example(schema.get("items"), root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema)


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    value: float = 1
    if isinstance(schema.get("minimum"), int | float):
        value = schema["minimum"]
    elif isinstance(schema.get("exclusiveMinimum"), int | float):
        value = schema["exclusiveMinimum"] + 1
    elif isinstance(schema.get("maximum"), int | float):
        value = min(value, schema["maximum"])
    elif isinstance(schema.get("exclusiveMaximum"), int | float):
        value = min(value, schema["exclusiveMaximum"] - 1)
    return math.ceil(value) if integer else value


_STRING_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _string(schema: Mapping[str, Any]) -> str:
    text = _STRING_FORMATS.get(str(schema.get("format")), "example")
    length = schema.get("minLength")
    if isinstance(length, int) and len(text) < length:
        text += "x" * (length - len(text))
    return text


def _resolve(reference: Any, root: Mapping[str, Any]) -> Any:
    """The schema a local `$ref` (`#/$defs/Name`) points at; None for any other."""
    if not isinstance(reference, str) or not reference.startswith("#"):
        return None
    node: Any = root
    for part in reference.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node
