"""Conversation memory across runs, in SQLite: each session is the list of items to resend.

Items are stored as the Responses-API input items the SDK resends (user messages, reasoning with
its text, function calls, their outputs, assistant messages). A run appends its new items in one
transaction, so the stored history is always a consistent transcript. Runs of one session take
turns (`SessionStore.hold`), so each starts from the history the one before it left.

Text is stored as valid UTF-8: a lone surrogate (a file name that is not UTF-8, as `os.listdir`
returns it, or `"\\ud800"` written by the model) is stored as U+FFFD, as the backends send it.
A write waits up to `write_timeout_s` for a lock another connection or process holds, then
fails with `SessionWriteError`; the runtime then keeps the run's answer and reports the failure.

Each session's last write is timed (`session_times`): with `keep_days` (`sessions.keep_days`),
sessions not written for that many days are forgotten when the store is opened, at most once an
hour per file (a session stored before times were kept counts from the first opening that
sees it). `SessionStore.newest` finds the session written last (`run --continue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.text import like_escaped, valid_unicode

__all__ = [
    "DEFAULT_WRITE_TIMEOUT_S",
    "PRUNE_INTERVAL_S",
    "SessionStore",
    "SessionWriteError",
    "consistent_prefix",
    "input_items",
    "produced_items",
]

DEFAULT_WRITE_TIMEOUT_S = 10.0
"""Seconds a session write waits for a database locked by another connection, by default."""

_RETRY_PAUSE_S = 0.05

PRUNE_INTERVAL_S = 3600.0
"""Retention (`keep_days`) is applied at most this often per file."""

_DAY_S = 86_400.0


class SessionWriteError(AgentRuntimeError):
    """A session's new items could not be stored (the database locked, the disk full...)."""


def _stored_text(item: Any) -> str:
    """An item as the JSON text stored: lone surrogates, which UTF-8 cannot encode, as U+FFFD."""
    return valid_unicode(json.dumps(item, ensure_ascii=False))


