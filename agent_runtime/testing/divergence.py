"""How a model request differs from what its script entry expects (`ExpectedRequest`).

A replayed cassette only holds when the code under test asks what it asked when the cassette
was recorded. `divergence` compares the parts that must not change between runs (user messages,
function calls in the history with their parsed arguments, the tools offered) and words every
difference for a person: which call, which part, what was expected and what came.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.text import clip

if TYPE_CHECKING:
    from agent_runtime.testing.recording import RecordedRequest
    from agent_runtime.testing.script import Call, ExpectedRequest

__all__ = ["divergence", "expected_request", "parsed_arguments"]

# How much of a long text a difference shows, and how much before the first change.
_SHOWN = 300
_CONTEXT = 40


def parsed_arguments(text: str) -> Any:
    """A function call's arguments as compared: the decoded JSON, or the text when it is not
    JSON (a model may write broken arguments; they are then compared as text)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def expected_request(record: RecordedRequest) -> ExpectedRequest:
    """What a recorded request asked, as a script entry's `request:` holds it."""
    from agent_runtime.testing.script import Call, ExpectedRequest

    calls: list[Call] = []
    for function_call in record.function_calls:
        arguments = parsed_arguments(function_call.arguments)
        # Anything but a JSON object keeps its text, which is parsed again when compared.
        kept = arguments if isinstance(arguments, Mapping) else function_call.arguments
        calls.append(Call(function_call.name, kept))
    return ExpectedRequest(
        user=tuple(record.user_texts), function_calls=tuple(calls), tools=record.tool_names
    )


def divergence(
    expected: ExpectedRequest,
    record: RecordedRequest,
    *,
    call: int,
    calls: Sequence[Call] = (),
) -> str | None:
    """None when `record` asks what `expected` says, else a readable account of every
    difference, headed by the model request's number (0-based, as `mock.model_requests`).

    `calls` are the function calls of the entry's reply: each must still fit the parameters of
    the tool the request offers under its name (a tool whose parameters changed since the
    recording would otherwise get arguments it refuses, and the replay go on regardless).
    """
    problems: list[str] = []
    if expected.user is not None:
        problems += _texts_differ("user message", expected.user, tuple(record.user_texts))
    if expected.function_calls is not None:
        got = [(c.name, parsed_arguments(c.arguments)) for c in record.function_calls]
        problems += _calls_differ(expected.function_calls, got)
    if expected.tools is not None:
        problem = _tools_differ(expected.tools, record.tool_names)
        if problem is not None:
            problems.append(problem)
    problems += _calls_refused(calls, record.tool_parameters)
    if not problems:
        return None
    entry = "" if record.reply_index is None else f" (script entry {record.reply_index})"
    lines = [
        f"model request {call}{entry}, {record.method} {record.path}, differs from the script:"
    ]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


# -- the parts ------------------------------------------------------------------------------


def _texts_differ(what: str, expected: Sequence[str], got: Sequence[str]) -> list[str]:
    problems = []
    for index in range(max(len(expected), len(got))):
        if index >= len(got):
            problems.append(f"{what} {index} is missing; expected {_quote(expected[index])}")
        elif index >= len(expected):
            problems.append(f"{what} {index} is new: {_quote(got[index])}")
        elif expected[index] != got[index]:
            want, have, where = _excerpts(expected[index], got[index])
            problems.append(
                f"{what} {index} differs{where}:\n      expected {want}\n      got      {have}"
            )
    return problems


