"""The session store under hostile conditions: text that is not valid UTF-8, and a database that
another connection keeps locked. A run never loses the answer it got because of its session."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import RunFinished, RunLimitError, Runtime
from agent_runtime.results import Message, ToolResult
from agent_runtime.sessions import SessionStore
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers

CONFIG = helpers.PROJECT / "hostile_tools.yaml"


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


def trace_records(folder: Path, kind: str) -> list[dict[str, Any]]:
    lines = (folder / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    return [record for line in lines if (record := json.loads(line))["type"] == kind]


async def test_text_that_is_not_utf8_is_stored_and_returned_with_replacement_characters(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(Reply(calls=[call("odd_name")]), Reply(final="Found report-\ud800.txt"))
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(CONFIG, environ=environ) as runtime:
        result = await runtime.run("hostile", "list the files", session="s")
        stored = await runtime.session_items("s")
    assert result.final_output == "Found report-\ufffd.txt"
    assert [i.output for i in result.items if isinstance(i, ToolResult)] == ["report-\ufffd.txt"]
    assert [i.text for i in result.items if isinstance(i, Message)] == ["Found report-\ufffd.txt"]
    outputs = [item["output"] for item in stored if item.get("type") == "function_call_output"]
    assert outputs == ["report-\ufffd.txt"]
    assert "Found report-\ufffd.txt" in json.dumps(stored[-1], ensure_ascii=False)
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")  # printable as UTF-8


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """The session database, locked by another connection (`BEGIN EXCLUSIVE`) until the end of
    the test."""
    path = tmp_path / "sessions.sqlite3"
    SessionStore(path).load_sync("create the tables")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield path
    finally:
        other.execute("ROLLBACK")
        other.close()


WARNING = (
    "the run's new items were not stored in session 's', which does not remember this "
    "exchange: cannot store the new items of session 's' in {path}: database is locked after "
    "waiting 0.5 s. Check that no other program holds the database locked, and that its disk "
    "has room."
)


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_a_locked_session_database_keeps_the_answer_and_reports_it(
    mock: MockVLLM, tmp_path: Path, locked: Path, stream: bool
) -> None:
    mock.add(Reply(calls=[call("add", a=1, b=2)]), Reply(final="3"))
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    store = SessionStore(locked, write_timeout_s=0.5)
    async with Runtime.from_yaml(CONFIG, environ=environ, sessions=store) as runtime:
        if stream:
            events = [event async for event in runtime.stream("hostile", "1+2?", session="s")]
            assert isinstance(events[-1], RunFinished)
            result = events[-1].result
        else:
            result = await runtime.run("hostile", "1+2?", session="s")
    assert result.final_output == "3"
    assert result.warnings == (WARNING.format(path=locked),)
    assert result.to_dict()["warnings"] == [WARNING.format(path=locked)]
    [record] = trace_records(tmp_path, "session_write_failed")
    assert record["session"] == "s"
    [end] = trace_records(tmp_path, "run_end")
    assert (end["outcome"], end["final_output"]) == ("completed", "3")


async def test_a_failed_run_with_a_locked_session_database_raises_its_own_error(
    mock: MockVLLM, tmp_path: Path, locked: Path
) -> None:
    mock.add(*(Reply(calls=[call("nope")]) for _ in range(3)))
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    store = SessionStore(locked, write_timeout_s=0.5)
    async with Runtime.from_yaml(CONFIG, environ=environ, sessions=store) as runtime:
        with pytest.raises(RunLimitError, match="invalid tool calls in a row"):
            await runtime.run("picky", "go", session="s")
    assert len(trace_records(tmp_path, "session_write_failed")) == 1
    [end] = trace_records(tmp_path, "run_end")
    assert end["outcome"] == "failed"


async def test_a_write_waits_for_a_lock_that_is_released_in_time(
    mock: MockVLLM, tmp_path: Path
) -> None:
    path = tmp_path / "sessions.sqlite3"
    SessionStore(path).load_sync("create the tables")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    mock.add(Reply(final="stored"))
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    store = SessionStore(path, write_timeout_s=60)
    async with Runtime.from_yaml(CONFIG, environ=environ, sessions=store) as runtime:
        run = asyncio.create_task(runtime.run("hostile", "go", session="s"))
        await asyncio.to_thread(mock.wait_until, lambda m: len(m.model_requests) == 1)
        other.execute("COMMIT")
        other.close()
        result = await asyncio.wait_for(run, timeout=60)
        assert result.warnings == ()
        assert (await runtime.session_items("s"))[0] == {"role": "user", "content": "go"}


@pytest.mark.parametrize("session", ["", "  "])
async def test_an_empty_session_id_is_refused(mock: MockVLLM, tmp_path: Path, session: str) -> None:
    from agent_runtime import ConfigError

    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(CONFIG, environ=environ) as runtime:
        with pytest.raises(ConfigError, match="run\\(\\): session: the session id is empty"):
            await runtime.run("hostile", "hi", session=session)
        with pytest.raises(ConfigError, match="stream\\(\\): session: the session id is empty"):
            async for _ in runtime.stream("hostile", "hi", session=session):
                pass
    assert mock.model_requests == []