def _is_busy(error: sqlite3.Error) -> bool:
    """The database is locked by another connection (worth trying again)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_items (
    session_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE TABLE IF NOT EXISTS session_times (
    session_id TEXT PRIMARY KEY,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS session_times_by_time ON session_times (updated_at);
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _kind(item: Any) -> str:
    if not isinstance(item, dict):
        return "other"
    return str(item.get("type") or ("message" if "role" in item else "other"))


def consistent_prefix(items: Sequence[Any], *, pending: Collection[str] = ()) -> list[Any]:
    """The longest prefix of `items` that can be resent as it is.

    Every function call in it has its output in it (vLLM refuses an output without its call, and
    the model would wait for an output that never comes), and it does not end with reasoning (a
    reasoning item must be followed by what it led to). Calls whose id is in `pending` (of
    client tools, whose outputs the next run brings) may stay without their output.
    """
    open_calls: set[Any] = set()
    cut = 0
    for index, item in enumerate(items):
        kind = _kind(item)
        if kind == "function_call" and item.get("call_id") not in pending:
            open_calls.add(item.get("call_id"))
        elif kind == "function_call_output":
            open_calls.discard(item.get("call_id"))
        if not open_calls and kind != "reasoning":
            cut = index + 1
    return list(items[:cut])


def input_items(run_items: Iterable[Any]) -> list[Any]:
    """SDK run items as the input items to resend, up to the first one that cannot be resent."""
    produced: list[Any] = []
    for item in run_items:
        try:
            produced.append(item.to_input_item())
        except Exception:  # an item the SDK cannot replay: stop at the last good one
            break
    return produced


def produced_items(exc: BaseException) -> list[Any]:
    """The input items a failed run had produced before it failed (from the SDK's error)."""
    run_data = getattr(exc, "run_data", None)
    if run_data is None:
        return []
    return input_items(run_data.new_items)


@dataclass(slots=True)
class _Turns:
    """Who holds a session, and how many runs hold it or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class SessionStore:
    """SQLite-backed session histories. Thread-safe; the async methods run in a worker thread.

    Args:
        path: the database file (created with its folder when missing).
        write_timeout_s: how long a write waits, in all, for a database that another
            connection or process has locked, before it fails with `SessionWriteError`.
        keep_days: forget sessions not written for this many days, when the store is opened
            (at most once per `PRUNE_INTERVAL_S`); None keeps them.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
        keep_days: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.write_timeout_s = write_timeout_s
        self.keep_days = keep_days
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._turns: dict[tuple[asyncio.AbstractEventLoop, str], _Turns] = {}

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        """Hold a session for one run: the runs of a session in this process (on one event
        loop) take turns, first come first served, so each one loads the history the one
        before it stored. Runs of other sessions are not held up.

        A run that holds its session must not wait for another run of the same session
        (a tool starting one, say): it would wait for itself.
        """
        key = (asyncio.get_running_loop(), session_id)
        turns = self._turns.get(key)
        if turns is None:
            turns = self._turns[key] = _Turns()
        turns.users += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.users -= 1
            if not turns.users:
                del self._turns[key]

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                if str(self.path) != ":memory:":
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(
                    self.path, check_same_thread=False, isolation_level=None
                )
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.execute("PRAGMA synchronous=NORMAL")
                    connection.executescript(_SCHEMA)
                except BaseException:
                    connection.close()
                    raise
            except (OSError, sqlite3.Error) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise AgentRuntimeError(
                    f"cannot open the session database {self.path}: {reason}. Set "
                    "`sessions.path` in agents.yaml to a file in a folder you can write to."
                ) from exc
            self._connection = connection
            if self.keep_days is not None:
                self._prune_now_and_then(connection, self.keep_days)
        return self._connection

    def _prune_now_and_then(self, connection: sqlite3.Connection, keep_days: float) -> None:
        """Apply retention unless it was applied in the last `PRUNE_INTERVAL_S`; a failure
        (the database locked) leaves it to the next opening."""
        now = time.time()
        try:
            row = connection.execute(
                "SELECT value FROM store_meta WHERE key = 'pruned_at'"
            ).fetchone()
            if row is not None and now - float(row[0]) < PRUNE_INTERVAL_S:
                return
            # Opening must not wait long for another process's lock: retention can wait.
            connection.execute("PRAGMA busy_timeout = 200")
            try:
                self._prune(connection, now - keep_days * _DAY_S, now)
            finally:
                connection.execute("PRAGMA busy_timeout = 5000")
        except (sqlite3.Error, ValueError):
            return

    @staticmethod
    def _prune(connection: sqlite3.Connection, before: float, now: float) -> list[str]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Sessions stored before their times were kept start counting now.
            connection.execute(
                "INSERT OR IGNORE INTO session_times (session_id, updated_at) "
                "SELECT DISTINCT session_id, ? FROM session_items",
                (now,),
            )
            old = [
                row[0]
                for row in connection.execute(
                    "SELECT session_id FROM session_times WHERE updated_at < ?", (before,)
                )
            ]
            connection.executemany(
                "DELETE FROM session_items WHERE session_id = ?", [(name,) for name in old]
            )
            connection.execute("DELETE FROM session_times WHERE updated_at < ?", (before,))
            connection.execute(
                "INSERT OR REPLACE INTO store_meta (key, value) VALUES ('pruned_at', ?)",
                (repr(now),),
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return old

    def prune_sync(self, keep_days: float, *, now: float | None = None) -> list[str]:
        """Forget the sessions not written for `keep_days` days now; their ids.

        Raises:
            AgentRuntimeError: the database cannot be opened or written.
        """
        now = time.time() if now is None else now
        with self._lock:
            try:
                return self._prune(self._connect(), now - keep_days * _DAY_S, now)
            except sqlite3.Error as exc:
                raise AgentRuntimeError(
                    f"cannot remove old sessions from {self.path}: {exc}. Check that no other "
                    "program holds the database locked."
                ) from exc

    def newest(self, prefix: str = "") -> str | None:
        """The id of the session written last among those whose id starts with `prefix`;
        None when there is none.

        Raises:
            AgentRuntimeError: the database cannot be read.
        """
        pattern = like_escaped(prefix) + "%"
        with self._lock:
            try:
                row = (
                    self._connect()
                    .execute(
                        "SELECT session_id FROM session_times WHERE session_id LIKE ? ESCAPE '\\' "
                        "ORDER BY updated_at DESC, rowid DESC LIMIT 1",
                        (pattern,),
                    )
                    .fetchone()
                )
            except sqlite3.Error as exc:
                raise AgentRuntimeError(
                    f"cannot read the sessions in {self.path}: {exc}. Check that no other "
                    "program holds the database locked."
                ) from exc
        return None if row is None else str(row[0])

    def load_sync(self, session_id: str) -> list[Any]:
        """The stored items of a session, oldest first (empty for a new session).

        Raises:
            AgentRuntimeError: the database cannot be read.
        """
        with self._lock:
            try:
                rows = self._connect().execute(
                    "SELECT item FROM session_items WHERE session_id = ? ORDER BY position",
                    (session_id,),
                )
                return [json.loads(row[0]) for row in rows]
            except sqlite3.Error as exc:
                raise AgentRuntimeError(
                    f"cannot read session {session_id!r} from {self.path}: {exc}. Check that "
                    "no other program holds the database locked."
                ) from exc

    def append_sync(
        self, session_id: str, items: Sequence[Any], *, timeout_s: float | None = None
    ) -> None:
        """Append items to a session in one transaction, waiting up to `timeout_s` (default
        `write_timeout_s`) for a lock held elsewhere.

        Raises:
            SessionWriteError: nothing was stored (the database stayed locked, or failed).
        """
        if not items:
            return
        rows = [_stored_text(item) for item in items]
        wait = self.write_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                try:
                    connection = self._connect()
                    left = max(deadline - time.monotonic(), 0.0)
                    connection.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")
                    self._insert(connection, session_id, rows)
                    return
                except sqlite3.Error as exc:
                    if _is_busy(exc) and time.monotonic() < deadline:
                        time.sleep(_RETRY_PAUSE_S)
                        continue
                    waited = f" after waiting {wait:g} s" if _is_busy(exc) else ""
                    raise SessionWriteError(
                        f"cannot store the new items of session {session_id!r} in "
                        f"{self.path}: {exc}{waited}. Check that no other program holds the "
                        "database locked, and that its disk has room."
                    ) from exc

    @staticmethod
    def _insert(connection: sqlite3.Connection, session_id: str, rows: list[str]) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            (start,) = connection.execute(
                "SELECT COALESCE(MAX(position) + 1, 0) FROM session_items WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            connection.executemany(
                "INSERT INTO session_items (session_id, position, item) VALUES (?, ?, ?)",
                [(session_id, start + offset, row) for offset, row in enumerate(rows)],
            )
            connection.execute(
                "INSERT OR REPLACE INTO session_times (session_id, updated_at) VALUES (?, ?)",
                (session_id, time.time()),
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def clear_sync(self, session_id: str) -> None:
        """Forget a session."""
        with self._lock:
            connection = self._connect()
            connection.execute("DELETE FROM session_items WHERE session_id = ?", (session_id,))
            connection.execute("DELETE FROM session_times WHERE session_id = ?", (session_id,))

    async def load(self, session_id: str) -> list[Any]:
        """`load_sync` in a worker thread."""
        return await asyncio.to_thread(self.load_sync, session_id)

    async def append(self, session_id: str, items: Sequence[Any]) -> None:
        """`append_sync` in a worker thread."""
        await asyncio.to_thread(self.append_sync, session_id, list(items))

    async def clear(self, session_id: str) -> None:
        """`clear_sync` in a worker thread."""
        await asyncio.to_thread(self.clear_sync, session_id)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
