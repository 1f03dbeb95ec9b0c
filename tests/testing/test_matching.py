"""`match_tool_calls`: expected calls in order, arguments as a nested subset, and the reason for
the first mismatch."""

from __future__ import annotations

from typing import Any

import pytest

from agent_runtime.results import ToolCall
from agent_runtime.testing import Call, MockVLLM, Reply, call, fault, match_tool_calls

MADE = [
    ("get_weather", {"city": "Tokyo", "units": {"temp": "C", "wind": "kmh"}, "days": [1, 2]}),
    ("lookup", "not json"),
]


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param([{"name": "get_weather"}, {"name": "lookup"}], id="names"),
        pytest.param(
            [{"name": "get_weather", "arguments": {"units": {"temp": "C"}}}, {"name": "lookup"}],
            id="nested-subset",
        ),
        pytest.param(
            [
                {"name": "get_weather", "arguments": '{"days": [1, 2]}'},
                {"name": "lookup", "arguments": "not json"},
            ],
            id="text",
        ),
    ],
)
def test_matches(expected: list[dict[str, Any]]) -> None:
    assert match_tool_calls(MADE, expected) is None


@pytest.mark.parametrize(
    ("expected", "reason"),
    [
        pytest.param(
            [{"name": "lookup"}],
            'tool call 1 of 2 is `get_weather` with {"city": "Tokyo", "days": [1, 2], "units": '
            '{"temp": "C", "wind": "kmh"}}; expected `lookup`.',
            id="name",
        ),
        pytest.param(
            [{"name": "get_weather", "arguments": {"units": {"temp": "F"}}}, {"name": "lookup"}],
            'tool call 1 of 2, `get_weather`: arguments.units.temp is "C", expected "F". It was '
            '`get_weather` with {"city": "Tokyo", "days": [1, 2], "units": {"temp": "C", '
            '"wind": "kmh"}}; expected `get_weather` with {"units": {"temp": "F"}}.',
            id="nested-value",
        ),
        pytest.param(
            [{"name": "get_weather", "arguments": {"country": "JP"}}, {"name": "lookup"}],
            "tool call 1 of 2, `get_weather`: arguments.country is missing. It was "
            '`get_weather` with {"city": "Tokyo", "days": [1, 2], "units": {"temp": "C", '
            '"wind": "kmh"}}; expected `get_weather` with {"country": "JP"}.',
            id="missing-key",
        ),
        pytest.param(
            [{"name": "get_weather", "arguments": {"days": [1]}}, {"name": "lookup"}],
            "tool call 1 of 2, `get_weather`: arguments.days is [1, 2], expected [1]. It was "
            '`get_weather` with {"city": "Tokyo", "days": [1, 2], "units": {"temp": "C", '
            '"wind": "kmh"}}; expected `get_weather` with {"days": [1]}.',
            id="list",
        ),
        pytest.param(
            [{"name": "get_weather"}, {"name": "lookup", "arguments": {"q": 1}}],
            'tool call 2 of 2, `lookup`: arguments is "not json", not an object. It was '
            '`lookup` with "not json"; expected `lookup` with {"q": 1}.',
            id="not-an-object",
        ),
        pytest.param(
            [{"name": "get_weather"}],
            "expected 1 tool call, the run made 2: the first one not expected is call 2, "
            '`lookup` with "not json".',
            id="extra",
        ),
        pytest.param(
            [{"name": "get_weather"}, {"name": "lookup"}, {"name": "book", "arguments": {}}],
            "expected 3 tool calls, the run made 2: missing call 3, `book` with {}.",
            id="missing",
        ),
    ],
)
def test_mismatches(expected: list[dict[str, Any]], reason: str) -> None:
    assert match_tool_calls(MADE, expected) == reason


def test_booleans_are_not_numbers() -> None:
    reason = match_tool_calls([("f", {"on": 1})], [{"name": "f", "arguments": {"on": True}}])
    assert reason is not None
    assert reason.startswith("tool call 1 of 1, `f`: arguments.on is 1, expected true.")
    assert match_tool_calls([("f", {"n": 1.0})], [{"name": "f", "arguments": {"n": 1}}]) is None


def test_tool_call_items_and_calls() -> None:
    item = ToolCall(agent="a", name="f", arguments='{"x": 1}', call_id="c1")
    assert match_tool_calls([item], [{"name": "f", "arguments": {"x": 1}}]) is None
    assert match_tool_calls([call("f", x=1)], [{"name": "f", "arguments": {"x": 1}}]) is None
    assert match_tool_calls([], []) is None


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        pytest.param(
            ["get_weather"],
            "expected tool call 1 must be a mapping with a `name` (and optionally `arguments`), "
            "e.g. {'name': 'get_weather', 'arguments': {'city': 'Tokyo'}}; got 'get_weather'",
            id="not-a-mapping",
        ),
        pytest.param(
            [{"name": "f", "args": {}}],
            "expected tool call 1 has unknown key(s) 'args': only `name` and `arguments` are "
            "compared",
            id="unknown-key",
        ),
    ],
)
def test_bad_expectations(expected: list[Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        match_tool_calls([], expected)
    assert str(error.value) == message


def test_bad_actual_calls() -> None:
    with pytest.raises(ValueError, match="must be a \\(name, arguments\\) pair"):
        match_tool_calls([42], [])


def test_the_mock_records_the_calls_it_answered_with() -> None:
    script = [
        Reply(reasoning="Go.", calls=(call("f", x=1), call("g", '{"broken"'))),
        fault(status=503),
        Reply(harmony="<|channel|>final<|message|>Hi.<|return|>"),
        Reply(final="Done."),
    ]
    with MockVLLM(script) as mock:
        import httpx2

        for _ in script:
            httpx2.post(f"{mock.url}/responses", json={"input": "x"})
    assert mock.tool_calls == [Call("f", {"x": 1}), Call("g", '{"broken"')]
    mock.assert_tool_calls([{"name": "f", "arguments": {"x": 1}}, {"name": "g"}])
    with pytest.raises(AssertionError) as error:
        mock.assert_tool_calls([{"name": "f", "arguments": {"x": 2}}, {"name": "g"}])
    assert str(error.value) == (
        'tool call 1 of 2, `f`: arguments.x is 1, expected 2. It was `f` with {"x": 1}; '
        'expected `f` with {"x": 2}.'
    )
