"""The run log: every run and its trace records in one SQLite file, to list, search and replay.

`tracing.path` (default `.agent-runtime/runs.sqlite3`, next to the sessions) names the file when
it ends in `.sqlite3`, `.sqlite` or `.db`. It holds two tables:

- `runs`: one row per run — trace id, agent, session, the user's input text (only with
  `tracing.include_sensitive_data: true`), outcome, turns, tokens, start time and duration —
  indexed by time, agent and session;
- `records`: every trace record of every run (`run_start`, `model_call`, `tool_call`,
  `handoff`, `retry`, ..., `run_end`) as JSON, in the order written.

The file is opened in WAL mode without an fsync per write (`synchronous=NORMAL`), so a record
costs a few tens of microseconds; several processes (the workers of `serve`, the CLI) may write
the same file, each waiting a moment for the others' locks. Runs older than `keep_days` are
removed when a writer opens the file, at most once an hour per file (`RunLog.prune` does it at
once, as `agent-runtime logs --prune` does).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.text import like_escaped, valid_unicode, valid_unicode_json

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "PRUNE_INTERVAL_S",
    "SQLITE_SUFFIXES",
    "LoggedRun",
    "Pruned",
    "RunLog",
    "RunLogError",
    "RunNotFoundError",
    "busy",
    "input_text",
    "is_run_log",
]

SQLITE_SUFFIXES = (".sqlite3", ".sqlite", ".db")
"""A `tracing.path` ending in one of these is a run log; any other is a JSON-lines file."""

DEFAULT_BUSY_TIMEOUT_S = 2.0
"""How long a write waits for a lock another connection or process holds."""

PRUNE_INTERVAL_S = 3600.0
"""Retention is applied at most this often per file (when a writer opens it)."""

_DAY_S = 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    trace_id TEXT PRIMARY KEY,
    run_id TEXT,
    session TEXT,
    agent TEXT NOT NULL DEFAULT '',
    input TEXT,
    output TEXT,
    outcome TEXT,
    error TEXT,
    final_agent TEXT,
    turns INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    started_at REAL NOT NULL,
    duration_ms REAL
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_by_agent ON runs (agent, started_at);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs (session, started_at);
CREATE INDEX IF NOT EXISTS runs_by_run_id ON runs (run_id);
CREATE TABLE IF NOT EXISTS records (
    trace_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    time REAL NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (trace_id, seq)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_RUN_COLUMNS = (
    "trace_id, run_id, session, agent, input, output, outcome, error, final_agent, turns, "
    "input_tokens, output_tokens, started_at, duration_ms"
)


class RunLogError(AgentRuntimeError):
    """The run log cannot be read or written (missing, locked, not a database...)."""


class RunNotFoundError(RunLogError):
    """No run in the run log has the id asked for, or several start with it (`RunLog.find`)."""


def is_run_log(path: str | Path) -> bool:
    """Whether `tracing.path` names a SQLite run log (by its suffix) rather than a JSONL file."""
    return Path(path).suffix.lower() in SQLITE_SUFFIXES


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedRun:
    """One row of the run log: a run, as far as it got."""

    trace_id: str
    agent: str
    started_at: float
    """When the run started (Unix seconds)."""
    session: str | None = None
    run_id: str | None = None
    input: str | None = None
    """The user's input text; None when it was not recorded (sensitive data off)."""
    output: str | None = None
    """The final output as text; None when not recorded or not reached."""
    outcome: str | None = None
    """`completed`, `failed`, `cancelled`, `awaiting_approval`; None: no end recorded (still
    running, or its process died)."""
    error: str | None = None
    final_agent: str | None = None
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    duration_ms: float | None = None

    @property
    def tokens(self) -> int | None:
        """Input and output tokens of the run, None when its end was not recorded."""
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON values."""
        return {
            "trace_id": self.trace_id,
            "run_id": self.run_id,
            "agent": self.agent,
            "session": self.session,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "outcome": self.outcome,
            "error": self.error,
            "final_agent": self.final_agent,
            "turns": self.turns,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input": self.input,
            "output": self.output,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Pruned:
    """What `RunLog.prune` removed."""

    runs: int
    records: int
    before: float
    """Runs that started before this time (Unix seconds) were removed."""


def input_text(items: object) -> str | None:
    """The user's text in a run's input (a string, or input items): the user messages' text,
    joined by newlines; None when there is none (not recorded)."""
    if isinstance(items, str):
        return items
    if not isinstance(items, list):
        return None
    texts: list[str] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                str(part["text"])
                for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            )
    return "\n".join(texts) if texts else None


def _output_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _text_or_none(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else _output_text(value)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number_or_none(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _is_busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


class RunLog:
    """A SQLite run log. Thread-safe (one connection, used under a lock).

    Args:
        path: the database file; a writer creates it (and its folder) when missing.
        keep_days: runs older than this are removed when the file is opened for writing (at
            most once per `PRUNE_INTERVAL_S`); None keeps them.
        busy_timeout_s: how long a statement waits for a lock held by another connection.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        keep_days: float | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self.keep_days = keep_days
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    # -- opening --------------------------------------------------------------------------------

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        """The connection, opened (and the schema made) on first use.

        Raises:
            RunLogError: `create` is false and there is no file; or it cannot be opened.
            OSError, sqlite3.Error: from making the folder or the schema (a writer reports them).
        """
        if self._connection is not None:
            return self._connection
        if not create and not self.path.is_file():
            raise RunLogError(
                f"there is no run log at {self.path} yet: runs are logged there once an agent "
                "has run with `tracing.path` pointing to it."
            )
        if create:
            if self.path.is_dir():
                raise IsADirectoryError(21, "Is a directory")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_s,
            check_same_thread=False,
            isolation_level=None,
        )
        try:
            # New files keep freed pages reusable and can give them back after a prune.
            connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        if create and self.keep_days is not None:
            self._prune_now_and_then(connection, self.keep_days)
        return connection

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._connect(create=False)
            except sqlite3.Error as exc:
                raise RunLogError(
                    f"cannot read the run log {self.path}: {exc}. Check that it is a run log "
                    "(`tracing.path`) and that no other program holds it locked."
                ) from exc

    # -- writing --------------------------------------------------------------------------------

    def add(self, record: Mapping[str, Any], text: str) -> None:
        """Store one trace record (`text` is its JSON) and keep its run's row up to date.

        Raises:
            OSError, sqlite3.Error: the file could not be opened or written (the caller decides
                whether that stops a run: `TraceWriter` only warns).
        """
        # SQLite takes valid UTF-8 only: a lone surrogate becomes U+FFFD in the columns (a
        # `TraceWriter` gives `text` with it as a JSON escape).
        trace_id = valid_unicode(str(record.get("trace_id") or ""))
        kind = valid_unicode(str(record.get("type") or ""))
        text = valid_unicode(text)
        at = record.get("time")
        at = float(at) if isinstance(at, int | float) else time.time()
        insert = (
            "INSERT INTO records (trace_id, seq, type, time, record) SELECT ?, "
            "COALESCE(MAX(seq) + 1, 0), ?, ?, ? FROM records WHERE trace_id = ?"
        )
        values = (trace_id, kind, at, text, trace_id)
        with self._lock:
            connection = self._connect(create=True)
            if kind not in ("run_start", "run_end"):
                connection.execute(insert, values)  # one statement: its own transaction
                return
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(insert, values)
                if kind == "run_start":
                    self._start(connection, valid_unicode_json(record), trace_id, at)
                elif kind == "run_end":
                    self._end(connection, valid_unicode_json(record), trace_id)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    @staticmethod
    def _start(
        connection: sqlite3.Connection, record: Mapping[str, Any], trace_id: str, at: float
    ) -> None:
        session = record.get("session")
        run_id = record.get("run_id")
        connection.execute(
            "INSERT OR IGNORE INTO runs (trace_id, run_id, session, agent, input, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                trace_id,
                run_id if isinstance(run_id, str) else None,
                session if isinstance(session, str) else None,
                str(record.get("agent") or ""),
                input_text(record.get("input")),
                at,
            ),
        )

    @staticmethod
    def _end(connection: sqlite3.Connection, record: Mapping[str, Any], trace_id: str) -> None:
        usage = record.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        connection.execute(
            "UPDATE runs SET outcome = ?, error = ?, final_agent = ?, turns = ?, "
            "input_tokens = ?, output_tokens = ?, duration_ms = ?, output = ? "
            "WHERE trace_id = ?",
            (
                _text_or_none(record.get("outcome")),
                _text_or_none(record.get("error")),
                _text_or_none(record.get("agent")),
                _int_or_none(record.get("turns")),
                _int_or_none(usage.get("input_tokens")),
                _int_or_none(usage.get("output_tokens")),
                _number_or_none(record.get("duration_ms")),
                _output_text(record.get("final_output")),
                trace_id,
            ),
        )

    # -- retention ------------------------------------------------------------------------------

    def _prune_now_and_then(self, connection: sqlite3.Connection, keep_days: float) -> None:
        """Apply retention if nobody did in the last `PRUNE_INTERVAL_S` (a failure is left to
        the next opening: retention never stops a run)."""
        now = time.time()
        try:
            row = connection.execute("SELECT value FROM meta WHERE key = 'pruned_at'").fetchone()
            if row is not None and now - float(row[0]) < PRUNE_INTERVAL_S:
                return
            self._prune(connection, now - keep_days * _DAY_S, now)
        except (sqlite3.Error, ValueError):
            return

    def prune(self, keep_days: float, *, now: float | None = None) -> Pruned:
        """Remove the runs that started more than `keep_days` days ago, with their records.

        Raises:
            RunLogError: there is no run log, or it cannot be written.
        """
        now = time.time() if now is None else now
        with self._reading() as connection:
            return self._prune(connection, now - keep_days * _DAY_S, now)

    @staticmethod
    def _prune(connection: sqlite3.Connection, before: float, now: float) -> Pruned:
        connection.execute("BEGIN IMMEDIATE")
        try:
            records = connection.execute(
                "DELETE FROM records WHERE trace_id IN "
                "(SELECT trace_id FROM runs WHERE started_at < ?)",
                (before,),
            ).rowcount
            runs = connection.execute("DELETE FROM runs WHERE started_at < ?", (before,)).rowcount
            connection.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('pruned_at', ?)", (repr(now),)
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if runs:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("PRAGMA incremental_vacuum")
        return Pruned(runs=runs, records=records, before=before)

    # -- reading --------------------------------------------------------------------------------

    def runs(
        self,
        *,
        limit: int = 20,
        agent: str | None = None,
        session: str | None = None,
        search: str | None = None,
    ) -> list[LoggedRun]:
        """The most recent runs, newest first; `search` finds text in their input or output
        (case-insensitive for ASCII).

        Raises:
            RunLogError: there is no run log, or it cannot be read.
        """
        where: list[str] = []
        values: list[Any] = []
        if agent is not None:
            where.append("agent = ?")
            values.append(agent)
        if session is not None:
            where.append("session = ?")
            values.append(session)
        if search is not None:
            pattern = "%" + like_escaped(search)
            where.append("(input LIKE ? ESCAPE '\\' OR output LIKE ? ESCAPE '\\')")
            values.extend([pattern + "%", pattern + "%"])
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs {clause}"
                "ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (*values, limit),
            ).fetchall()
        return [_logged(row) for row in rows]

    def find(self, reference: str) -> LoggedRun:
        """The run with this trace id, run id, or a unique prefix of one (`trace_` may be left
        out).

        Raises:
            RunNotFoundError: no run matches, or several do.
            RunLogError: there is no run log, or it cannot be read.
        """
        reference = reference.strip()
        candidates = [reference]
        if not reference.startswith("trace_"):
            candidates.append(f"trace_{reference}")
        with self._reading() as connection:
            for candidate in candidates:
                for column in ("trace_id", "run_id"):  # each by its index
                    row = connection.execute(
                        f"SELECT {_RUN_COLUMNS} FROM runs WHERE {column} = ?", (candidate,)
                    ).fetchone()
                    if row is not None:
                        return _logged(row)
            matches: list[Any] = []
            if reference:
                for candidate in candidates:
                    # A prefix as a range of the index: every text that starts with it sorts
                    # between it and it followed by the highest code point.
                    for column in ("trace_id", "run_id"):
                        matches.extend(
                            connection.execute(
                                f"SELECT {_RUN_COLUMNS} FROM runs WHERE {column} >= ? "
                                f"AND {column} < ? ORDER BY {column} LIMIT 6",
                                (candidate, candidate + "\U0010ffff"),
                            ).fetchall()
                        )
        found = {row[0]: row for row in matches}
        if len(found) == 1:
            return _logged(next(iter(found.values())))
        if not found:
            raise RunNotFoundError(
                f"no run {reference!r} in the run log {self.path}. `agent-runtime logs` lists "
                "the recent runs with their trace ids."
            )
        shown = ", ".join(sorted(found)[:5])
        raise RunNotFoundError(
            f"{reference!r} is the start of several runs' ids ({shown}"
            f"{', ...' if len(found) > 5 else ''}); give more of the id."
        )

    def records(self, trace_id: str) -> list[dict[str, Any]]:
        """A run's trace records, in the order written.

        Raises:
            RunLogError: there is no run log, or it cannot be read.
        """
        with self._reading() as connection:
            rows = connection.execute(
                "SELECT record FROM records WHERE trace_id = ? ORDER BY seq", (trace_id,)
            ).fetchall()
        found: list[dict[str, Any]] = []
        for (text,) in rows:
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
        return found

    def close(self) -> None:
        """Close the connection (opened again when used)."""
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.close()
                self._connection = None


def _logged(row: Sequence[Any]) -> LoggedRun:
    (
        trace_id,
        run_id,
        session,
        agent,
        input,
        output,
        outcome,
        error,
        final_agent,
        turns,
        input_tokens,
        output_tokens,
        started_at,
        duration_ms,
    ) = row
    return LoggedRun(
        trace_id=trace_id,
        run_id=run_id,
        session=session,
        agent=agent,
        input=input,
        output=output,
        outcome=outcome,
        error=error,
        final_agent=final_agent,
        turns=turns,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        started_at=started_at,
        duration_ms=duration_ms,
    )


def busy(error: BaseException) -> bool:
    """Whether a write failed only because another connection held the file locked."""
    return isinstance(error, sqlite3.Error) and _is_busy(error)
