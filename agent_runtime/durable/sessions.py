"""Sessions in Postgres: the session store of a runtime whose `durability.database_url` is
Postgres, so that workers on several machines continue the same conversations.

The same items as the SQLite store (`agent_runtime.sessions`), in tables of the durability
database: `agent_runtime_session_items` (the items of each session, in order),
`agent_runtime_session_writes` (which durable runs have stored their items: a run recovered
after a crash does not store them twice) and `agent_runtime_session_times` (when each session
was last written: retention with `sessions.keep_days`, and the newest session for `--continue`).
Appends to one session are serialised by a transaction-scoped advisory lock, so concurrent
writers never interleave or lose items. Retention runs when a store first connects, at most once
per `PRUNE_INTERVAL_S` for the whole database and by one process at a time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import Redactor
from agent_runtime.sessions import (
    DEFAULT_WRITE_TIMEOUT_S,
    PRUNE_INTERVAL_S,
    SessionStore,
    SessionWriteError,
)
from agent_runtime.text import like_escaped, valid_unicode

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
CREATE TABLE IF NOT EXISTS agent_runtime_session_times (
    session_id TEXT PRIMARY KEY,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_runtime_session_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_CONNECT_TIMEOUT_S = 10
_DAY_S = 86_400.0


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
        keep_days: forget sessions not written for this many days, when the store first
            connects (at most once per `PRUNE_INTERVAL_S` for the database); None keeps them.
    """

    def __init__(
        self,
        url: str,
        *,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
        keep_days: float | None = None,
    ) -> None:
        super().__init__(":memory:", write_timeout_s=write_timeout_s)
        self.keep_days = keep_days
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
            if self.keep_days is not None:
                self._retain(conn, self.keep_days)
        return self._conn

    def _retain(self, conn: psycopg.Connection[Any], keep_days: float) -> None:
        """Apply retention unless it was applied in the last `PRUNE_INTERVAL_S` or another
        process is applying it now; a failure leaves it to the next time."""
        import psycopg

        now = time.time()
        try:
            with conn.transaction():
                (mine,) = conn.execute(
                    "SELECT pg_try_advisory_xact_lock(hashtext('agent_runtime_session_prune'))"
                ).fetchone() or (False,)
                if not mine:
                    return
                row = conn.execute(
                    "SELECT value FROM agent_runtime_session_meta WHERE key = 'pruned_at'"
                ).fetchone()
                if row is not None and now - float(row[0]) < PRUNE_INTERVAL_S:
                    return
                _prune(conn, now - keep_days * _DAY_S, now)
        except (psycopg.Error, ValueError):
            return

    def prune_sync(self, keep_days: float, *, now: float | None = None) -> list[str]:
        """Forget the sessions not written for `keep_days` days now; their ids.

        Raises:
            AgentRuntimeError: the database cannot be reached or written.
        """
        import psycopg

        now = time.time() if now is None else now
        with self._pg_lock:
            try:
                conn = self._pg()
                with conn.transaction():
                    return _prune(conn, now - keep_days * _DAY_S, now)
            except psycopg.Error as exc:
                self._drop()
                raise AgentRuntimeError(
                    f"cannot remove old sessions from {self._where()}: "
                    f"{self._redact(_reason(exc))}."
                ) from None

    def newest(self, prefix: str = "") -> str | None:
        """The id of the session written last among those whose id starts with `prefix`;
        None when there is none.

        Raises:
            AgentRuntimeError: the database cannot be read.
        """
        import psycopg

        pattern = like_escaped(prefix) + "%"
        with self._pg_lock:
            try:
                row = (
                    self._pg()
                    .execute(
                        "SELECT session_id FROM agent_runtime_session_times "
                        "WHERE session_id LIKE %s ESCAPE '\\' "
                        "ORDER BY updated_at DESC, session_id LIMIT 1",
                        (pattern,),
                    )
                    .fetchone()
                )
            except psycopg.Error as exc:
                self._drop()
                raise AgentRuntimeError(
                    f"cannot read the sessions in {self._where()}: {self._redact(_reason(exc))}."
                ) from None
        return None if row is None else str(row[0])

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
                    conn.execute(
                        "INSERT INTO agent_runtime_session_times (session_id, updated_at) "
                        "VALUES (%s, %s) ON CONFLICT (session_id) "
                        "DO UPDATE SET updated_at = EXCLUDED.updated_at",
                        (session_id, time.time()),
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
                conn.execute(
                    "DELETE FROM agent_runtime_session_times WHERE session_id = %s",
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


def _prune(conn: psycopg.Connection[Any], before: float, now: float) -> list[str]:
    """Forget the sessions last written before `before` (in the caller's transaction); their
    ids. Sessions stored before their times were kept start counting `now`."""
    conn.execute(
        "INSERT INTO agent_runtime_session_times (session_id, updated_at) "
        "SELECT DISTINCT session_id, %s FROM agent_runtime_session_items "
        "ON CONFLICT (session_id) DO NOTHING",
        (now,),
    )
    old = [
        str(row[0])
        for row in conn.execute(
            "DELETE FROM agent_runtime_session_times WHERE updated_at < %s RETURNING session_id",
            (before,),
        ).fetchall()
    ]
    if old:
        conn.execute("DELETE FROM agent_runtime_session_items WHERE session_id = ANY(%s)", (old,))
        conn.execute("DELETE FROM agent_runtime_session_writes WHERE session_id = ANY(%s)", (old,))
    conn.execute(
        "INSERT INTO agent_runtime_session_meta (key, value) VALUES ('pruned_at', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (repr(now),),
    )
    return sorted(old)


def _password(url: str) -> list[str]:
    from agent_runtime.config.durability import database_url_secrets

    return database_url_secrets(url)


def _reason(exc: BaseException) -> str:
    """A database error's text on one line, without its final period."""
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
