"""Fixtures of the durable-run tests: a throwaway Postgres cluster per test process, a fresh
database per test, and a `database_url` that runs a test on both SQLite and Postgres."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM
from tests.durable.postgres import PostgresCluster, start_cluster, stop_cluster
from tests.durable.workers import Workers


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test process (each xdist worker has its own); skipped when
    the server binaries are not installed."""
    try:
        cluster = start_cluster()
    except LookupError as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a database on the session's cluster, shared by the tests of this process."""
    return postgres_cluster.create_database()


@pytest.fixture
def postgres_db(postgres_cluster: PostgresCluster) -> str:
    """The URL of a new, empty database for this test alone."""
    return postgres_cluster.create_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a new SQLite database file for this test alone."""
    return f"sqlite:///{tmp_path / 'durable.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database for this test, once on SQLite and once on Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'durable.sqlite'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database()


# -- a project with `durability:` -------------------------------------------------------------

TOOLS = '''
"""Tools of the durable tests: each call appends a line to the file named by DURABLE_TOOL_LOG,
so a test counts executions; `gate` and `charge` wait until the file DURABLE_GATE exists."""

import asyncio
import os
import time
from pathlib import Path


def _log(line: str) -> None:
    with open(os.environ["DURABLE_TOOL_LOG"], "a") as file:
        file.write(line + "\\n")


async def _wait_for_gate() -> None:
    gate = Path(os.environ["DURABLE_GATE"])
    deadline = time.monotonic() + 30
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        await asyncio.sleep(0.01)


def get_weather(city: str) -> str:
    """The weather in a city."""
    _log(f"get_weather {city}")
    return '{"city": "%s", "condition": "sunny", "temperature_c": 21}' % city


def add(a: int, b: int) -> int:
    """Add two numbers."""
    _log(f"add {a} {b}")
    return a + b


async def gate(note: str) -> str:
    """Wait until the test opens the gate."""
    _log(f"gate started {note}")
    await _wait_for_gate()
    _log(f"gate done {note}")
    return f"opened {note}"


async def charge(amount: int) -> str:
    """Charge a card (waits for the gate)."""
    from agent_runtime.durable import current_step

    step = current_step()
    _log(f"charge started {amount} {step.idempotency_key if step else None}")
    await _wait_for_gate()
    _log(f"charge done {amount}")
    return f"charged {amount}"
'''

AGENTS = """
version: 1
sessions: {path: sessions.sqlite3}
tracing: {enabled: false}
backends:
  mock: {base_url: "${MOCK_URL}", model: openai/gpt-oss-20b, max_retries: 0}
tools:
  get_weather: {function: "durable_tools:get_weather"}
  add: {function: "durable_tools:add"}
  gate: {function: "durable_tools:gate", timeout_s: 60}
  charge: {function: "durable_tools:charge", timeout_s: 60, idempotent: false}
agents:
  weather:
    instructions: Answer with the weather.
    tools: [get_weather, add]
  triage:
    instructions: Hand the user to the weather agent.
    handoffs: [weather]
  waiter:
    instructions: Use the gate.
    tools: [gate, get_weather]
  payer:
    instructions: Charge the card.
    tools: [charge]
  planner:
    instructions: Ask the weather agent.
    agent_tools: [weather]
"""

DURABILITY = """
durability:
  database_url: "${DATABASE_URL}"
  poll_s: 0.05
"""


@dataclass
class Project:
    """A project folder: agents.yaml (with `durability:` unless asked not to), the tools module,
    the tool log and the gate file."""

    folder: Path
    environ: dict[str, str]

    @property
    def yaml(self) -> Path:
        return self.folder / "agents.yaml"

    @property
    def log(self) -> Path:
        return self.folder / "tools.log"

    @property
    def gate(self) -> Path:
        return self.folder / "gate"

    def tool_calls(self, prefix: str = "") -> list[str]:
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text().splitlines() if line.startswith(prefix)]

    def runtime(self, **options: Any) -> Runtime:
        options.setdefault("trace_path", False)
        return Runtime.from_yaml(self.yaml, environ=self.environ, **options)


def write_project(
    folder: Path, *, mock_url: str, database_url: str, durability: str | None = DURABILITY
) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "durable_tools.py").write_text(TOOLS)
    (folder / "agents.yaml").write_text(AGENTS + (durability or ""))
    environ = {"MOCK_URL": mock_url, "DATABASE_URL": database_url}
    return Project(folder=folder, environ=environ)


@pytest.fixture(autouse=True)
def _tools_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test imports its own `durable_tools`, logging to its own files."""
    monkeypatch.setenv("DURABLE_TOOL_LOG", str(tmp_path / "project" / "tools.log"))
    monkeypatch.setenv("DURABLE_GATE", str(tmp_path / "project" / "gate"))
    sys.modules.pop("durable_tools", None)
    yield
    sys.modules.pop("durable_tools", None)


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, mock: MockVLLM, database_url: str) -> Project:
    """The durable test project on a fresh database (once SQLite, once Postgres)."""
    return write_project(tmp_path / "project", mock_url=mock.url, database_url=database_url)


@pytest.fixture
def workers() -> Iterator[Workers]:
    """Worker processes a test starts (`workers.start(...)`), stopped after it."""
    started = Workers()
    try:
        yield started
    finally:
        started.close()