def _excerpts(expected: str, got: str) -> tuple[str, str, str]:
    """Both texts quoted; when they are long, the parts around their first difference, and
    where that is."""
    if max(len(expected), len(got)) <= _SHOWN:
        return repr(expected), repr(got), ""
    first = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    start = max(0, first - _CONTEXT)

    def excerpt(text: str) -> str:
        part = text[start : start + _SHOWN // 2]
        before = "…" if start else ""
        after = "…" if start + len(part) < len(text) else ""
        return f"{before}{part!r}{after}"

    return excerpt(expected), excerpt(got), f" from character {first}"


def _calls_differ(expected: Sequence[Call], got: Sequence[tuple[str, Any]]) -> list[str]:
    problems = []
    for index in range(max(len(expected), len(got))):
        if index >= len(got):
            call = expected[index]
            problems.append(
                f"function call {index} `{call.name}` is missing from the history "
                f"(expected arguments {_json(_compared(call.arguments))})"
            )
            continue
        name, arguments = got[index]
        if index >= len(expected):
            problems.append(
                f"function call {index} `{name}` in the history is new "
                f"(arguments {_json(arguments)})"
            )
            continue
        want = expected[index]
        wanted = _compared(want.arguments)
        if want.name != name:
            shown = (
                f"same arguments {_json(arguments)}"
                if wanted == arguments
                else f"arguments {_json(arguments)}, expected {_json(wanted)}"
            )
            problems.append(
                f"function call {index} in the history calls `{name}`, expected `{want.name}` "
                f"({shown})"
            )
        elif wanted != arguments:
            changes = _argument_changes(wanted, arguments)
            problems.append(
                f"function call {index} `{name}` in the history has other arguments: "
                + "; ".join(changes)
            )
    return problems


def _compared(arguments: Mapping[str, Any] | str) -> Any:
    """Expected arguments as compared with parsed ones: text given as text is parsed too."""
    return parsed_arguments(arguments) if isinstance(arguments, str) else dict(arguments)


def _argument_changes(expected: Any, got: Any) -> list[str]:
    if not (isinstance(expected, Mapping) and isinstance(got, Mapping)):
        return [f"expected {_json(expected)}, got {_json(got)}"]
    changes = []
    for key in expected:
        if key not in got:
            changes.append(f"`{key}` is missing (expected {_json(expected[key])})")
        elif expected[key] != got[key]:
            changes.append(f"`{key}` is {_json(got[key])}, expected {_json(expected[key])}")
    changes += [f"`{key}` is new ({_json(got[key])})" for key in got if key not in expected]
    return changes


def _calls_refused(
    calls: Sequence[Call], parameters: Mapping[str, Mapping[str, Any] | None]
) -> list[str]:
    from jsonschema import SchemaError
    from jsonschema.exceptions import best_match
    from jsonschema.validators import Draft202012Validator, validator_for

    problems = []
    for call in calls:
        schema = parameters.get(call.name)
        arguments = _compared(call.arguments)
        if not isinstance(schema, Mapping) or not isinstance(arguments, dict):
            continue  # a tool without parameters, one not offered, or arguments broken on purpose
        try:
            validator = validator_for(schema, default=Draft202012Validator)(schema)
            error = best_match(validator.iter_errors(arguments))
        except SchemaError:
            continue  # the tool's own schema is broken: not this check's business
        if error is not None:
            problems.append(
                f"the scripted reply calls `{call.name}` with {_json(arguments)}, which the "
                f"`{call.name}` tool offered now refuses: {error.message}"
            )
    return problems


def _tools_differ(expected: Sequence[str], got: Sequence[str]) -> str | None:
    if tuple(expected) == tuple(got):
        return None
    missing = [name for name in expected if name not in got]
    new = [name for name in got if name not in expected]
    parts = []
    if missing:
        parts.append("missing " + ", ".join(f"`{name}`" for name in missing))
    if new:
        parts.append("new " + ", ".join(f"`{name}`" for name in new))
    if not parts:
        parts.append("same tools in another order")
    return (
        f"tools offered differ ({'; '.join(parts)}): expected {_names(expected)}, got {_names(got)}"
    )


def _names(names: Sequence[str]) -> str:
    return "[" + ", ".join(names) + "]"


def _quote(text: str) -> str:
    return clip(repr(text), _SHOWN)


def _json(value: Any) -> str:
    return clip(json.dumps(value, ensure_ascii=False, sort_keys=True), _SHOWN)
