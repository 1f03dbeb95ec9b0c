"""How a `Runtime` with `durability:` is put together: the database URL it uses, and its session
store (read and written in steps by durable runs)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from agent_runtime.config.durability import database_url
from agent_runtime.durable.steps import DurableSessions
from agent_runtime.sessions import SessionStore

if TYPE_CHECKING:
    from agent_runtime.config import Config

__all__ = ["durable_sessions", "with_database_url"]


def with_database_url(config: Config, override: str | None) -> Config:
    """The configuration with the database URL durable runs use in `durability.database_url`:
    `override`, else `AGENT_RUNTIME_DATABASE_URL`, else the one in agents.yaml. Its password is
    then among the configuration's secrets.

    Raises:
        DurabilityError: the URL chosen cannot be used.
    """
    spec = config.spec.durability
    if spec is None:
        return config
    url = database_url(config, override)
    if url == spec.database_url:
        return config
    durability = spec.model_copy(update={"database_url": url})
    return dataclasses.replace(
        config, spec=config.spec.model_copy(update={"durability": durability})
    )


def durable_sessions(config: Config, sessions: SessionStore | None) -> DurableSessions:
    """The session store of a runtime with `durability:`: `sessions` if given, else sessions in
    the durability database when it is Postgres, else the SQLite file of `sessions.path`;
    wrapped so that durable runs read and write it in steps."""
    spec = config.spec.durability
    assert spec is not None
    if sessions is None:
        if spec.database_url.startswith("sqlite"):
            sessions = SessionStore(config.resolve_path(config.spec.sessions.path))
        else:
            from agent_runtime.durable.sessions import PostgresSessionStore

            sessions = PostgresSessionStore(spec.database_url)
    if isinstance(sessions, DurableSessions):
        return sessions
    return DurableSessions(sessions)
