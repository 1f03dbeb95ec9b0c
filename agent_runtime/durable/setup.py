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

__all__ = ["durable_sessions", "session_store", "with_database_url"]


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


def session_store(config: Config) -> SessionStore:
    """Where a runtime of `config` keeps its sessions, with `sessions.keep_days`: in the
    durability database when `durability.database_url` is Postgres (pass the configuration
    through `with_database_url` first, as `Runtime` does), else in the SQLite file of
    `sessions.path`."""
    keep_days = config.spec.sessions.keep_days
    spec = config.spec.durability
    url = spec.database_url if spec is not None else "sqlite"
    if url.startswith("sqlite"):
        return SessionStore(config.resolve_path(config.spec.sessions.path), keep_days=keep_days)
    from agent_runtime.durable.sessions import PostgresSessionStore

    return PostgresSessionStore(url, keep_days=keep_days)


def durable_sessions(config: Config, sessions: SessionStore | None) -> DurableSessions:
    """The session store of a runtime with `durability:`: `sessions` if given, else
    `session_store(config)`; wrapped so that durable runs read and write it in steps."""
    spec = config.spec.durability
    assert spec is not None
    if sessions is None:
        sessions = session_store(config)
    if isinstance(sessions, DurableSessions):
        return sessions
    return DurableSessions(sessions)
