"""The CLI with sessions in Postgres (a `durability:` database): `run --continue` finds the newest
conversation there, `logs --prune` applies `sessions.keep_days` there; no SQLite file is made."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from agent_runtime.cli import cli
from agent_runtime.durable.sessions import PostgresSessionStore
from tests.durable.test_sessions import age
from tests.durable.workers import Held, Project, serving, write_project


def invoke(project: Project, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-c", str(project.config)], env=project.env())


def test_continue_and_prune_use_the_sessions_in_postgres(postgres_db: str, tmp_path: Path) -> None:
    with serving(Held()) as mock:
        project = write_project(tmp_path / "project", database_url=postgres_db, mock_url=mock.url)
        text = (
            project.config.read_text(encoding="utf-8")
            .replace(
                "sessions: {path: state/sessions.sqlite3}",
                "sessions: {path: state/sessions.sqlite3, keep_days: 2}",
            )
            .replace("tracing: {path: state/traces.jsonl}", "tracing: {path: state/runs.sqlite3}")
        )
        project.config.write_text(text, encoding="utf-8")

        assert invoke(project, "run", "recorder", "first note").exit_code == 0
        second = invoke(project, "run", "--continue", "recorder", "second note")
        assert second.exit_code == 0, second.output

    store = PostgresSessionStore(postgres_db)
    try:
        session = store.newest("run-")
        assert session is not None
        said = [item.get("content") for item in store.load_sync(session) if item.get("role")]
        assert said[0] == "first note"
        assert "second note" in said  # one conversation: the second run continued the first
        assert not (project.root / "state" / "sessions.sqlite3").exists()

        age(postgres_db, session, 3)
        pruned = invoke(project, "logs", "--prune")
        assert pruned.exit_code == 0, pruned.output
        assert pruned.stdout.splitlines()[-1] == (
            f"Removed 1 session not used for 2 days from the durability database: {session}."
        )
        assert store.load_sync(session) == []
    finally:
        store.close()


def test_continue_with_nothing_in_postgres(postgres_db: str, tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project", database_url=postgres_db, mock_url="http://127.0.0.1:9/v1"
    )
    result = invoke(project, "run", "--continue", "recorder", "again")
    assert (result.exit_code, result.stderr) == (
        2,
        "Error: there is no earlier run to continue in the durability database: start one "
        "without --continue (or pick a conversation with --session ID).\n",
    )
