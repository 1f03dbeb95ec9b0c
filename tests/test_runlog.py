"""The run log: runs and their records in SQLite, as the runtime writes them; search, lookup by
id, retention; a locked, full or corrupt file never fails a run."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import AgentRuntimeError, BackendError, Runtime
from agent_runtime.runlog import LoggedRun, RunLog, RunLogError, input_text, is_run_log
from agent_runtime.testing import MockVLLM, Reply, call, fault
from agent_runtime.tracing import RunTrace, TraceWriter

DAY = 86_400.0


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return json.dumps({"city": city, "condition": "sunny"})


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


def write_config(tmp_path: Path, tracing: str = "") -> Path:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends: {mock: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 0}}\n"
        "tools: {get_weather: {function: 'tests.test_runlog:get_weather'}}\n"
        "agents:\n"
        "  weather: {tools: [get_weather]}\n"
        "  poet: {instructions: Write haikus.}\n" + (f"tracing: {{{tracing}}}\n" if tracing else "")
    )
    return config


def weather_script() -> list[Reply]:
    return [
        Reply(reasoning="Look it up.", calls=[call("get_weather", city="Tokyo")]),
        Reply(final="Sunny in Tokyo."),
    ]


def test_the_suffix_decides_the_format() -> None:
    assert is_run_log("runs.sqlite3")
    assert is_run_log("a/b/RUNS.DB")
    assert is_run_log("x.sqlite")
    assert not is_run_log("traces.jsonl")
    assert not is_run_log("/dev/full")
    assert not is_run_log("traces.log")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("hi", "hi", id="text"),
        pytest.param([{"role": "user", "content": "hi"}], "hi", id="message"),
        pytest.param(
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "input_text", "text": "a"}]},
                {"type": "function_call_output", "call_id": "c", "output": "x"},
                {"role": "user", "content": "b"},
            ],
            "a\nb",
            id="parts",
        ),
        pytest.param(None, None, id="not-recorded"),
        pytest.param([{"type": "reasoning"}], None, id="no-user-text"),
    ],
)
def test_input_text(value: Any, text: str | None) -> None:
    assert input_text(value) == text


# -- what a run leaves in it ----------------------------------------------------------------------


async def test_by_default_runs_go_to_the_run_log_without_their_texts(
    mock: MockVLLM, tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    mock.add(*weather_script())
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        result = await runtime.run("weather", "Weather in Tokyo?", session="s1")
    path = tmp_path / ".agent-runtime" / "runs.sqlite3"
    assert path.is_file()
    assert not (tmp_path / ".agent-runtime" / "traces.jsonl").exists()
    log = RunLog(path)
    (run,) = log.runs()
    assert run == LoggedRun(
        trace_id=result.trace_id,
        agent="weather",
        session="s1",
        started_at=run.started_at,
        input=None,
        output=None,
        outcome="completed",
        final_agent="weather",
        turns=2,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        duration_ms=run.duration_ms,
    )
    assert run.duration_ms is not None
    assert run.duration_ms > 0
    records = log.records(result.trace_id)
    assert [r["type"] for r in records] == [
        "run_start",
        "model_call",
        "tool_call",
        "model_call",
        "run_end",
    ]
    assert records[2]["name"] == "get_weather"
    for record in records:
        for key in ("input", "output", "arguments", "final_output"):
            assert record.get(key) is None, (record["type"], key)
    log.close()
    data = b"".join(p.read_bytes() for p in path.parent.glob("runs.sqlite3*"))
    for text in (b"Weather in Tokyo?", b"Look it up.", b"Sunny in Tokyo."):
        assert text not in data


async def test_with_sensitive_data_the_log_keeps_input_and_answer(
    mock: MockVLLM, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "path: runs.db, include_sensitive_data: true")
    mock.add(*weather_script(), Reply(final="Old pond."))
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        first = await runtime.run("weather", "Weather in Tokyo?")
        second = await runtime.run("poet", "A haiku, please")
    log = RunLog(tmp_path / "runs.db")
    newest, oldest = log.runs()
    assert (newest.trace_id, newest.input, newest.output) == (
        second.trace_id,
        "A haiku, please",
        "Old pond.",
    )
    assert (oldest.trace_id, oldest.input, oldest.output) == (
        first.trace_id,
        "Weather in Tokyo?",
        "Sunny in Tokyo.",
    )
    tool_call = log.records(first.trace_id)[2]
    assert (tool_call["arguments"], tool_call["output"]) == (
        '{"city":"Tokyo"}',
        '{"city": "Tokyo", "condition": "sunny"}',
    )
    assert [r.trace_id for r in log.runs(agent="poet")] == [second.trace_id]
    assert [r.trace_id for r in log.runs(search="tokyo")] == [first.trace_id]
    assert [r.trace_id for r in log.runs(search="old POND")] == [second.trace_id]
    assert log.runs(search="100%") == []
    assert [r.trace_id for r in log.runs(limit=1)] == [second.trace_id]
    log.close()


async def test_a_failed_run_is_logged_with_its_error(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    mock.add(fault(status=503, message="engine restarting"))
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        with pytest.raises(BackendError) as error:
            await runtime.run("weather", "Weather?")
    log = RunLog(tmp_path / ".agent-runtime" / "runs.sqlite3")
    (run,) = log.runs()
    assert (run.outcome, run.error, run.turns, run.tokens) == (
        "failed",
        f"BackendError: {error.value}",
        0,
        0,
    )
    log.close()


async def test_a_jsonl_path_keeps_writing_json_lines(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, "path: traces.jsonl")
    mock.add(*weather_script())
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        await runtime.run("weather", "Weather in Tokyo?")
    lines = (tmp_path / "traces.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines][0::4] == ["run_start", "run_end"]
    assert not (tmp_path / ".agent-runtime" / "runs.sqlite3").exists()


# -- finding runs -------------------------------------------------------------------------------


def log_with_runs(path: Path, *trace_ids: str, start: float = 1_000_000.0) -> RunLog:
    writer = TraceWriter(path, include_sensitive_data=True)
    for offset, trace_id in enumerate(trace_ids):
        trace = RunTrace(writer, trace_id=trace_id, started_at=start + offset)
        writer.write(
            {
                "trace_id": trace_id,
                "type": "run_start",
                "time": start + offset,
                "agent": "a",
                "session": None,
                "input": [{"role": "user", "content": f"question {offset}"}],
            }
        )
        trace.record("run_end", agent="a", outcome="completed")
    writer.close()
    return RunLog(path)


def test_a_run_is_found_by_its_id_or_the_start_of_it(tmp_path: Path) -> None:
    log = log_with_runs(
        tmp_path / "runs.sqlite3", "trace_abc111", "trace_abc222", "trace_def333", "trace_x%_"
    )
    assert log.find("trace_abc111").trace_id == "trace_abc111"
    assert log.find("abc2").trace_id == "trace_abc222"
    assert log.find("trace_d").trace_id == "trace_def333"
    assert log.find("x%_").trace_id == "trace_x%_"
    with pytest.raises(RunLogError) as error:
        log.find("abc")
    assert str(error.value) == (
        "'abc' is the start of several runs' ids (trace_abc111, trace_abc222); give more of the id."
    )
    with pytest.raises(RunLogError) as error:
        log.find("%")  # not a wildcard
    assert str(error.value).startswith("no run '%' in the run log")
    log.close()


def test_an_unknown_run_says_how_to_find_one(tmp_path: Path) -> None:
    log = log_with_runs(tmp_path / "runs.sqlite3", "trace_abc111")
    with pytest.raises(RunLogError) as error:
        log.find("zzz")
    assert str(error.value) == (
        f"no run 'zzz' in the run log {tmp_path / 'runs.sqlite3'}. `agent-runtime logs` lists "
        "the recent runs with their trace ids."
    )
    log.close()


def test_reading_a_log_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "none" / "runs.sqlite3")
    with pytest.raises(RunLogError) as error:
        log.runs()
    assert str(error.value) == (
        f"there is no run log at {tmp_path / 'none' / 'runs.sqlite3'} yet: runs are logged "
        "there once an agent has run with `tracing.path` pointing to it."
    )
    assert list(tmp_path.iterdir()) == []


# -- retention -------------------------------------------------------------------------------------


def test_prune_removes_old_runs_with_their_records(tmp_path: Path) -> None:
    now = 1_000_000_000.0
    path = tmp_path / "runs.sqlite3"
    log = log_with_runs(path, "trace_old", start=now - 40 * DAY)
    log.close()
    log = log_with_runs(path, "trace_new", start=now - 2 * DAY)
    pruned = log.prune(30, now=now)
    assert (pruned.runs, pruned.records, pruned.before) == (1, 2, now - 30 * DAY)
    assert [run.trace_id for run in log.runs()] == ["trace_new"]
    assert log.records("trace_old") == []
    assert len(log.records("trace_new")) == 2
    assert log.prune(30, now=now).runs == 0
    log.close()


def test_a_writer_applies_keep_days_when_it_opens_the_log_at_most_hourly(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    log_with_runs(path, "trace_old", start=time.time() - 40 * DAY).close()
    writer = TraceWriter(path, keep_days=30)
    RunTrace(writer).record("run_start", agent="a")
    writer.close()
    log = RunLog(path)
    assert [run.agent for run in log.runs()] == ["a"]
    log.close()
    # Within the hour, another writer leaves old runs for later.
    log_with_runs(path, "trace_old2", start=time.time() - 40 * DAY).close()
    writer = TraceWriter(path, keep_days=30)
    RunTrace(writer).record("run_start", agent="b")
    writer.close()
    log = RunLog(path)
    assert sorted(run.trace_id for run in log.runs())[-1] == "trace_old2"
    log.close()


# -- failures never fail a run ------------------------------------------------------------------


def test_a_corrupt_run_log_stops_logging_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runs.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    writer = TraceWriter(path)
    with caplog.at_level(logging.WARNING, logger="agent_runtime.tracing"):
        RunTrace(writer).record("run_start", agent="a")
        RunTrace(writer).record("run_start", agent="b")
        writer.close()
    assert writer.failed
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot write the trace file {path}: file is not a database; no more records are "
        "written to it by this runtime (the runs go on). Free space there, or set "
        "`tracing.path` in agents.yaml to another file."
    ]


def hold_lock(path: str, locked: Any, release: Any) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    locked.set()
    release.wait(30)
    connection.execute("ROLLBACK")
    connection.close()


def test_a_log_locked_by_another_process_loses_records_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "runs.sqlite3"
    log_with_runs(path, "trace_first").close()
    context = multiprocessing.get_context("spawn")
    locked, release = context.Event(), context.Event()
    holder = context.Process(target=hold_lock, args=(str(path), locked, release))
    holder.start()
    try:
        assert locked.wait(30)
        writer = TraceWriter(path)
        writer._log.busy_timeout_s = 0.05  # type: ignore[union-attr]
        trace = RunTrace(writer, trace_id="trace_locked")
        with caplog.at_level(logging.WARNING, logger="agent_runtime.tracing"):
            trace.record("run_start", agent="a")
            trace.record("run_end", agent="a", outcome="completed")
    finally:
        release.set()
        holder.join(30)
    trace.record("run_start", agent="after")  # the lock is gone: written
    writer.close()
    assert not writer.failed
    assert [r.getMessage() for r in caplog.records] == [
        f"the run log {path} stayed locked by another process; a run_start record of trace "
        "trace_locked was not written (the run goes on). This warning is shown once."
    ]
    log = RunLog(path)
    assert log.find("trace_locked").agent == "after"
    log.close()


def write_runs(path: str, prefix: str, count: int) -> None:
    writer = TraceWriter(path)
    for number in range(count):
        trace = RunTrace(writer, trace_id=f"trace_{prefix}{number:04d}")
        trace.record("run_start", agent=prefix)
        trace.record("model_call", agent=prefix)
        trace.record("run_end", agent=prefix, outcome="completed")
    writer.close()


def test_processes_write_one_log_together(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=write_runs, args=(str(path), prefix, 30)) for prefix in "ab"]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    assert [process.exitcode for process in writers] == [0, 0]
    log = RunLog(path)
    runs = log.runs(limit=100)
    assert len(runs) == 60
    assert {run.outcome for run in runs} == {"completed"}
    assert [r["type"] for r in log.records("trace_b0007")] == [
        "run_start",
        "model_call",
        "run_end",
    ]
    log.close()


async def test_a_run_goes_on_when_its_log_is_corrupt(mock: MockVLLM, tmp_path: Path) -> None:
    config = write_config(tmp_path, "path: runs.sqlite3")
    (tmp_path / "runs.sqlite3").write_bytes(b"garbage" * 1000)
    mock.add(*weather_script())
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        result = await runtime.run("weather", "Weather in Tokyo?")
    assert result.final_output == "Sunny in Tokyo."


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        pytest.param("file/inside/runs.sqlite3", "Not a directory", id="under-a-file"),
        pytest.param("folder.sqlite3", "Is a directory", id="a-folder"),
    ],
)
def test_an_unopenable_run_log_says_which_setting_to_fix(
    tmp_path: Path, where: str, reason: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder.sqlite3").mkdir()
    writer = TraceWriter(tmp_path / where)
    with pytest.raises(AgentRuntimeError) as error:
        RunTrace(writer).record("run_start", agent="a")
    assert str(error.value) == (
        f"cannot open the trace file {tmp_path / where}: {reason}. Set `tracing.path` in "
        "agents.yaml to a file in a folder you can write to, or turn tracing off "
        "(`tracing: {enabled: false}`)."
    )


def test_text_that_is_not_valid_unicode_is_logged(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "runs.sqlite3", include_sensitive_data=True)
    trace = RunTrace(writer, trace_id="trace_bad\udc80")
    trace.record("run_start", agent="a", session="s\ud800", input="caf\udce9")
    trace.record("tool_call", agent="a", name="ls", output="\udc80.txt")
    trace.record("run_end", agent="a", outcome="completed", final_output="x\udc80")
    writer.close()
    assert not writer.failed
    log = RunLog(tmp_path / "runs.sqlite3")
    (run,) = log.runs()
    assert (run.trace_id, run.session, run.input, run.output) == (
        "trace_bad\ufffd",
        "s\ufffd",
        "caf\ufffd",
        "x\ufffd",
    )
    assert log.records("trace_bad\ufffd")[1]["output"] == "\udc80.txt"
    log.close()


def test_odd_values_in_a_run_end_do_not_stop_the_log(tmp_path: Path) -> None:
    writer = TraceWriter(tmp_path / "runs.sqlite3")
    trace = RunTrace(writer, trace_id="trace_odd")
    trace.record("run_start", agent="a")
    writer.write(
        {
            "trace_id": "trace_odd",
            "type": "run_end",
            "time": 5.0,
            "outcome": {"not": "text"},
            "turns": "3",
            "usage": {"input_tokens": True, "output_tokens": 2**70},
            "duration_ms": "fast",
        }
    )
    trace.record("run_start", agent="later")  # still logging
    writer.close()
    assert not writer.failed
    log = RunLog(tmp_path / "runs.sqlite3")
    run = log.find("trace_odd")
    assert (run.outcome, run.turns, run.input_tokens, run.output_tokens, run.duration_ms) == (
        '{"not": "text"}',
        None,
        None,
        None,
        None,
    )
    log.close()
