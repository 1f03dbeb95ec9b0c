"""Sessions in Postgres: the session store of a runtime whose `durability.database_url` is
Postgres, so that workers on several machines continue the same conversations.

The same items as the SQLite store (`agent_runtime.sessions`), in two tables of the durability
database: `agent_runtime_session_items` (the items of each session, in order) and
`agent_runtime_session_writes` (which durable runs have stored their items: a run recovered
after a crash does not store them twice). Appends to one session are serialised by a
transaction-scoped advisory lock, so concurrent writers never interleave or lose items.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import Redactor
from agent_runtime.sessions import DEFAULT_WRITE_TIMEOUT_S, SessionStore, SessionWriteError
from agent_runtime.text import valid_unicode

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresSessionStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_runtime_session_items (
    session_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE TABLE IF NOT EXISTS agent_runtime_session_writes (
    session_id TEXT NOT NULL,
    write_key TEXT NOT NULL,
    PRIMARY KEY (session_id, write_key)
);
"""
_CONNECT_TIMEOUT_S = 10


def _plain_url(url: str) -> str:
    """A libpq URL (SQLAlchemy's `postgresql+psycopg://` spelled `postgresql://`)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


class PostgresSessionStore(SessionStore):
    """Session histories in Postgres. Thread-safe; the async methods run in a worker thread.

    Args:
        url: a postgresql:// URL.
        write_timeout_s: how long a write waits for the session's lock held by another
            writer before it fails with `SessionWriteError`.
    """

    def __init__(self, url: str, *, write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S) -> None:
        super().__init__(":memory:", write_timeout_s=write_timeout_s)
        self.url = _plain_url(url)
        self._redact = Redactor(_password(url)).text
        self._pg_lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _where(self) -> str:
        import psycopg.conninfo

        try:
            info = psycopg.conninfo.conninfo_to_dict(self.url)
        except psycopg.Error:
            return "the session database"
        return f"the session database {info.get('dbname', '')} at {info.get('host', '')}:" + str(
            info.get("port", 5432)
        )

    def _pg(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(
                    self.url, connect_timeout=_CONNECT_TIMEOUT_S, autocommit=True
                )
                with conn.transaction():
                    # CREATE TABLE IF NOT EXISTS races with itself in other connections.
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('agent_runtime_schema'))")
                    conn.execute(_SCHEMA)
            except psycopg.Error as exc:
                raise AgentRuntimeError(
                    f"cannot open {self._where()}: {self._redact(_reason(exc))}. Check "
                    "`durability.database_url` (or --database-url, AGENT_RUNTIME_DATABASE_URL) "
                    "and that Postgres is running there."
                ) from None
            self._conn = conn
        return self._conn

    def load_sync(self, session_id: str) -> list[Any]:
        import psycopg

        with self._pg_lock:
            try:
                rows = (
                    self._pg()
                    .execute(
                        "SELECT item FROM agent_runtime_session_items WHERE session_id = %s "
                        "ORDER BY position",
                        (session_id,),
                    )
                    .fetchall()
                )
            except psycopg.Error as exc:
                self._drop()
                raise AgentRuntimeError(
                    f"cannot read session {session_id!r} from {self._where()}: "
                    f"{self._redact(_reason(exc))}."
                ) from None
        return [json.loads(row[0]) for row in rows]

    def append_sync(
        self, session_id: str, items: Sequence[Any], *, timeout_s: float | None = None
    ) -> None:
        self._append(session_id, items, key=None, timeout_s=timeout_s)

    def append_once_sync(self, session_id: str, items: Sequence[Any], *, key: str) -> None:
        """Append items unless a write with this key was stored for the session before."""
        self._append(session_id, items, key=key, timeout_s=None)

    async def append_once(self, session_id: str, items: Sequence[Any], *, key: str) -> None:
        """`append_once_sync` in a worker thread."""
        import asyncio

        await asyncio.to_thread(self.append_once_sync, session_id, list(items), key=key)

    def _append(
        self, session_id: str, items: Sequence[Any], *, key: str | None, timeout_s: float | None
    ) -> None:
        import psycopg

        if not items and key is None:
            return
        rows = [valid_unicode(json.dumps(item, ensure_ascii=False)) for item in items]
        wait = self.write_timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        with self._pg_lock:
            try:
                conn = self._pg()
                with conn.transaction():
                    conn.execute(f"SET LOCAL lock_timeout = {max(int(wait * 1000), 1)}")
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext('agent_runtime_session'), "
                        "hashtext(%s))",
                        (session_id,),
                    )
                    if key is not None:
                        done = conn.execute(
                            "INSERT INTO agent_runtime_session_writes (session_id, write_key) "
                            "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                            (session_id, key),
                        )
                        if done.rowcount == 0:
                            return
                    (start,) = conn.execute(
                        "SELECT COALESCE(MAX(position) + 1, 0) FROM agent_runtime_session_items "
                        "WHERE session_id = %s",
                        (session_id,),
                    ).fetchone() or (0,)
                    with conn.cursor() as cursor:
                        cursor.executemany(
                            "INSERT INTO agent_runtime_session_items "
                            "(session_id, position, item) VALUES (%s, %s, %s)",
                            [(session_id, start + i, row) for i, row in enumerate(rows)],
                        )
            except psycopg.Error as exc:
                self._drop()
                waited = time.monotonic() - started
                raise SessionWriteError(
                    f"cannot store the new items of session {session_id!r} in {self._where()}: "
                    f"{self._redact(_reason(exc))} (after {waited:.1f} s). Check that "
                    "Postgres is reachable and has room."
                ) from None

    def clear_sync(self, session_id: str) -> None:
        with self._pg_lock:
            conn = self._pg()
            with conn.transaction():
                conn.execute(
                    "DELETE FROM agent_runtime_session_items WHERE session_id = %s", (session_id,)
                )
                conn.execute(
                    "DELETE FROM agent_runtime_session_writes WHERE session_id = %s",
                    (session_id,),
                )

    def _drop(self) -> None:
        """Forget a connection that failed (the next call opens a new one)."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        with self._pg_lock:
            self._drop()


def _password(url: str) -> list[str]:
    from agent_runtime.config.durability import database_url_secrets

    return database_url_secrets(url)


def _reason(exc: BaseException) -> str:
    """A database error's text on one line, without its final period."""
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
