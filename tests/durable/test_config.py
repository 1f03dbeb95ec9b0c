"""`durability:` in agents.yaml: its checks, the database URL's overrides, its password kept
secret, and the error of a durable call without the section."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent_runtime.config import load_config
from agent_runtime.durable import (
    DATABASE_URL_VARIABLE,
    DurabilityError,
    DurableEngine,
    database_url,
)
from agent_runtime.durable.client import database_error, describe_database
from agent_runtime.durable.sessions import PostgresSessionStore
from agent_runtime.durable.steps import DurableSessions
from agent_runtime.errors import ConfigError
from agent_runtime.runtime import Runtime
from agent_runtime.sessions import SessionStore
from tests.durable.conftest import AGENTS, write_project

ENVIRON = {"MOCK_URL": "http://127.0.0.1:9/v1"}


def project_with(tmp_path: Path, durability: str) -> Path:
    write_project(tmp_path, mock_url="", database_url="", durability=durability)
    return tmp_path / "agents.yaml"


def problems(tmp_path: Path, durability: str) -> list[str]:
    path = project_with(tmp_path, durability)
    with pytest.raises(ConfigError) as error:
        load_config(path, environ=ENVIRON)
    return [f"{p.path}: {p.message}" for p in error.value.problems]


@pytest.mark.parametrize(
    ("durability", "expected"),
    [
        pytest.param(
            "durability:\n  database_url: mysql://db/agents\n",
            "durability.database_url: expected a postgresql:// or sqlite:/// URL, e.g. "
            "postgresql://localhost:5432/agents or sqlite:///runs.sqlite.",
            id="scheme",
        ),
        pytest.param(
            "durability:\n  database_url: postgresql://localhost:5432/\n",
            "durability.database_url: the URL names no database, e.g. "
            "postgresql://localhost:5432/agents.",
            id="no-database",
        ),
        pytest.param(
            "durability:\n  database_url: 'sqlite:///'\n",
            "durability.database_url: a sqlite:/// URL needs a file path, e.g. "
            "sqlite:///runs.sqlite.",
            id="no-file",
        ),
        pytest.param(
            "durability:\n  database_url: sqlite:///runs.sqlite\n  concurrency: 0\n",
            "durability.concurrency: must be at least 1, got 0.",
            id="concurrency",
        ),
        pytest.param(
            "durability:\n  database_url: sqlite:///runs.sqlite\n  poll_s: 0\n",
            "durability.poll_s: must be greater than 0, got 0.",
            id="poll",
        ),
        pytest.param(
            "durability:\n  concurrency: 2\n",
            "durability: missing required field `database_url`.",
            id="missing-url",
        ),
    ],
)
def test_durability_problems_name_their_field(
    tmp_path: Path, durability: str, expected: str
) -> None:
    assert problems(tmp_path, durability) == [expected]


def test_an_unknown_durability_field_is_refused(tmp_path: Path) -> None:
    (found,) = problems(
        tmp_path, "durability:\n  database_url: sqlite:///runs.sqlite\n  concurency: 2\n"
    )
    assert found.startswith("durability.concurency: unknown field")


def test_defaults(tmp_path: Path) -> None:
    config = load_config(
        project_with(tmp_path, "durability:\n  database_url: sqlite:///runs.sqlite\n"),
        environ=ENVIRON,
    )
    spec = config.spec.durability
    assert spec is not None
    assert (spec.concurrency, spec.total_concurrency, spec.poll_s, spec.takeover_after_s) == (
        10,
        None,
        0.2,
        5.0,
    )
    assert spec.app_version is None
    assert config.spec.tools["charge"].idempotent is False
    assert config.spec.tools["gate"].idempotent is True


def test_the_database_url_comes_from_the_cli_then_the_environment_then_the_file(
    tmp_path: Path,
) -> None:
    config = load_config(
        project_with(tmp_path, "durability:\n  database_url: sqlite:///file.sqlite\n"),
        environ=ENVIRON,
    )
    env = {DATABASE_URL_VARIABLE: "postgresql://u:p@env-host/agents"}
    assert database_url(config, environ={}) == "sqlite:///file.sqlite"
    assert database_url(config, environ=env) == "postgresql://u:p@env-host/agents"
    assert database_url(config, "sqlite:///cli.sqlite", environ=env) == "sqlite:///cli.sqlite"
    with pytest.raises(DurabilityError) as bad:
        database_url(config, "http://example.com", environ={})
    assert str(bad.value).startswith(
        "the database URL given by --database-url cannot be used: expected a postgresql://"
    )


def test_the_database_password_is_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)
    path = project_with(
        tmp_path, "durability:\n  database_url: postgresql://agent:s3cret-pw@db:5432/agents\n"
    )
    runtime = Runtime.from_yaml(path, environ=ENVIRON, trace_path=False)
    assert runtime.redactor.text("password s3cret-pw") == "password ***"
    override = Runtime.from_yaml(
        path,
        environ=ENVIRON,
        trace_path=False,
        database_url="postgresql://agent:0ther-pw@db:5432/agents",
    )
    assert override.config.spec.durability is not None
    assert override.config.spec.durability.database_url.endswith("0ther-pw@db:5432/agents")
    assert override.redactor.text("0ther-pw") == "***"


def test_a_database_error_names_the_database_without_its_password() -> None:
    url = "postgresql://agent:s3cret-pw@db.internal:6543/agents"
    error = database_error(url, RuntimeError(f"could not connect to {url}"))
    assert "s3cret-pw" not in str(error)
    assert str(error).startswith(
        "cannot use the Postgres database 'agents' at db.internal:6543 for durable runs: "
    )
    assert describe_database("sqlite:///var/runs.sqlite") == "SQLite file var/runs.sqlite"


async def test_durable_calls_without_the_section_say_how_to_add_it(tmp_path: Path) -> None:
    path = project_with(tmp_path, "")
    expected = (
        f"{path} has no `durability:` section, which durable runs (submit, result, status, "
        "cancel, runs, worker) need. Add one with the database that queues and records them, "
        "e.g.\n  durability:\n    database_url: sqlite:///runs.sqlite   # or "
        "${DATABASE_URL} for a Postgres database (postgresql://...)"
    )
    async with Runtime.from_yaml(path, environ=ENVIRON, trace_path=False) as runtime:
        with pytest.raises(DurabilityError) as submitted:
            await runtime.submit("weather", "Hi")
        with pytest.raises(DurabilityError) as status:
            runtime.status("run-1")
        with pytest.raises(DurabilityError) as engine:
            DurableEngine(runtime)
    assert str(submitted.value) == str(status.value) == str(engine.value) == expected


def test_sessions_live_in_postgres_when_the_database_is_postgres(tmp_path: Path) -> None:
    postgres = Runtime.from_yaml(
        project_with(tmp_path / "pg", "durability:\n  database_url: postgresql://h/db\n"),
        environ=ENVIRON,
        trace_path=False,
    )
    sys.modules.pop("durable_tools")
    sqlite = Runtime.from_yaml(
        project_with(tmp_path / "lite", "durability:\n  database_url: sqlite:///runs.sqlite\n"),
        environ=ENVIRON,
        trace_path=False,
    )
    sys.modules.pop("durable_tools")
    plain = Runtime.from_yaml(project_with(tmp_path / "plain", ""), environ=ENVIRON)
    assert isinstance(postgres._sessions, DurableSessions)
    assert isinstance(postgres._sessions.inner, PostgresSessionStore)
    assert isinstance(sqlite._sessions, DurableSessions)
    assert type(sqlite._sessions.inner) is SessionStore
    assert sqlite._sessions.inner.path == tmp_path / "lite" / "sessions.sqlite3"
    assert type(plain._sessions) is SessionStore
    assert "durability" not in AGENTS
