"""Local tracing: the JSON-lines writer, a run's trace, and the hooks that write its records."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Model, ModelResponse
from agents.tool_context import ToolContext
from agents.usage import Usage
from openai.types.responses import ResponseReasoningItem
from openai.types.responses.response_reasoning_item import Content
from openai.types.responses.response_usage import OutputTokensDetails

from agent_runtime import AgentRuntimeError, BackendError, Runtime
from agent_runtime.redact import Redactor
from agent_runtime.testing import MockVLLM, Reply, call, fault
from agent_runtime.tracing import RunTrace, TraceWriter, current_trace, hooks, new_trace_id

WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return json.dumps({"city": city, "condition": "sunny", "temperature_c": 21})


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_trace_ids_are_fresh() -> None:
    ids = {new_trace_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"trace_[0-9a-f]{32}", trace_id) for trace_id in ids)


# -- the writer -------------------------------------------------------------------------------


def test_writer_without_a_path_writes_nothing(tmp_path: Path) -> None:
    writer = TraceWriter(None)
    writer.write({"type": "run_start"})
    writer.close()
    assert writer.path is None
    assert list(tmp_path.iterdir()) == []


def test_writer_appends_json_lines_in_a_folder_it_creates(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "trace.jsonl"
    path_value = tmp_path / "x"
    writer = TraceWriter(path)
    writer.write({"type": "a", "text": "21 °C", "path": path_value})
    writer.write({"type": "b"})
    writer.close()
    # The text is UTF-8 as it is (not \u escapes); values JSON cannot hold are written as text.
    assert path.read_text(encoding="utf-8") == (
        f'{{"type": "a", "text": "21 °C", "path": "{path_value}"}}\n{{"type": "b"}}\n'
    )
    again = TraceWriter(path)
    again.write({"type": "c"})
    again.close()
    again.write({"type": "d"})  # opened again after close, still appending
    again.close()
    assert [record["type"] for record in read(path)] == ["a", "b", "c", "d"]


def test_writes_from_many_threads_stay_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    writer = TraceWriter(path)
    start = threading.Barrier(8)

    def write(thread: int) -> None:
        start.wait(timeout=30)
        for index in range(50):
            writer.write({"thread": thread, "index": index, "text": "x" * 500})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    writer.close()
    records = read(path)
    assert sorted((r["thread"], r["index"]) for r in records) == [
        (thread, index) for thread in range(8) for index in range(50)
    ]


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        pytest.param("file/inside/trace.jsonl", "Not a directory", id="under-a-file"),
        pytest.param("folder", "Is a directory", id="a-folder"),
    ],
)
def test_an_unwritable_trace_file_says_which_setting_to_fix(
    tmp_path: Path, where: str, reason: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    writer = TraceWriter(tmp_path / where)
    with pytest.raises(AgentRuntimeError) as error:
        writer.write({"type": "run_start"})
    assert str(error.value) == (
        f"cannot open the trace file {tmp_path / where}: {reason}. Set `tracing.path` in "
        "agents.yaml to a file in a folder you can write to, or turn tracing off "
        "(`tracing: {enabled: false}`)."
    )


# -- a run's trace ----------------------------------------------------------------------------


def test_records_carry_the_trace_id_type_and_time(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl")
    trace = RunTrace(writer)
    trace.record("retry", attempt=1, cause="HTTP 503")
    writer.close()
    [record] = read(tmp_path / "t.jsonl")
    assert record.pop("time") > 0
    assert record == {
        "trace_id": trace.trace_id,
        "type": "retry",
        "attempt": 1,
        "cause": "HTTP 503",
    }


@pytest.mark.parametrize("include", [True, False])
def test_sensitive_values_are_left_out_when_asked(include: bool) -> None:
    trace = RunTrace(TraceWriter(None, include_sensitive_data=include))
    assert trace.sensitive({"prompt": "hi"}) == ({"prompt": "hi"} if include else None)


# -- the hooks --------------------------------------------------------------------------------


class NamedModel(Model):
    """A model object with a `model` name (as the SDK's OpenAI models have)."""

    model = "openai/gpt-oss-120b"

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def response(response_id: str | None = "resp_1") -> ModelResponse:
    reasoning = ResponseReasoningItem(
        id="rs_1",
        type="reasoning",
        summary=[],
        content=[Content(text="Think.", type="reasoning_text")],
    )
    usage = Usage(
        requests=1,
        input_tokens=11,
        output_tokens=7,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=3),
    )
    return ModelResponse(output=[reasoning], usage=usage, response_id=response_id)


