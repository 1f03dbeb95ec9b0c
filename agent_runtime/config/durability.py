"""`durability:` in agents.yaml: where durable runs are queued and recorded, and how many run at
once. Without the section nothing is durable and nothing needs a database.

```yaml
durability:
  database_url: ${DATABASE_URL}        # postgresql://user:pass@host/db, or sqlite:///runs.sqlite
  concurrency: 10                      # runs at once per worker
  total_concurrency: 40                # runs at once across all workers (optional)
```

The database URL can be replaced when a process starts: `--database-url` (the CLI) wins over the
environment variable `AGENT_RUNTIME_DATABASE_URL`, which wins over agents.yaml
(`database_url`). Its password is a secret: the configuration's redactor masks it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from agent_runtime.errors import AgentRuntimeError

if TYPE_CHECKING:
    from agent_runtime.config.load import Config

__all__ = [
    "DATABASE_URL_VARIABLE",
    "DurabilityError",
    "DurabilitySpec",
    "database_url",
    "database_url_problem",
    "database_url_secrets",
    "default_app_version",
    "missing_section_message",
]

DATABASE_URL_VARIABLE = "AGENT_RUNTIME_DATABASE_URL"
"""The environment variable that replaces `durability.database_url`."""

_POSTGRES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_SQLITE = "sqlite:///"


class DurabilityError(AgentRuntimeError):
    """Durable runs cannot be used: agents.yaml has no `durability:` section, or its database
    cannot be used."""


def database_url_problem(url: str) -> str | None:
    """What is wrong with a durability database URL (None when it can be used)."""
    if url.startswith(_SQLITE):
        if not url.removeprefix(_SQLITE).strip():
            return "a sqlite:/// URL needs a file path, e.g. sqlite:///runs.sqlite"
        return None
    if not url.startswith(_POSTGRES):
        return (
            "expected a postgresql:// or sqlite:/// URL, e.g. "
            "postgresql://localhost:5432/agents or sqlite:///runs.sqlite"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if not parts.hostname:
        return "the URL names no host, e.g. postgresql://localhost:5432/agents"
    if not parts.path.strip("/"):
        return "the URL names no database, e.g. postgresql://localhost:5432/agents"
    return None


def _check_database_url(value: str) -> str:
    value = value.strip()
    problem = database_url_problem(value)
    if problem is not None:
        raise PydanticCustomError("database_url", problem)
    return value


def default_app_version() -> str:
    """The application version durable runs are recorded under when agents.yaml names none:
    agent-runtime's own version (a worker recovers only runs of its own version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"agent-runtime-{version('agent-runtime')}"
    except PackageNotFoundError:
        return "agent-runtime-dev"


class DurabilitySpec(BaseModel):
    """Durable runs: queued in a database, executed by workers, recorded step by step so a
    run survives the crash of the process that executes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    database_url: Annotated[str, AfterValidator(_check_database_url)] = Field(
        description="Where runs are queued and recorded: postgresql://user:password@host:port/"
        "db (several machines), or sqlite:///path (one machine). Replaced by "
        "AGENT_RUNTIME_DATABASE_URL or --database-url.",
    )
    concurrency: int = Field(default=10, ge=1, description="Runs at once in each worker process.")
    total_concurrency: int | None = Field(
        default=None, ge=1, description="Runs at once across all workers (default: no limit)."
    )
    poll_s: float = Field(
        default=0.2,
        gt=0,
        le=60,
        description="How often an idle worker looks for queued runs, in seconds.",
    )
    takeover_after_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a worker may stay silent before another worker takes over its "
        "unfinished runs, in seconds.",
    )
    app_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The version runs are recorded under; workers recover only runs of their "
        "own version. Default: agent-runtime's version. Keep it across deploys of compatible "
        "agents.yaml and tools.",
    )


def database_url(
    config: Config, override: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str:
    """The database URL of durable runs: `override` (the CLI's `--database-url`), else the
    environment variable `AGENT_RUNTIME_DATABASE_URL`, else `durability.database_url`.

    Raises:
        DurabilityError: agents.yaml has no `durability:` section, or the URL chosen is not a
            postgresql:// or sqlite:/// URL (the message says where it came from).
    """
    spec = config.spec.durability
    if spec is None:
        raise DurabilityError(missing_section_message(config.source))
    variables = os.environ if environ is None else environ
    for url, origin in (
        (override, "--database-url"),
        (variables.get(DATABASE_URL_VARIABLE), DATABASE_URL_VARIABLE),
    ):
        if url is not None and url.strip():
            url = url.strip()
            problem = database_url_problem(url)
            if problem is not None:
                raise DurabilityError(
                    f"the database URL given by {origin} cannot be used: {problem}."
                )
            return url
    return spec.database_url


def missing_section_message(source: str) -> str:
    """The error text for a durable call on a configuration without `durability:`."""
    return (
        f"{source} has no `durability:` section, which durable runs (submit, result, status, "
        "cancel, runs, worker) need. Add one with the database that queues and records them, "
        "e.g.\n  durability:\n    database_url: sqlite:///runs.sqlite   # or "
        "${DATABASE_URL} for a Postgres database (postgresql://...)"
    )


def database_url_secrets(url: str) -> list[str]:
    """The password in a database URL, as written and decoded (a user name is not a secret)."""
    from urllib.parse import unquote

    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    if not password:
        return []
    return [password, unquote(password)]
