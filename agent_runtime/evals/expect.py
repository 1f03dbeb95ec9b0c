"""Checking a run against a case's expectations: the first one that fails, in one line.

The expectations are checked in the order a reader follows a run: the tool calls, the
handoffs, the agent that answered, the turns, then the answer (its schema, the texts it
contains, the pattern it matches).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from agent_runtime.evals.spec import ExpectSpec
from agent_runtime.results import Handoff, RunResult
from agent_runtime.testing.matching import match_tool_calls
from agent_runtime.text import one_line

__all__ = ["answer_text", "first_failure"]

_SHOWN = 80
"""Characters of an answer quoted in a reason."""


def answer_text(final_output: Any) -> str:
    """The final answer as text: itself, or a structured answer as compact JSON."""
    if isinstance(final_output, str):
        return final_output
    from pydantic_core import to_jsonable_python

    value = to_jsonable_python(final_output, fallback=str)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def first_failure(
    expect: ExpectSpec,
    result: RunResult,
    *,
    agent_schema: Mapping[str, Any] | None = None,
    agent_type: type[Any] | None = None,
) -> str | None:
    """Why `result` does not meet `expect` (the first expectation that fails), or None.

    Args:
        expect: the case's expectations.
        result: the finished run.
        agent_schema: the agent's own `output_schema` when it is a JSON Schema, for
            `output_schema: true`.
        agent_type: the type the agent's `output_schema` names, for `output_schema: true`.
    """
    if expect.tool_calls is not None:
        actual = [(call.name, call.parsed_arguments) for call in result.tool_calls]
        expected = [call.model_dump(exclude_none=True) for call in expect.tool_calls]
        reason = match_tool_calls(actual, expected)
        if reason is not None:
            return "tool_calls: " + one_line(reason, 300, note=False)
    if expect.handoffs is not None:
        handed = [item.to_agent for item in result.items if isinstance(item, Handoff)]
        if handed != expect.handoffs:
            return f"handoffs: expected {_names(expect.handoffs)}, got {_names(handed)}"
    if expect.agent is not None and result.agent != expect.agent:
        return f"agent: expected {expect.agent!r} to answer, but {result.agent!r} did"
    if expect.max_turns is not None and result.turns > expect.max_turns:
        return f"max_turns: the run took {result.turns} turns, more than {expect.max_turns}"
    text = answer_text(result.final_output)
    if expect.output_schema is not None and expect.output_schema is not False:
        reason = _schema_failure(
            expect.output_schema, result.final_output, agent_schema, agent_type
        )
        if reason is not None:
            return f"output_schema: {reason}"
    for needle in expect.output_contains or ():
        if needle not in text:
            return f"output_contains: {needle!r} not in the answer {_quote(text)}"
    if expect.output_matches is not None and re.search(expect.output_matches, text) is None:
        return f"output_matches: /{expect.output_matches}/ does not match the answer {_quote(text)}"
    return None


def _schema_failure(
    schema: bool | dict[str, Any],
    final_output: Any,
    agent_schema: Mapping[str, Any] | None,
    agent_type: type[Any] | None,
) -> str | None:
    """Why the answer does not fit the schema (the agent's for `True`), or None."""
    if schema is True and agent_type is not None:
        if isinstance(final_output, agent_type):
            return None
        return f"expected an instance of {agent_type.__name__}, got {type(final_output).__name__}"
    chosen = agent_schema if schema is True else schema
    if not isinstance(chosen, Mapping):
        return "the agent declares no output_schema to check the answer against"
    value = final_output
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return f"the answer is not JSON: {_quote(value)}"
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(dict(chosen)).iter_errors(value), key=lambda e: e.path)
    if not errors:
        return None
    error = errors[0]
    where = "".join(f"[{part!r}]" for part in error.absolute_path)
    return f"{'answer' + where if where else 'the answer'}: {one_line(error.message, 200)}"


def _names(names: list[str]) -> str:
    return "[" + ", ".join(repr(name) for name in names) + "]" if names else "none"


def _quote(text: str) -> str:
    return repr(one_line(text, _SHOWN, note=False))
