"""A worker SIGKILLed at each stage of a run (a model call in flight, right after a tool
finished, right after a handoff): another live worker takes the run over within 10 s, the
result is the one a run without a crash gives, finished steps are not run again and the step
in flight is run once more. Real `agent-runtime worker` processes on SQLite and the real
Postgres; the mock model server (in this process) counts model calls, a tool's log file counts
its executions."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.testing import MockVLLM
from tests.durable.workers import Held, Project, Worker, Workers, serving, write_project

RECOVERY_S = 10.0
"""The longest a dead worker's run may wait before another worker goes on with it."""


@contextlib.contextmanager
def setup(
    tmp_path: Path, database_url: str, held: Held
) -> Iterator[tuple[MockVLLM, Project, Workers]]:
    workers = Workers()
    with serving(held) as mock:
        project = write_project(tmp_path / "project", database_url=database_url, mock_url=mock.url)
        try:
            yield mock, project, workers
        finally:
            workers.close()


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without what differs between two equal runs (generated ids)."""
    items = [{k: v for k, v in item.items() if k != "call_id"} for item in result["items"]]
    return {**result, "items": items, "trace_id": None}


def requests(mock: MockVLLM) -> int:
    return len(mock.model_requests)


def wait_for_requests(mock: MockVLLM, count: int, timeout: float) -> None:
    mock.wait_until(lambda m: len(m.model_requests) >= count, timeout=timeout)


def kill_and_take_over(
    project: Project, workers: Workers, mock: MockVLLM, first: Worker, seen: int
) -> float:
    """Start a second worker, SIGKILL the first, and wait until the run's next model request
    arrives from the second; the seconds from the kill to that request."""
    second = workers.start(project)
    second.ready()
    first.kill()
    killed = time.monotonic()
    wait_for_requests(mock, seen + 1, timeout=RECOVERY_S)
    return time.monotonic() - killed


def reference(project: Project, mock: MockVLLM, agent: str) -> tuple[dict[str, Any], int, int]:
    """A run without a crash (on the live worker): its result, model requests, tool runs."""
    before, tools = requests(mock), len(project.tool_lines())
    result = project.result(project.submit(agent, "note tokyo"))
    return result, requests(mock) - before, len(project.tool_lines()) - tools


def test_killed_while_a_model_call_is_in_flight(tmp_path: Path, database_url: str) -> None:
    held = Held(1)
    with setup(tmp_path, database_url, held) as (mock, project, workers):
        first = workers.start(project)
        first.ready()
        run_id = project.submit("recorder", "note tokyo")
        wait_for_requests(mock, 1, timeout=30)  # the first model call, held in flight
        assert project.tool_lines() == []
        kill_and_take_over(project, workers, mock, first, seen=1)
        result = project.result(run_id)
        crashed_requests, tool_runs = requests(mock), len(project.tool_lines())
        expected, expected_requests, expected_tools = reference(project, mock, "recorder")
    assert comparable(result) == comparable(expected)
    assert result["final_output"] == "Done: recorded tokyo"
    assert crashed_requests == expected_requests + 1  # the call in flight, made once more
    assert tool_runs == expected_tools == 1


def test_killed_after_a_tool_finished(tmp_path: Path, database_url: str) -> None:
    held = Held(2)  # the model call after the tool
    with setup(tmp_path, database_url, held) as (mock, project, workers):
        first = workers.start(project)
        first.ready()
        run_id = project.submit("recorder", "note tokyo")
        wait_for_requests(mock, 2, timeout=30)
        [line] = project.tool_lines()
        assert line == f"tokyo {first.process.pid}"
        kill_and_take_over(project, workers, mock, first, seen=2)
        result = project.result(run_id)
        sent = mock.model_requests
        crashed_requests, tool_runs = len(sent), project.tool_lines()
        expected, expected_requests, _ = reference(project, mock, "recorder")
    assert comparable(result) == comparable(expected)
    assert tool_runs == [line]  # the tool ran once, before the crash: not again
    assert crashed_requests == expected_requests + 1
    # The call made again carries the tool's recorded result, as the one cut off did.
    assert sent[2].function_outputs == sent[1].function_outputs
    assert [o.output for o in sent[2].function_outputs] == ["recorded tokyo"]


def test_killed_during_a_handoff(tmp_path: Path, database_url: str) -> None:
    held = Held(2)  # the first model call of the agent handed to
    with setup(tmp_path, database_url, held) as (mock, project, workers):
        first = workers.start(project)
        first.ready()
        run_id = project.submit("triage", "note tokyo")
        wait_for_requests(mock, 2, timeout=30)
        kill_and_take_over(project, workers, mock, first, seen=2)
        result = project.result(run_id)
        sent = mock.model_requests
        crashed_requests, tool_runs = len(sent), len(project.tool_lines())
        expected, expected_requests, expected_tools = reference(project, mock, "triage")
    assert comparable(result) == comparable(expected)
    assert result["agent"] == "recorder"
    assert crashed_requests == expected_requests + 1
    assert tool_runs == expected_tools == 1
    # The triage call was not made again: the call cut off is made again as it was, to the
    # agent handed to, with the handoff in its input.
    assert sent[1].tool_names == sent[2].tool_names == ("record",)
    assert sent[2].messages == sent[1].messages


def test_sigterm_lets_the_run_in_flight_finish_and_takes_no_new_one(
    tmp_path: Path, database_url: str
) -> None:
    held = Held(1)
    with setup(tmp_path, database_url, held) as (mock, project, workers):
        worker = workers.start(project, "--drain-grace", "60")
        worker.ready()
        first = project.submit("recorder", "note tokyo")
        wait_for_requests(mock, 1, timeout=30)
        worker.signal(signal.SIGTERM)
        worker.wait_for(lambda text: "Stopping:" in text, timeout=30)
        second = project.submit("recorder", "note tokyo")
        held.release()
        assert worker.wait(timeout=60) == 0
        lines = worker.output().splitlines()
        assert project.result(first)["final_output"] == "Done: recorded tokyo"
        assert project.status(second)["status"] == "queued"
        assert len(project.tool_lines()) == 1
    assert lines[1:] == [
        "Stopping: no new runs; 1 run in flight may go on for up to 60 s (signal again to stop "
        "now)."
    ]


@pytest.mark.parametrize(
    ("args", "signals"),
    [
        pytest.param(("--drain-grace", "0.2"), 1, id="grace-over"),
        pytest.param(("--drain-grace", "60"), 2, id="second-signal"),
    ],
)
def test_a_run_cut_off_by_stopping_is_taken_over_at_once(
    tmp_path: Path, sqlite_url: str, args: tuple[str, ...], signals: int
) -> None:
    held = Held(1)
    with setup(tmp_path, sqlite_url, held) as (mock, project, workers):
        first = workers.start(project, *args)
        first.ready()
        run_id = project.submit("recorder", "note tokyo")
        wait_for_requests(mock, 1, timeout=30)
        first.signal(signal.SIGTERM)
        if signals == 2:
            first.wait_for(lambda text: "Stopping:" in text, timeout=30)
            first.signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        assert first.output().splitlines()[-1] == (
            "Stopped with 1 run unfinished: another worker takes it over."
        )
        second = workers.start(project)
        second.ready()
        # Handed over on stopping: taken at the new worker's first beat, not after 5 s.
        wait_for_requests(mock, 2, timeout=5)
        result = project.result(run_id)
    assert result["final_output"] == "Done: recorded tokyo"
    assert requests(mock) == 3
    assert len(project.tool_lines()) == 1
