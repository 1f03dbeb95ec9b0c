"""`agent-runtime submit`, `result`, `status`, `cancel` and `runs`: exact output and exit codes,
through the real entry point (CliRunner), with a real `agent-runtime worker` process executing
the runs (on SQLite: one worker serves the whole module) or none (runs that stay queued)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agent_runtime.cli import cli
from agent_runtime.testing import MockVLLM
from tests.durable.workers import Held, Project, Workers, serving, write_project

RUN_ID = re.compile(r"^run-[0-9a-f]{32}\n$")


@pytest.fixture(scope="module")
def mock() -> Iterator[MockVLLM]:
    with serving(Held()) as server:
        yield server


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mock: MockVLLM) -> Iterator[Project]:
    """A project whose runs a worker (started once for the module) executes."""
    root = tmp_path_factory.mktemp("cli")
    project = write_project(
        root / "project", database_url=f"sqlite:///{root / 'runs.sqlite'}", mock_url=mock.url
    )
    workers = Workers()
    try:
        workers.start(project).ready()
        yield project
    finally:
        workers.close()


@pytest.fixture
def idle(tmp_path: Path, mock: MockVLLM) -> Project:
    """A project no worker executes: its runs stay queued."""
    return write_project(
        tmp_path / "idle", database_url=f"sqlite:///{tmp_path / 'idle.sqlite'}", mock_url=mock.url
    )


def invoke(project: Project, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(
        cli, [*args, "-c", str(project.config)], env=project.env(), input=input
    )


def submitted(project: Project, *args: str, input: str | None = None) -> str:
    done = invoke(project, "submit", *args, input=input)
    assert (done.exit_code, done.stderr) == (0, ""), done.stderr
    assert RUN_ID.match(done.stdout) or "--run-id" in args, done.stdout
    return done.stdout.strip()


def test_submit_prints_the_run_id_and_result_the_answer(project: Project) -> None:
    run_id = submitted(project, "recorder", "note tokyo")
    done = invoke(project, "result", run_id, "--wait", "--timeout", "60")
    assert (done.exit_code, done.stdout, done.stderr) == (0, "Done: recorded tokyo\n", "")


def test_result_json_is_the_run_result(project: Project) -> None:
    run_id = submitted(project, "recorder", "-", input="note tokyo\n")
    done = invoke(project, "result", run_id, "--wait", "--json")
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["final_output"] == "Done: recorded tokyo"
    assert document["agent"] == "recorder"
    assert [item["type"] for item in document["items"]] == [
        "reasoning",
        "tool_call",
        "tool_result",
        "reasoning",
        "message",
    ]


def test_result_follow_shows_the_steps_then_prints_the_answer(project: Project) -> None:
    run_id = submitted(project, "recorder", "note tokyo")
    done = invoke(project, "result", run_id, "--follow")
    assert (done.exit_code, done.stdout) == (0, "Done: recorded tokyo\n"), done.stderr
    lines = done.stderr.splitlines()
    assert lines[1:3] == ['[tool] record {"note":"tokyo"}', "[result] record recorded tokyo"]
    assert lines[0].startswith("[reasoning] ") and lines[3].startswith("[reasoning] ")
    again = invoke(project, "result", run_id, "--follow", "--json")  # a finished run replays
    assert json.loads(again.stdout)["final_output"] == "Done: recorded tokyo"
    assert again.stderr == done.stderr


def test_the_same_run_id_is_the_same_run(project: Project) -> None:
    first = submitted(project, "recorder", "note tokyo", "--run-id", "order-1042")
    again = submitted(project, "recorder", "note tokyo", "--run-id", "order-1042")
    assert first == again == "order-1042"
    done = invoke(project, "result", "order-1042", "--wait")
    assert done.stdout == "Done: recorded tokyo\n"
    listed = json.loads(invoke(project, "runs", "--json", "-n", "100").stdout)
    assert [run["run_id"] for run in listed].count("order-1042") == 1


def test_status_of_a_finished_run(project: Project) -> None:
    run_id = submitted(project, "recorder", "note   tokyo\nplease", "--session", "alice")
    assert invoke(project, "result", run_id, "--wait").exit_code == 0
    done = invoke(project, "status", run_id)
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "run",
        "agent",
        "status",
        "created",
        "updated",
        "session",
        "input",
        "worker",
    ]
    assert lines[0] == f"run      {run_id}"
    assert lines[1:3] == ["agent    recorder", "status   succeeded"]
    assert lines[5:7] == ["session  alice", "input    note tokyo please"]
    assert re.fullmatch(r"worker   w-[0-9a-f]{12}", lines[7])
    document = json.loads(invoke(project, "status", run_id, "--json").stdout)
    assert (document["status"], document["session"], document["error"]) == (
        "succeeded",
        "alice",
        None,
    )


def test_runs_lists_newest_first_with_filters(project: Project) -> None:
    first = submitted(project, "recorder", "first")
    second = submitted(project, "triage", "second")
    for run_id in (first, second):
        assert invoke(project, "result", run_id, "--wait").exit_code == 0
    done = invoke(project, "runs", "-n", "2")
    assert done.exit_code == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["RUN", "AGENT", "STATUS", "CREATED", "SESSION", "INPUT"]
    assert [row.split()[:3] for row in rows] == [
        [second, "triage", "succeeded"],
        [first, "recorder", "succeeded"],
    ]
    assert [row.split()[-1] for row in rows] == ["second", "first"]
    triage = json.loads(invoke(project, "runs", "--agent", "triage", "--json").stdout)
    assert {run["agent"] for run in triage} == {"triage"}
    assert second in [run["run_id"] for run in triage]
    failed = invoke(project, "runs", "--status", "failed", "--json")
    assert all(run["status"] == "failed" for run in json.loads(failed.stdout))


def test_a_failed_run_gives_its_error_and_the_exit_code_of_run(project: Project) -> None:
    run_id = submitted(project, "offline", "hello")
    done = invoke(project, "result", run_id, "--wait", "--timeout", "60")
    assert done.exit_code == 3  # the model server could not be reached, as `run` says
    assert done.stdout == ""
    assert done.stderr.startswith("Error: ")
    assert "127.0.0.1:9" in done.stderr
    status = json.loads(invoke(project, "status", run_id, "--json").stdout)
    assert status["status"] == "failed"
    assert status["error"].startswith("BackendUnavailableError: ")


def test_a_queued_run_has_no_result_yet(idle: Project) -> None:
    run_id = submitted(idle, "recorder", "note tokyo")
    pending = (
        f"Error: run {run_id!r} has not finished: it is queued. Ask again later, or wait for it "
        "(`result(run_id, wait=True)`, `agent-runtime result --wait`); a queued run needs a "
        "running `agent-runtime worker`.\n"
    )
    done = invoke(idle, "result", run_id)
    assert (done.exit_code, done.stdout, done.stderr) == (5, "", pending)
    done = invoke(idle, "result", run_id, "--wait", "--timeout", "0.3")
    assert done.exit_code == 5
    assert f"run {run_id!r} has not finished after waiting 0.3 s: it is queued." in done.stderr
    assert json.loads(invoke(idle, "status", run_id, "--json").stdout)["status"] == "queued"


def test_cancel_a_queued_run(idle: Project) -> None:
    run_id = submitted(idle, "recorder", "note tokyo")
    done = invoke(idle, "cancel", run_id)
    assert (done.exit_code, done.stdout, done.stderr) == (0, f"Cancelled run {run_id}.\n", "")
    done = invoke(idle, "result", run_id, "--wait")
    assert (done.exit_code, done.stdout) == (1, "")
    assert (
        done.stderr
        == f"Error: run {run_id!r} was cancelled before it finished; it has no result.\n"
    )
    done = invoke(idle, "cancel", run_id, "--json")
    assert json.loads(done.stdout)["status"] == "cancelled"


def test_cancel_a_finished_run_leaves_it(project: Project) -> None:
    run_id = submitted(project, "recorder", "note tokyo")
    assert invoke(project, "result", run_id, "--wait").exit_code == 0
    done = invoke(project, "cancel", run_id)
    assert (done.exit_code, done.stdout) == (
        0,
        f"Run {run_id} had already succeeded; left as it is.\n",
    )


def test_an_unknown_run_id_is_a_usage_error(idle: Project) -> None:
    submitted(idle, "recorder", "make the tables")
    for command in ("result", "status", "cancel"):
        done = invoke(idle, command, "nope")
        assert done.exit_code == 2, (command, done.stderr)
        assert done.stderr.startswith("Error: no durable run with id 'nope' in this database.")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("submit", "recorder", "hi"), id="submit"),
        pytest.param(("result", "some-run"), id="result"),
        pytest.param(("status", "some-run"), id="status"),
        pytest.param(("cancel", "some-run"), id="cancel"),
        pytest.param(("runs",), id="runs"),
        pytest.param(("worker",), id="worker"),
    ],
)
def test_every_command_needs_a_durability_section(tmp_path: Path, args: tuple[str, ...]) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\nbackends: {local: {base_url: 'http://127.0.0.1:9/v1', model: m}}\n"
        "agents: {recorder: {instructions: Hi., backend: local}}\n"
    )
    done = CliRunner().invoke(cli, [*args, "-c", str(config)])
    assert (done.exit_code, done.stdout) == (2, "")
    assert done.stderr.startswith(
        f"Error: {config} has no `durability:` section, which durable runs (submit, result, "
        "status, cancel, runs, worker) need. Add one with the database that queues and records "
        "them, e.g.\n  durability:\n    database_url: sqlite:///runs.sqlite   # or "
        "${DATABASE_URL} for a Postgres database (postgresql://...)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("submit", "recorder", ""), "the input is empty", id="empty-input"),
        pytest.param(
            ("submit", "recorder", "hi", "--run-id", " "), "the run id is empty", id="empty-id"
        ),
        pytest.param(("result", "x", "--timeout", "1"), "--timeout needs --wait", id="timeout"),
        pytest.param(
            ("result", "x", "--wait", "--timeout", "1", "--follow"),
            "--timeout cannot be used with --follow",
            id="timeout-follow",
        ),
        pytest.param(
            ("runs", "--database-url", "mysql://db/runs"),
            "the database URL given by --database-url cannot be used: expected a postgresql:// "
            "or sqlite:/// URL",
            id="scheme",
        ),
    ],
)
def test_usage_errors(idle: Project, args: tuple[str, ...], message: str) -> None:
    done = invoke(idle, *args)
    assert done.exit_code == 2
    assert done.stderr.startswith(f"Error: {message}")


def test_an_unknown_agent_is_a_config_error(idle: Project) -> None:
    done = invoke(idle, "submit", "recordr", "hi")
    assert done.exit_code == 2
    assert "Did you mean 'recorder'?" in done.stderr


def test_the_database_password_is_never_shown(idle: Project, tmp_path: Path) -> None:
    url = "postgresql://app:Sup3r-s3cret@127.0.0.1:9/runs"
    done = invoke(idle, "runs", "--database-url", url)
    assert done.exit_code == 1
    assert "Sup3r-s3cret" not in done.stderr + done.stdout
    assert "Postgres database 'runs' at 127.0.0.1:9" in done.stderr


HELP_IMPORTS = """
import sys
from agent_runtime.cli import cli
for command in ("worker", "submit", "result", "status", "cancel", "runs"):
    try:
        cli([command, "--help"], prog_name="agent-runtime")
    except SystemExit as exit:
        assert exit.code == 0, exit.code
print(sorted(name for name in ("agents", "dbos", "sqlalchemy", "openai") if name in sys.modules))
"""


def test_help_imports_neither_dbos_nor_the_agents_sdk() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert "Execute queued durable runs until stopped" in done.stdout
    assert "Exit 5" in done.stdout or "exit 5" in done.stdout
