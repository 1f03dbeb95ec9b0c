"""Named fault cases: what the runtime does when the model server or the model misbehaves.

Each case drives the mock vLLM server's fault injection through a real `Runtime` and asserts the
exact outcome: the answer after N attempts, or which error. docs/faults.md lists them (a test
below keeps the list and the table in step).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import BackendError, Retrying, RunFinished, RunLimitError, Runtime
from agent_runtime.errors import AgentRuntimeError, BackendUnavailableError
from agent_runtime.testing import Fault, MockVLLM, Reply, call, fault
from tests import helpers

ROOT = helpers.ROOT
FAULTS = helpers.PROJECT / "faults.yaml"
DOC = ROOT / "docs" / "faults.md"
ANSWER = "All done."


def answer() -> Reply:
    return Reply(reasoning="Answer.", final=ANSWER)


def calls_tool(**arguments: Any) -> Reply:
    return Reply(
        reasoning="Use the tool.", calls=[call("get_weather", **arguments or {"city": "Oslo"})]
    )


@dataclass(frozen=True, kw_only=True)
class Case:
    """One fault case: the script the mock plays, and what must come of it."""

    name: str
    what: str
    outcome: str
    script: list[Reply]
    agent: str = "worker"
    stream: bool = False
    env: dict[str, str] = field(default_factory=dict)
    answer: str | None = ANSWER
    error: type[AgentRuntimeError] | None = None
    message: str | None = None  # a regular expression the whole error message must match
    requests: int | None = None
    retries: int = 0  # retries the trace must show
    check: Callable[[MockVLLM, Any], None] | None = None


def _retry_events(events: list[Any]) -> list[str]:
    return [e.cause for e in events if isinstance(e, Retrying)]


def _tool_ran_once(mock: MockVLLM, events: list[Any]) -> None:
    assert sys.modules["fixture_tools.basic"].calls == {"retry-safe": 1}


def _disconnected_first(mock: MockVLLM, events: list[Any]) -> None:
    mock.wait_until(lambda m: m.model_requests[0].disconnected)


def _outputs(request: int, *expected: str) -> Callable[[MockVLLM, Any], None]:
    def check(mock: MockVLLM, events: list[Any]) -> None:
        seen = [o.output for o in mock.model_requests[request].function_outputs]
        assert seen[-len(expected) :] == list(expected)

    return check


URL = r"http://127\.0\.0\.1:\d+/v1"
CASES = [
    Case(
        name="503-then-answer",
        what="HTTP 503 (engine overloaded or restarting), then a normal answer",
        outcome="answered after 1 retry",
        script=[fault(status=503), answer()],
        retries=1,
        requests=2,
    ),
    Case(
        name="429-then-answer",
        what="HTTP 429 (too many requests), then a normal answer",
        outcome="answered after 1 retry",
        script=[fault(status=429), answer()],
        retries=1,
        requests=2,
    ),
    Case(
        name="502-504-then-answer",
        what="HTTP 502, then HTTP 504, then a normal answer",
        outcome="answered after 2 retries",
        script=[fault(status=502), fault(status=504), answer()],
        retries=2,
        requests=3,
    ),
    Case(
        name="500-three-times",
        what="HTTP 500 on every attempt (max_retries: 2)",
        outcome="`BackendError` naming the URL and the cause, after 3 attempts (CLI exit 3)",
        script=[fault(status=500, message="engine died")] * 3,
        error=BackendError,
        message=rf"the model server of backend `retrying` at {URL} failed: HTTP 500: engine "
        r"died \(gave up after 3 attempts\)",
        retries=2,
        requests=3,
    ),
    Case(
        name="connection-dropped-then-answer",
        what="the connection is closed without an answer, then a normal answer",
        outcome="answered after 1 retry",
        script=[fault(drop_connection=True), answer()],
        retries=1,
        requests=2,
    ),
    Case(
        name="body-cut-then-answer",
        what="a non-streamed answer is cut after 10 bytes, then a normal answer",
        outcome="answered after 1 retry",
        script=[Reply(final="x", fault=Fault(cut_stream=10)), answer()],
        retries=1,
        requests=2,
    ),
    Case(
        name="stream-cut-then-answer",
        what="a stream ends after 5 events, without `response.completed` (vLLM's harmony "
        "errors), then a normal answer",
        outcome="answered after 1 retry; the stream reports `Retrying` so the partial text "
        "can be dropped",
        script=[
            Reply(reasoning="thinking " * 5, final="lost", fault=Fault(cut_stream=5)),
            answer(),
        ],
        stream=True,
        retries=1,
        requests=2,
        check=lambda mock, events: _assert_retry_causes(
            events,
            [
                "the answer broke off (peer closed connection without sending complete message "
                "body (incomplete chunked read))"
            ],
        ),
    ),
    Case(
        name="empty-incomplete-then-answer",
        what="`status: incomplete` with empty output (reasoning used up the budget), then a "
        "normal answer",
        outcome="answered after 1 retry",
        script=[fault(empty_incomplete=True), answer()],
        retries=1,
        requests=2,
    ),
    Case(
        name="empty-incomplete-streamed-then-answer",
        what="the same, streamed: `response.completed` carries an incomplete, empty response",
        outcome="answered after 1 retry",
        script=[fault(empty_incomplete=True), answer()],
        stream=True,
        retries=1,
        requests=2,
    ),
    Case(
        name="cut-while-reasoning-streamed-then-answer",
        what="vLLM 0.33 ends a stream cut at the output token limit while the model reasons with "
        "`response.incomplete`, then a normal answer",
        outcome="answered after 1 retry",
        script=[Reply(reasoning="thinking " * 20, final="lost", cut_at=8), answer()],
        stream=True,
        retries=1,
        requests=2,
    ),
    Case(
        name="cut-mid-answer",
        what="the answer is cut at the output token limit half-way through its text "
        "(`status: incomplete`)",
        outcome="`RunLimitError` naming `max_output_tokens` and how to raise it (CLI exit 4); "
        "not retried",
        script=[Reply(reasoning="Short.", final="All do", incomplete=True)],
        error=RunLimitError,
        message=r"the model's answer was cut at the output token limit \(max_output_tokens=\d+\) "
        r"in the middle of its answer: raise `model_settings\.max_tokens` of the agent .*",
        requests=1,
    ),
    Case(
        name="chat-cut-mid-tool-call",
        what="a Chat Completions answer is cut (`finish_reason: length`) in the middle of a tool "
        "call",
        outcome="`RunLimitError` naming `max_output_tokens` (CLI exit 4); the tool does not run",
        script=[Reply(reasoning="Use it.", calls=[call("count", key="cut")], incomplete=True)],
        agent="chat-worker",
        error=RunLimitError,
        message=r"the model's answer was cut at the output token limit \(max_output_tokens\) in "
        r"the middle of a tool call: .*",
        requests=1,
    ),
    Case(
        name="chat-empty-answer-then-answer",
        what="Chat Completions answers with no content, reasoning or tool calls (vllm#41902)",
        outcome="answered after 1 retry",
        script=[fault(empty_incomplete=True), answer()],
        agent="chat-worker",
        retries=1,
        requests=2,
    ),
    Case(
        name="reasoning-only-then-answer",
        what="an answer with reasoning but no message and no tool call (the SDK would end the "
        "run with an empty answer), then a normal answer",
        outcome="answered after 1 retry",
        script=[Reply(reasoning="Thinking, and nothing else."), answer()],
        retries=1,
        requests=2,
    ),
    Case(
        name="chat-reasoning-only-streamed-then-answer",
        what="the same over Chat Completions, streamed",
        outcome="answered after 1 retry",
        script=[Reply(reasoning="Thinking, and nothing else."), answer()],
        agent="chat-worker",
        stream=True,
        retries=1,
        requests=2,
    ),
    Case(
        name="harmony-error-then-answer",
        what="model output harmony cannot parse (HTTP 500 from vLLM), then a normal answer",
        outcome="answered after 1 retry",
        script=[Reply(harmony="<|channel|>analysis<|message|>x<|end|>garbage"), answer()],
        retries=1,
        requests=2,
    ),
    Case(
        name="chat-stream-error-then-answer",
        what="a Chat Completions stream reports a harmony error in-band, then a normal answer",
        outcome="answered after 1 retry",
        script=[Reply(harmony="<|channel|>analysis<|message|>x<|end|>garbage"), answer()],
        agent="chat-worker",
        stream=True,
        retries=1,
        requests=2,
    ),
    Case(
        name="slow-answer-times-out-then-answer",
        what="the first answer takes longer than `timeout_s` (0.5 s), the second is prompt",
        outcome="answered after 1 retry; the server saw the first request abandoned",
        script=[Reply(final="late", fault=Fault(delay_s=30)), answer()],
        env={"TIMEOUT_S": "0.5"},
        retries=1,
        requests=2,
        check=_disconnected_first,
    ),
    *(
        Case(
            name=f"{status}-not-retried",
            what=f"HTTP {status} ({why})",
            outcome="`BackendError` at once, no retry",
            script=[fault(status=status, message=why), answer()],
            error=BackendError,
            message=rf"the model server of backend `retrying` at {URL} answered {status}: {why}",
            requests=1,
        )
        for status, why in (
            (400, "bad request"),
            (401, "unauthorized"),
            (404, "no such model"),
            (501, "tool_choice not supported"),
        )
    ),
    Case(
        name="invalid-json-arguments-repaired",
        what="the model writes arguments that are not JSON, then corrects them",
        outcome="the parse error goes back to the model, which calls again; answered",
        script=[
            Reply(calls=[call("get_weather", city="Oslo")], fault=Fault(invalid_arguments=True)),
            calls_tool(),
            answer(),
        ],
        requests=3,
        check=lambda mock, events: _assert_output_startswith(
            mock, 1, "Error: the arguments for `get_weather` are not valid JSON"
        ),
    ),
    Case(
        name="unknown-tool-repaired",
        what="the model calls a tool that does not exist, then the right one",
        outcome="the list of tools goes back to the model; answered",
        script=[Reply(calls=[call("get_wether", city="Oslo")]), calls_tool(), answer()],
        requests=3,
        check=lambda mock, events: _assert_output_startswith(
            mock, 1, "Error: there is no tool named `get_wether`. Available tools:"
        ),
    ),
    Case(
        name="invalid-calls-limit",
        what="five invalid calls in a row (max_invalid_calls: 5)",
        outcome="`RunLimitError` (CLI exit 4)",
        script=[Reply(calls=[call("add", a="x", b=1)])] * 5,
        error=RunLimitError,
        message=r"the model made 5 invalid tool calls in a row; the last one, to `add`: invalid "
        r"arguments for `add`: a: .*",
        requests=5,
    ),
    Case(
        name="loop-guard-warning-heeded",
        what="the same call three times in a row, then an answer",
        outcome="the third call is not run; the model is told it repeats itself; answered",
        script=[calls_tool(), calls_tool(), calls_tool(), answer()],
        requests=4,
        check=lambda mock, events: _assert_output_startswith(
            mock, 3, "Error: you called `get_weather` with these same arguments 3 times in a row"
        ),
    ),
    Case(
        name="loop-guard-stops",
        what="the same call six times in a row (max_repeated_calls: 3)",
        outcome="`RunLimitError` (CLI exit 4)",
        script=[calls_tool()] * 6,
        error=RunLimitError,
        message=r"loop guard: the model called `get_weather` with the same arguments 6 times in "
        r"a row .*; it was told to stop after 3\. .*",
        requests=6,
    ),
    Case(
        name="retry-does-not-rerun-tools",
        what="a tool call, then HTTP 503 on the next model call, then an answer",
        outcome="the tool ran once; the model call was retried; answered",
        script=[
            Reply(calls=[call("count", key="retry-safe")]),
            fault(status=503),
            answer(),
        ],
        retries=1,
        requests=3,
        check=_tool_ran_once,
    ),
    Case(
        name="sync-tool-timeout",
        what="a blocking tool runs past its `timeout_s` (0.2 s)",
        outcome="the time-out goes back to the model; answered",
        script=[Reply(calls=[call("slow_sync", seconds=5)]), answer()],
        requests=2,
        check=_outputs(
            1,
            "Error: `slow_sync` did not finish within 0.2 s and was abandoned (it keeps running "
            "in its thread). Try again later or with simpler arguments, or answer without it.",
        ),
    ),
    Case(
        name="async-tool-timeout",
        what="an async tool runs past its `timeout_s` (0.2 s)",
        outcome="the tool is cancelled; the time-out goes back to the model; answered",
        script=[Reply(calls=[call("slow_async", seconds=5)]), answer()],
        requests=2,
        check=_outputs(
            1,
            "Error: `slow_async` did not finish within 0.2 s and was stopped. Try again later "
            "or with simpler arguments, or answer without it.",
        ),
    ),
    Case(
        name="run-budget",
        what="the model takes 30 s; the agent's `run_timeout_s` is 1 s",
        outcome="`RunLimitError` after 1 s (CLI exit 4); the server saw the request abandoned",
        script=[Reply(final="late", fault=Fault(delay_s=30))],
        agent="budgeted",
        error=RunLimitError,
        message=r"the run of agent `budgeted` took longer than its time budget "
        r"\(run_timeout_s=1 s\) and was stopped\.",
        requests=1,
        check=_disconnected_first,
    ),
    Case(
        name="unreachable-server",
        what="nothing listens at the backend's URL",
        outcome="`BackendUnavailableError` after 3 attempts (CLI exit 3)",
        script=[],
        error=BackendUnavailableError,
        env={"MOCK_URL": "http://127.0.0.1:1/v1"},
        message=r"cannot reach the model server of backend `retrying` at http://127\.0\.0\.1:1/v1 "
        r"\(connection refused; gave up after 3 attempts\)\. Start one there .*",
        retries=2,
        requests=0,
    ),
]


def _assert_retry_causes(events: list[Any], causes: list[str]) -> None:
    assert _retry_events(events) == causes


def _assert_output_startswith(mock: MockVLLM, request: int, prefix: str) -> None:
    outputs = [o.output for o in mock.model_requests[request].function_outputs]
    assert outputs[-1].startswith(prefix), outputs[-1]


@pytest.fixture(autouse=True)
def _reset_counts() -> None:
    basic = sys.modules.get("fixture_tools.basic")
    if basic is not None:
        basic.calls.clear()


async def run_case(case: Case, mock: MockVLLM, tmp_path: Path) -> tuple[Any, list[Any]]:
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path), **case.env}
    async with Runtime.from_yaml(FAULTS, environ=environ) as runtime:
        if not case.stream:
            return await runtime.run(case.agent, "go"), []
        events = [event async for event in runtime.stream(case.agent, "go")]
        finished = events[-1]
        assert isinstance(finished, RunFinished)
        return finished.result, events


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
async def test_fault(case: Case, tmp_path: Path) -> None:
    async with MockVLLM(case.script) as mock:
        if case.error is None:
            result, events = await run_case(case, mock, tmp_path)
            assert result.final_output == case.answer
        else:
            with pytest.raises(case.error) as raised:
                await run_case(case, mock, tmp_path)
            assert case.message is not None
            assert re.fullmatch(case.message, str(raised.value)), str(raised.value)
            events = []
        if case.requests is not None:
            assert len(mock.model_requests) == case.requests
        if case.check is not None:
            await asyncio.to_thread(case.check, mock, events)
        assert mock.internal_errors == []  # every fault is the mock's doing, not a mock bug
    trace = tmp_path / "traces.jsonl"
    records = (
        [json.loads(line) for line in trace.read_text().splitlines()] if trace.exists() else []
    )
    assert len([r for r in records if r["type"] == "retry"]) == case.retries


def test_cases_are_documented() -> None:
    table = DOC.read_text()
    rows = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert rows == [case.name for case in CASES]
    for case in CASES:
        assert f"| `{case.name}` | {case.what} | {case.outcome} |" in table
    assert len(CASES) >= 15