def tool_context(call_id: str) -> ToolContext[None]:
    return ToolContext(
        context=None, tool_name="get_weather", tool_call_id=call_id, tool_arguments='{"c": 1}'
    )


@pytest.fixture
def trace(tmp_path: Path) -> Iterator[RunTrace]:
    writer = TraceWriter(tmp_path / "t.jsonl", include_sensitive_data=True)
    trace = RunTrace(writer, trace_id="trace_test")
    token = current_trace.set(trace)
    try:
        yield trace
    finally:
        current_trace.reset(token)
        writer.close()


def records_of(trace: RunTrace) -> list[dict[str, Any]]:
    trace.writer.close()
    assert trace.writer.path is not None
    records = read(trace.writer.path)
    for record in records:
        assert record.pop("trace_id") == "trace_test"
        assert record.pop("time") > 0
    return records


async def test_hooks_record_model_and_tool_calls_and_handoffs(trace: RunTrace) -> None:
    run_hooks = hooks()
    tool = Agent(name="helper")  # any object with a name will do as the tool
    first, second = Agent(name="triage", model="openai/gpt-oss-20b"), Agent(name="worker")
    second.model = NamedModel()
    await run_hooks.on_agent_start(None, first)
    assert trace.agent == "triage"
    await run_hooks.on_llm_start(None, first, None, [])  # type: ignore[arg-type]
    await run_hooks.on_llm_end(None, first, response())  # type: ignore[arg-type]
    await run_hooks.on_handoff(None, first, second)  # type: ignore[arg-type]
    await run_hooks.on_agent_start(None, second)
    await run_hooks.on_tool_start(tool_context("call_1"), second, tool)  # type: ignore[arg-type]
    await run_hooks.on_tool_end(tool_context("call_1"), second, tool, 21)  # type: ignore[arg-type]
    await run_hooks.on_llm_end(None, second, response(None))  # type: ignore[arg-type]
    assert trace.agent == "worker"

    model_call, handoff, tool_call, unstarted = records_of(trace)
    assert model_call.pop("duration_ms") >= 0
    assert model_call.pop("started_at") > 0
    assert model_call == {
        "type": "model_call",
        "agent": "triage",
        "model": "openai/gpt-oss-20b",
        "response_id": "resp_1",
        "usage": {"input_tokens": 11, "output_tokens": 7, "reasoning_tokens": 3},
        "output": [
            {
                "id": "rs_1",
                "summary": [],
                "type": "reasoning",
                "content": [{"text": "Think.", "type": "reasoning_text"}],
            }
        ],
    }
    assert handoff == {"type": "handoff", "agent": "triage", "to_agent": "worker"}
    assert tool_call.pop("duration_ms") >= 0
    assert tool_call.pop("started_at") > 0
    assert tool_call == {
        "type": "tool_call",
        "agent": "worker",
        "name": "helper",
        "call_id": "call_1",
        "arguments": '{"c": 1}',
        "output": "21",
        "failed": False,
    }
    # A model call whose start was not seen has no times; a model object gives its name.
    assert (unstarted["started_at"], unstarted["duration_ms"]) == (None, None)
    assert unstarted["model"] == "openai/gpt-oss-120b"
    assert unstarted["response_id"] is None


