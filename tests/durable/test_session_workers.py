"""Runs of one session on several worker processes: one at a time, in the order submitted, each
seeing every earlier run's items; none lost, none interleaved (real workers, SQLite and
Postgres)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_runtime.testing import MockVLLM, RecordedRequest, Reply, call
from tests.durable.workers import Workers, write_project

RUNS = 6


class Noter:
    """The model: calls `record` with the last word of the user's newest message, then answers
    with the tool's output."""

    async def __call__(self, request: RecordedRequest) -> Reply:
        last = request.json["input"][-1]
        if last.get("type") == "function_call_output":
            return Reply(reasoning="Recorded.", final=f"Done: {last['output']}")
        return Reply(reasoning="Record it.", calls=(call("record", note=_text(last).split()[-1]),))


def _text(item: dict[str, Any]) -> str:
    content = item["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def _user_notes(request: RecordedRequest) -> list[str]:
    return [
        _text(item)
        for item in request.json["input"]
        if item.get("role") == "user" and item.get("type", "message") == "message"
    ]


def test_runs_of_one_session_on_two_workers_run_in_order(tmp_path: Path, database_url: str) -> None:
    workers = Workers()
    with MockVLLM(default=Noter(), seed=3) as mock:
        project = write_project(tmp_path / "project", database_url=database_url, mock_url=mock.url)
        try:
            for _ in range(2):
                workers.start(project).ready()
            run_ids = [
                project.submit("recorder", f"note n{number}", session="alice")
                for number in range(1, RUNS + 1)
            ]
            results = [project.result(run_id, timeout=60) for run_id in run_ids]
        finally:
            workers.close()
    assert [result["final_output"] for result in results] == [
        f"Done: recorded n{number}" for number in range(1, RUNS + 1)
    ]
    # Each run's first model request carries every earlier run of the session, in order: the
    # runs went one at a time, in the order submitted.
    firsts = [r for r in mock.model_requests if r.json["input"][-1].get("role") == "user"]
    assert [_user_notes(request) for request in firsts] == [
        [f"note n{earlier}" for earlier in range(1, number + 1)] for number in range(1, RUNS + 1)
    ]
    assert [line.split()[0] for line in project.tool_lines()] == [
        f"n{number}" for number in range(1, RUNS + 1)
    ]
