"""Tool calls compared with the calls a test or an eval expects.

`match_tool_calls(actual, expected)` says whether a run made the expected calls, in order, and
when not, which call differs and how, in one paragraph fit for an assertion message or an eval
report. Expected arguments may leave out what does not matter: `{"city": "Tokyo"}` matches
`{"city": "Tokyo", "units": "metric"}`, at any depth of nested objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agent_runtime.testing.recording import RecordedRequest
from agent_runtime.testing.script import Call

__all__ = ["answered_calls", "match_tool_calls", "parse_arguments"]

_EXPECTED_KEYS = frozenset({"name", "arguments"})
_MISSING = object()


def parse_arguments(text: str) -> Any:
    """Tool call arguments as a dict when `text` is a JSON object, else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


def answered_calls(requests: Iterable[RecordedRequest]) -> list[Call]:
    """The function calls in the replies a mock answered `requests` with, in order.

    Replies given as raw `harmony` text and faults that answer instead of a reply (an HTTP
    error, a dropped connection) contribute none.
    """
    calls: list[Call] = []
    for record in requests:
        reply = record.reply
        if reply is None or (reply.fault is not None and reply.fault.replaces_reply):
            continue
        calls.extend(reply.calls)
    return calls


def match_tool_calls(actual: Iterable[Any], expected: Iterable[Mapping[str, Any]]) -> str | None:
    """None when `actual` are the `expected` calls, in order; else why not, in one paragraph.

    Args:
        actual: the calls made: `(name, arguments)` pairs, `ToolCall` items (`RunResult.
            tool_calls`) or `Call` values (`MockVLLM.tool_calls`). Arguments given as text
            are read as JSON when they are a JSON object.
        expected: mappings with a `name` and, optionally, `arguments`: a mapping that the
            call's arguments must contain (nested mappings likewise; lists and other values
            must be equal), or a string the arguments text must be.

    Raises:
        ValueError: an expected call that is not a mapping with a `name`.
    """
    made = [_normalise(call) for call in actual]
    wanted = [_expected(index, spec) for index, spec in enumerate(expected)]
    for index, (name, arguments) in enumerate(wanted):
        if index >= len(made):
            return (
                f"expected {_count(len(wanted))}, the run made {len(made)}: "
                f"missing call {index + 1}, {_show(name, arguments)}."
            )
        got_name, got_arguments = made[index]
        if got_name != name:
            return (
                f"tool call {index + 1} of {len(made)} is {_show(got_name, got_arguments)}; "
                f"expected {_show(name, arguments)}."
            )
        if arguments is not _MISSING:
            difference = _difference(arguments, got_arguments, "arguments")
            if difference is not None:
                return (
                    f"tool call {index + 1} of {len(made)}, `{name}`: {difference}. It was "
                    f"{_show(got_name, got_arguments)}; expected {_show(name, arguments)}."
                )
    if len(made) > len(wanted):
        extra = made[len(wanted)]
        return (
            f"expected {_count(len(wanted))}, the run made {len(made)}: the first one not "
            f"expected is call {len(wanted) + 1}, {_show(*extra)}."
        )
    return None


def _normalise(call: Any) -> tuple[str, Any]:
    if isinstance(call, Sequence) and not isinstance(call, str) and len(call) == 2:
        name, arguments = call
    elif hasattr(call, "parsed_arguments"):
        name, arguments = call.name, call.parsed_arguments
    elif hasattr(call, "name") and hasattr(call, "arguments"):
        name, arguments = call.name, call.arguments
    else:
        raise ValueError(
            f"a tool call to compare must be a (name, arguments) pair, a ToolCall or a Call, "
            f"not {call!r}"
        )
    if isinstance(arguments, str):
        arguments = parse_arguments(arguments)
    elif isinstance(arguments, Mapping):
        arguments = dict(arguments)
    return str(name), arguments


def _expected(index: int, spec: Any) -> tuple[str, Any]:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise ValueError(
            f"expected tool call {index + 1} must be a mapping with a `name` (and optionally "
            f"`arguments`), e.g. {{'name': 'get_weather', 'arguments': {{'city': 'Tokyo'}}}}; "
            f"got {spec!r}"
        )
    unknown = sorted(set(spec) - _EXPECTED_KEYS)
    if unknown:
        raise ValueError(
            f"expected tool call {index + 1} has unknown key(s) {', '.join(map(repr, unknown))}: "
            "only `name` and `arguments` are compared"
        )
    arguments = spec.get("arguments", _MISSING)
    return spec["name"], parse_arguments(arguments) if isinstance(arguments, str) else arguments


def _difference(expected: Any, actual: Any, where: str) -> str | None:
    """The first place where `actual` does not match `expected` (mappings: a subset)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{where} is {_json(actual)}, not an object"
        for key, value in expected.items():
            if key not in actual:
                return f"{where}.{key} is missing"
            found = _difference(value, actual[key], f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(expected, list | tuple):
        if not isinstance(actual, list | tuple) or len(actual) != len(expected):
            return f"{where} is {_json(actual)}, expected {_json(expected)}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found = _difference(want, got, f"{where}[{index}]")
            if found is not None:
                return found
        return None
    if type(expected) is bool or type(actual) is bool:
        same = type(expected) is type(actual) and expected == actual
    else:
        same = expected == actual
    return None if same else f"{where} is {_json(actual)}, expected {_json(expected)}"


def _count(number: int) -> str:
    return f"{number} tool call{'' if number == 1 else 's'}"


def _show(name: str, arguments: Any) -> str:
    if arguments is _MISSING:
        return f"`{name}`"
    return f"`{name}` with {_json(arguments)}"


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    return text if len(text) <= 200 else text[:199] + "…"