async def test_hooks_leave_out_outputs_and_arguments_when_asked(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl", include_sensitive_data=False)
    token = current_trace.set(RunTrace(writer))
    try:
        run_hooks, agent = hooks(), Agent(name="worker")
        await run_hooks.on_llm_end(None, agent, response())  # type: ignore[arg-type]
        await run_hooks.on_tool_end(tool_context("call_1"), agent, agent, "secret")  # type: ignore[arg-type]
    finally:
        current_trace.reset(token)
        writer.close()
    model_call, tool_call = read(tmp_path / "t.jsonl")
    assert model_call["output"] is None
    assert (tool_call["arguments"], tool_call["output"]) == (None, None)
    assert (tool_call["started_at"], tool_call["duration_ms"]) == (None, None)  # start not seen
    assert "Think." not in (tmp_path / "t.jsonl").read_text()


async def test_hooks_outside_a_run_write_nothing(tmp_path: Path) -> None:
    RunTrace(TraceWriter(tmp_path / "t.jsonl"))  # a trace that is not the current one
    run_hooks, agent = hooks(), Agent(name="worker")
    await run_hooks.on_agent_start(None, agent)
    await run_hooks.on_llm_start(None, agent, None, [])  # type: ignore[arg-type]
    await run_hooks.on_llm_end(None, agent, response())  # type: ignore[arg-type]
    await run_hooks.on_tool_start(tool_context("c"), agent, agent)  # type: ignore[arg-type]
    await run_hooks.on_tool_end(tool_context("c"), agent, agent, "x")  # type: ignore[arg-type]
    await run_hooks.on_handoff(None, agent, agent)  # type: ignore[arg-type]
    assert current_trace.get() is None
    assert not (tmp_path / "t.jsonl").exists()


# -- the trace of a run -----------------------------------------------------------------------


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


def write_config(tmp_path: Path, *, sensitive: bool) -> Path:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends: {mock: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 0}}\n"
        "tools: {get_weather: {function: 'tests.test_tracing:get_weather'}}\n"
        "agents:\n"
        "  triage: {handoffs: [weather], agent_tools: [poet]}\n"
        "  weather: {tools: [get_weather]}\n"
        "  poet: {instructions: Write haikus.}\n"
        f"sessions: {{path: {tmp_path}/sessions.sqlite3}}\n"
        f"tracing: {{path: trace.jsonl, include_sensitive_data: {str(sensitive).lower()}}}\n"
    )
    return config


def weather_script() -> list[Reply]:
    return [
        Reply(reasoning="Hand over.", calls=[call("transfer_to_weather")]),
        Reply(reasoning="Look it up.", calls=[call("get_weather", city="Tokyo")]),
        Reply(final="Sunny in Tokyo."),
    ]


async def test_a_runs_trace(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, sensitive=True)
    mock.add(*weather_script())
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        result = await runtime.run("triage", "Weather in Tokyo?")
    records = read(tmp_path / "trace.jsonl")
    assert [(r["type"], r["agent"]) for r in records] == [
        ("run_start", "triage"),
        ("model_call", "triage"),
        ("handoff", "triage"),
        ("model_call", "weather"),
        ("tool_call", "weather"),
        ("model_call", "weather"),
        ("run_end", "weather"),
    ]
    assert {r["trace_id"] for r in records} == {result.trace_id}
    run_start, _, handoff, _, tool_call, answer, run_end = records
    assert run_start["input"] == [{"role": "user", "content": "Weather in Tokyo?"}]
    assert run_start["session"] is None
    assert handoff["to_agent"] == "weather"
    assert (tool_call["name"], tool_call["arguments"], tool_call["output"]) == (
        "get_weather",
        '{"city":"Tokyo"}',
        WEATHER,
    )
    assert tool_call["call_id"] == mock.model_requests[1].response["output"][1]["call_id"]
    assert answer["model"] == "openai/gpt-oss-20b"
    assert answer["response_id"] == mock.model_requests[2].response["id"]
    assert answer["output"][-1]["content"][0]["text"] == "Sunny in Tokyo."
    assert answer["usage"]["output_tokens"] > 0
    assert run_end["final_output"] == "Sunny in Tokyo."
    assert run_end["turns"] == 3
    assert run_end["usage"] == {
        "requests": 3,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "reasoning_tokens": result.usage.reasoning_tokens,
        "cached_tokens": 0,
    }


async def test_without_sensitive_data_no_text_is_written(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, sensitive=False)
    mock.add(*weather_script())
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        await runtime.run("triage", "Weather in Tokyo?")
    records = read(tmp_path / "trace.jsonl")
    assert len(records) == 7
    for record in records:
        for key in ("input", "output", "arguments", "final_output"):
            assert record.get(key) is None, (record["type"], key)
    text = (tmp_path / "trace.jsonl").read_text()
    for secret in ("Weather in Tokyo?", "Hand over.", "Tokyo", "sunny", "Sunny"):
        assert secret not in text
    assert records[4]["name"] == "get_weather"  # what happened is still there


async def test_a_nested_agents_calls_go_into_the_same_trace(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, sensitive=True)
    mock.add(
        Reply(calls=[call("poet", input="a haiku")]),
        Reply(final="Old pond."),
        Reply(final="Here: Old pond."),
    )
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        result = await runtime.run("triage", "A poem.")
    records = read(tmp_path / "trace.jsonl")
    assert [(r["type"], r.get("agent"), r.get("name")) for r in records] == [
        ("run_start", "triage", None),
        ("model_call", "triage", None),
        ("model_call", "poet", None),
        ("tool_call", "triage", "poet"),
        ("model_call", "triage", None),
        ("run_end", "triage", None),
    ]
    assert {r["trace_id"] for r in records} == {result.trace_id}
    assert records[3]["output"] == "Old pond."


