"""Timings in trace records: every model call and tool call has its start time and a duration
that covers what it waited for (the mock's latency, the tool's own work), streamed or not,
through handoffs and in nested runs; `run_end` has the run's."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import BackendError, Runtime
from agent_runtime.testing import Latency, MockVLLM, Reply, call, fault

MODEL_LATENCY_S = 0.05
TOOL_S = 0.04


def slow_lookup(city: str) -> str:
    """Look a city up, slowly (a sync tool).

    Args:
        city: The city.
    """
    time.sleep(TOOL_S)
    return f"{city}: sunny"


async def slow_forecast(city: str) -> str:
    """Tomorrow's weather, slowly (an async tool).

    Args:
        city: The city.
    """
    await asyncio.sleep(TOOL_S)
    return f"{city}: rain"


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM(latency=Latency(first_token_s=MODEL_LATENCY_S)) as server:
        yield server


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends: {mock: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 0}}\n"
        "tools:\n"
        "  slow_lookup: {function: 'tests.test_timings:slow_lookup'}\n"
        "  slow_forecast: {function: 'tests.test_timings:slow_forecast'}\n"
        "agents:\n"
        "  triage: {handoffs: [weather], agent_tools: [poet]}\n"
        "  weather: {tools: [slow_lookup, slow_forecast]}\n"
        "  poet: {instructions: Write haikus.}\n"
        f"sessions: {{path: {tmp_path}/sessions.sqlite3}}\n"
        "tracing: {path: trace.jsonl}\n"
    )
    return config


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def weather_script() -> list[Reply]:
    return [
        Reply(reasoning="Hand over.", calls=[call("transfer_to_weather")]),
        Reply(
            reasoning="Look both up.",
            calls=[call("slow_lookup", city="Tokyo"), call("slow_forecast", city="Tokyo")],
        ),
        Reply(final="Sunny, then rain."),
    ]


async def run(runtime: Runtime, agent: str, text: str, *, streamed: bool) -> None:
    if streamed:
        async for _ in runtime.stream(agent, text):
            pass
    else:
        await runtime.run(agent, text)


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "stream"])
async def test_model_and_tool_calls_have_their_start_and_duration(
    mock: MockVLLM, tmp_path: Path, streamed: bool
) -> None:
    mock.add(*weather_script())
    before = time.time()
    async with Runtime.from_yaml(write_config(tmp_path), environ={"MOCK_URL": mock.url}) as rt:
        await run(rt, "triage", "Weather in Tokyo?", streamed=streamed)
    after = time.time()
    records = read(tmp_path / "trace.jsonl")
    assert [(r["type"], r["agent"]) for r in records if r["type"] != "tool_call"] == [
        ("run_start", "triage"),
        ("model_call", "triage"),
        ("handoff", "triage"),
        ("model_call", "weather"),
        ("model_call", "weather"),
        ("run_end", "weather"),
    ]
    timed = [r for r in records if r["type"] in ("model_call", "tool_call")]
    assert sorted(r.get("name", r["type"]) for r in timed) == [
        "model_call",
        "model_call",
        "model_call",
        "slow_forecast",
        "slow_lookup",
    ]
    for record in timed:
        least = MODEL_LATENCY_S if record["type"] == "model_call" else TOOL_S
        assert record["duration_ms"] >= least * 1000, record
        assert before <= record["started_at"] <= record["time"] <= after, record
    run_start, run_end = records[0], records[-1]
    assert run_end["started_at"] == pytest.approx(run_start["time"], abs=0.05)
    assert run_end["duration_ms"] >= 3 * MODEL_LATENCY_S * 1000
    assert run_end["turns"] == 3
    assert run_end["usage"]["requests"] == 3
    # Calls follow each other: each model call starts after the one before it ended.
    calls = [r for r in timed if r["type"] == "model_call"]
    for earlier, later in itertools.pairwise(calls):
        assert later["started_at"] >= earlier["started_at"] + earlier["duration_ms"] / 1000 - 0.01


async def test_a_nested_agents_model_call_is_timed(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(
        Reply(calls=[call("poet", input="a haiku")]),
        Reply(final="Old pond."),
        Reply(final="Here: Old pond."),
    )
    async with Runtime.from_yaml(write_config(tmp_path), environ={"MOCK_URL": mock.url}) as rt:
        await rt.run("triage", "A poem.")
    records = read(tmp_path / "trace.jsonl")
    nested = [r for r in records if r["type"] == "model_call" and r["agent"] == "poet"]
    (tool,) = [r for r in records if r["type"] == "tool_call"]
    assert len(nested) == 1
    assert nested[0]["duration_ms"] >= MODEL_LATENCY_S * 1000
    # The agent used as a tool took at least as long as its own model call.
    assert tool["duration_ms"] >= nested[0]["duration_ms"]
    assert tool["started_at"] <= nested[0]["started_at"]


async def test_a_failed_run_ends_with_its_time_turns_and_usage(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(
        Reply(calls=[call("slow_lookup", city="Oslo")]),
        fault(status=503, message="engine restarting"),
    )
    async with Runtime.from_yaml(write_config(tmp_path), environ={"MOCK_URL": mock.url}) as rt:
        with pytest.raises(BackendError):
            await rt.run("weather", "Weather in Oslo?")
    records = read(tmp_path / "trace.jsonl")
    model_call = next(r for r in records if r["type"] == "model_call")
    run_end = records[-1]
    assert (run_end["type"], run_end["outcome"]) == ("run_end", "failed")
    assert run_end["turns"] == 1
    assert run_end["usage"] == {
        "requests": 1,
        "input_tokens": model_call["usage"]["input_tokens"],
        "output_tokens": model_call["usage"]["output_tokens"],
        "reasoning_tokens": model_call["usage"]["reasoning_tokens"],
    }
    assert run_end["duration_ms"] >= (MODEL_LATENCY_S + TOOL_S) * 1000
