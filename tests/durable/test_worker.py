"""`agent-runtime worker`: its ready line, its clear errors (a database that cannot be reached,
a URL of the wrong kind), the database URL from the environment, a Postgres database created on
first start, SIGINT, and a worker that finds its runs taken over. Real worker processes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from agent_runtime.durable.worker import TABLE, database_engine
from tests.durable.postgres import PostgresCluster
from tests.durable.workers import (
    COMMAND,
    Held,
    Project,
    Workers,
    serving,
    write_project,
)


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Iterator[Project]:
    with serving(Held()) as mock:
        yield write_project(tmp_path / "project", database_url=database_url, mock_url=mock.url)


def worker_rows(database_url: str) -> list[tuple[str, float]]:
    engine = database_engine(database_url)
    try:
        with engine.begin() as connection:
            rows = connection.execute(sqlalchemy.text(f"SELECT executor_id, beat_at FROM {TABLE}"))
            return [(row.executor_id, float(row.beat_at)) for row in rows]
    finally:
        engine.dispose()


def test_ready_line_heartbeat_and_sigint(project: Project, workers: Workers) -> None:
    worker = workers.start(project, "--concurrency", "3")
    executor_id = worker.ready()
    assert re.fullmatch(r"w-[0-9a-f]{12}", executor_id)
    assert worker.output().splitlines()[-1] == (
        f"Worker {executor_id} executing runs from {project.database_url} (concurrency 3, "
        "takeover after 5 s)"
    )
    assert [row[0] for row in worker_rows(project.database_url)] == [executor_id]
    run_id = project.submit("recorder", "note tokyo")
    assert project.result(run_id)["final_output"] == "Done: recorded tokyo"
    worker.signal(signal.SIGINT)
    assert worker.wait(timeout=60) == 0
    assert worker.output().splitlines()[-1] == (
        "Stopping: no new runs; 0 runs in flight may go on for up to 30 s (signal again to stop "
        "now)."
    )
    # Its row is handed over for whoever comes next to clear.
    assert worker_rows(project.database_url) == [(executor_id, 0.0)]


def test_the_password_is_masked_and_the_database_created(
    postgres_cluster: PostgresCluster, tmp_path: Path, workers: Workers
) -> None:
    # Trust authentication accepts any password: enough to see it masked.
    url = postgres_cluster.url("created_by_worker").replace("postgres@", "postgres:Sup3r-s3cret@")
    with serving(Held()) as mock:
        project = write_project(
            tmp_path / "p", database_url="sqlite:///unused.sqlite", mock_url=mock.url
        )
        project.database_url = url  # $DATABASE_URL, which agents.yaml reads
        worker = workers.start(project)
        executor_id = worker.ready()
        assert f"from {url.replace('Sup3r-s3cret', '***')} " in worker.output()
        assert "Sup3r-s3cret" not in worker.output()
        assert [row[0] for row in worker_rows(url)] == [executor_id]
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0


def test_the_database_url_from_the_environment(
    tmp_path: Path, sqlite_url: str, workers: Workers
) -> None:
    with serving(Held()) as mock:
        project = write_project(
            tmp_path / "p", database_url="postgresql://nobody@127.0.0.1:9/none", mock_url=mock.url
        )
        worker = workers.start(project, env={"AGENT_RUNTIME_DATABASE_URL": sqlite_url})
        worker.ready()
        assert f"executing runs from {sqlite_url} " in worker.output()
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0


def run_worker(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "worker", "-c", str(project.config), *args],
        capture_output=True,
        text=True,
        env=project.env(),
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_a_database_that_cannot_be_reached(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", database_url="sqlite:///unused", mock_url="http://x")
    done = run_worker(project, "--database-url", "postgresql://app:Sup3r-s3cret@127.0.0.1:9/runs")
    assert (done.returncode, done.stdout) == (1, "")
    assert "Sup3r-s3cret" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(
        "Error: cannot use the Postgres database 'runs' at 127.0.0.1:9 for durable runs: "
    )
    assert line.endswith(
        "Check `durability.database_url` in agents.yaml (or --database-url, "
        "AGENT_RUNTIME_DATABASE_URL), and that the database server is running and reachable."
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("mysql://db/runs", "expected a postgresql:// or sqlite:/// URL", id="scheme"),
        pytest.param("postgresql://db:5432/", "the URL names no database", id="no-database"),
    ],
)
def test_a_database_url_of_the_wrong_kind(tmp_path: Path, url: str, problem: str) -> None:
    project = write_project(tmp_path / "p", database_url="sqlite:///unused", mock_url="http://x")
    done = run_worker(project, "--database-url", url)
    assert (done.returncode, done.stdout) == (2, "")
    [line] = done.stderr.splitlines()
    assert line.startswith(
        f"Error: the database URL given by --database-url cannot be used: {problem}, e.g. "
    )


def test_a_worker_whose_runs_were_taken_over_stops(project: Project, workers: Workers) -> None:
    worker = workers.start(project)
    executor_id = worker.ready()
    engine = database_engine(project.database_url)
    try:
        with engine.begin() as connection:  # what another worker does to a silent one
            connection.execute(
                sqlalchemy.text(f"DELETE FROM {TABLE} WHERE executor_id = :id"),
                {"id": executor_id},
            )
    finally:
        engine.dispose()
    assert worker.wait(timeout=30) == 1
    assert worker.output().splitlines()[-1] == (
        f"Error: worker {executor_id} was silent for more than 5 s and its runs were taken over "
        "by another worker; it stopped. Check the database connection and start it again."
    )


def test_worker_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "worker", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    for option in ("--concurrency N", "--database-url URL", "--drain-grace S", "-c, --config"):
        assert option in done.stdout