async def test_a_failed_run_ends_its_trace_with_the_error(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, sensitive=True)
    mock.add(fault(status=503, message="engine restarting"))
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        with pytest.raises(BackendError) as error:
            await runtime.run("weather", "Weather?", session="s1")
    run_start, run_end = read(tmp_path / "trace.jsonl")
    assert run_start["session"] == "s1"
    assert run_end["type"] == "run_end"
    assert run_end["error"] == f"BackendError: {error.value}"


# -- what the writer does with hostile records --------------------------------------------------


def test_secrets_in_records_are_masked(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl", redactor=Redactor(["sk-live-1\r"]))
    writer.write(
        {
            "type": "run_end",
            "error": "BackendError: Illegal header value b'Bearer sk-live-1\\r'",
            "nested": [{"url": "http://bob:pw@host/v1", "headers": {"X-Api-Key": "anything"}}],
            "sk-live-1": 1,
        }
    )
    writer.close()
    [record] = read(tmp_path / "t.jsonl")
    assert record == {
        "type": "run_end",
        "error": "BackendError: Illegal header value b'Bearer ***'",
        "nested": [{"url": "http://***@host/v1", "headers": {"X-Api-Key": "***"}}],
        "***": 1,
    }


def test_text_that_is_not_valid_unicode_is_written_as_json_escapes(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")  # a file name that is not UTF-8, as os.listdir gives it
    writer = TraceWriter(tmp_path / "t.jsonl")
    writer.write({"type": "tool_call", "output": name, "arguments": "\ud800"})
    writer.close()
    assert b'"caf\\udce9.txt"' in (tmp_path / "t.jsonl").read_bytes()
    [record] = read(tmp_path / "t.jsonl")
    assert (record["output"], record["arguments"]) == (name, "\ud800")


def test_long_text_is_cut_with_a_note(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl", max_field_chars=10)
    writer.write({"type": "tool_call", "output": "x" * 25, "output_list": ["y" * 11, "short"]})
    writer.close()
    [record] = read(tmp_path / "t.jsonl")
    assert record["output"] == "xxxxxxxxxx…[truncated 15 chars]"
    assert record["output_list"] == ["yyyyyyyyyy…[truncated 1 chars]", "short"]


def test_a_secret_across_the_cut_is_masked_whole(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl", redactor=Redactor(["sk-0123456789"]))
    writer.max_field_chars = 12
    writer.write({"output": "see: sk-0123456789 and more"})
    writer.close()
    [record] = read(tmp_path / "t.jsonl")
    # Cut at 12 characters of the original text, the secret would show as "sk-0123".
    assert record["output"] == "see: *** and…[truncated 15 chars]"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_values_without_text_do_not_stop_the_record(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "t.jsonl")
    writer.write({"type": "tool_call", "output": Unprintable(), "big": 10**6000})
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    writer.write({"type": "tool_call", "name": "nest", "arguments": deep})
    writer.close()
    first, second = read(tmp_path / "t.jsonl")
    assert first["output"] == (
        "<Unprintable object that cannot be shown as text: RuntimeError: no text>"
    )
    assert first["big"].startswith("<int object that cannot be shown as text: ValueError: ")
    assert second == {
        "type": "tool_call",
        "name": "nest",
        "trace_error": "the record could not be written whole: it is nested too deeply",
    }


def test_a_trace_file_on_a_full_disk_stops_tracing_once_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = TraceWriter("/dev/full")  # every write fails with ENOSPC
    with caplog.at_level(logging.WARNING, logger="agent_runtime.tracing"):
        writer.write({"type": "run_start"})
        writer.write({"type": "run_end"})
        writer.close()
    assert writer.failed
    assert [r.getMessage() for r in caplog.records] == [
        "cannot write the trace file /dev/full: No space left on device; no more records are "
        "written to it by this runtime (the runs go on). Free space there, or set "
        "`tracing.path` in agents.yaml to another file."
    ]


async def test_a_run_goes_on_when_its_trace_cannot_be_written(
    mock: MockVLLM, tmp_path: Path
) -> None:
    config = write_config(tmp_path, sensitive=True)
    mock.add(*weather_script())
    async with Runtime.from_yaml(
        config, environ={"MOCK_URL": mock.url}, trace_path="/dev/full"
    ) as runtime:
        result = await runtime.run("triage", "Weather in Tokyo?")
    assert result.final_output == "Sunny in Tokyo."
