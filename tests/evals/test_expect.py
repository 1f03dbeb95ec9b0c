"""`first_failure` on finished runs: typed answers, schemas, and the order expectations are read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agent_runtime.evals import ExpectSpec, first_failure
from agent_runtime.results import Handoff, RunResult, ToolCall, Usage


@dataclass
class Forecast:
    city: str


def result(final_output: Any, *items: Any, turns: int = 1, agent: str = "a") -> RunResult:
    return RunResult(
        final_output=final_output,
        items=items,
        usage=Usage(),
        turns=turns,
        trace_id="t",
        agent=agent,
    )


def expect(**fields: Any) -> ExpectSpec:
    return ExpectSpec.model_validate(fields)


def test_output_schema_true_checks_the_agents_type() -> None:
    spec = expect(output_schema=True)
    assert first_failure(spec, result(Forecast("Tokyo")), agent_type=Forecast) is None
    assert first_failure(spec, result("Tokyo"), agent_type=Forecast) == (
        "output_schema: expected an instance of Forecast, got str"
    )


def test_output_schema_true_checks_the_agents_json_schema() -> None:
    schema = {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"]}
    spec = expect(output_schema=True)
    assert first_failure(spec, result('{"t": 21}'), agent_schema=schema) is None
    assert first_failure(spec, result({"t": "hot"}), agent_schema=schema) == (
        "output_schema: answer['t']: 'hot' is not of type 'number'"
    )
    assert first_failure(spec, result("{}")) == (
        "output_schema: the agent declares no output_schema to check the answer against"
    )


def test_structured_answers_are_searched_as_compact_json() -> None:
    spec = expect(output_contains='"city":"Tokyo"', output_matches=r"^\{")
    assert first_failure(spec, result({"city": "Tokyo"})) is None
    assert first_failure(spec, result(Forecast("Tokyo"))) is None


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        pytest.param(
            {"tool_calls": [], "handoffs": [], "output_contains": "x"},
            "tool_calls: expected 0 tool calls, the run made 1: ",
            id="tool-calls-first",
        ),
        pytest.param(
            {"handoffs": ["b", "c"], "agent": "z"},
            "handoffs: expected ['b', 'c'], got ['b']",
            id="then-handoffs",
        ),
        pytest.param(
            {"agent": "z", "max_turns": 1}, "agent: expected 'z' to answer, but 'a' did", id="agent"
        ),
        pytest.param(
            {"max_turns": 2, "output_contains": "x"},
            "max_turns: the run took 3 turns, more than 2",
            id="turns-before-the-answer",
        ),
    ],
)
def test_the_first_failing_expectation_is_reported(fields: dict[str, Any], why: str) -> None:
    run = result(
        "Sunny.",
        ToolCall(agent="a", name="get_weather", arguments='{"city": "Tokyo"}', call_id="c1"),
        Handoff(agent="a", to_agent="b"),
        turns=3,
    )
    reason = first_failure(expect(**fields), run)
    assert reason is not None
    assert reason.startswith(why)
