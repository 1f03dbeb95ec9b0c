"""The durable worker: a process that executes queued runs, beats a heartbeat into the
database, and takes over the runs of workers that stopped beating.

Open-source DBOS recovers a crashed executor's workflows only when a process with the same
executor id starts again (or its paid control plane tells another one to). That needs stable
ids per machine, and a machine that is gone never comes back. Instead each worker here gets a
fresh executor id and keeps a row of its own in the table `agent_runtime_workers`, in the
same database as the runs:

- every `HEARTBEAT_S` (1 s) a thread of its own writes the database's clock into the row (a
  thread, so that a busy event loop or a tool that blocks it does not look like a death);
- on the same beat it looks for rows silent for more than `takeover_after_s`. Holding a lock
  (Postgres: `pg_try_advisory_xact_lock` for the whole takeover; SQLite: one transaction
  claims the rows) so that one worker takes them, it hands their pending runs back to the
  queue with DBOS's recovery (`recover_runs`), then deletes the rows. Recovery is idempotent
  in DBOS (a run is re-queued only while still pending on the dead executor), so a takeover
  repeated after a crash half-way does no harm. Any live worker then picks the runs up: their
  finished steps are replayed from the database, the step in flight at the death runs again.
- times are the database's clock (`clock_timestamp()`, SQLite's `julianday('now')`), so
  machines whose clocks disagree do not take each other's runs.

Stopping: a worker stops taking runs and lets those in flight finish for a grace period
(`Worker.drain`); the runs still going then are cancelled and stay unfinished in the database.
As it ends, it marks its row as silent since the epoch: the next beat of another worker (or of
the next worker to start, when none is running) takes over whatever it left, and deletes the
row. (Deciding "nothing left, delete the row" in the stopping worker itself would race with a
run dispatched while its engine stopped.)

A worker whose own row was taken over while it ran (it was silent for longer than
`takeover_after_s`: a database outage, a machine frozen) has had its runs handed to others:
`Heartbeat.lost` is set and the worker stops at once, without draining, so that no run
executes in two places for longer than needed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

from agent_runtime.redact import own_logger

if TYPE_CHECKING:
    import sqlalchemy

    from agent_runtime.durable import DurableEngine
    from agent_runtime.runtime import Runtime

__all__ = [
    "DBOS_VERSIONS",
    "HEARTBEAT_S",
    "TABLE",
    "Heartbeat",
    "Worker",
    "WorkerRow",
    "database_engine",
    "display_url",
    "new_executor_id",
    "recover_runs",
]

logger = own_logger(__name__)

HEARTBEAT_S = 1.0
"""How often a worker writes its heartbeat and looks for silent workers."""

_CLOSE_MARGIN_S = 60.0
"""How much longer than the drain's grace the engine's own close may wait for runs."""

TABLE = "agent_runtime_workers"
"""The table of worker heartbeats, in the database of `durability.database_url`."""

DBOS_VERSIONS = ((3, 4), (3, 5))
"""The DBOS releases `recover_runs` is checked against: from 3.4 up to, not including, 3.5."""

_LOCK_KEY = 0x6167656E7472
"""The Postgres advisory lock that one takeover at a time holds ("agentr" in ASCII)."""


def recover_runs(executor_ids: Sequence[str]) -> int:
    """Hand the pending runs of the executors `executor_ids` (workers found dead) back to the
    queue, for any live worker to pick up; the number of runs handed back.

    DBOS's own recovery of another executor's workflows is the internal
    `DBOS._recover_pending_workflows`: the open-source engine has no public call for it (its
    control plane uses this one). It is called here and nowhere else. Checked against dbos 3.4
    (`DBOS_VERSIONS`): it re-queues each workflow still PENDING on one of `executor_ids` at this
    process's application version, and does nothing for one already picked up again, so two
    workers recovering the same executor do no harm. Outside the checked versions it raises
    rather than guess.

    Runs in a process where DBOS is launched (a worker).
    """
    from dbos import DBOS

    _check_dbos_version()
    handles = DBOS._recover_pending_workflows(list(executor_ids))
    return len(handles)


def _check_dbos_version() -> None:
    from importlib.metadata import version

    from agent_runtime.config.durability import DurabilityError

    installed = version("dbos")
    numbers = tuple(int(part) for part in installed.split(".")[:2] if part.isdigit())
    low, high = DBOS_VERSIONS
    if not low <= numbers < high:
        raise DurabilityError(
            f"dbos {installed} is installed, but taking over the runs of a dead worker is "
            f"checked against dbos >={'.'.join(map(str, low))},<{'.'.join(map(str, high))} "
            "only. Install a checked version: pip install 'agent-runtime[durable]'."
        )


def database_engine(database_url: str) -> sqlalchemy.Engine:
    """A small SQLAlchemy engine on the runs' database for the heartbeat table (psycopg for
    Postgres, as DBOS uses)."""
    import sqlalchemy

    url = sqlalchemy.make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
        return sqlalchemy.create_engine(
            url, pool_size=2, max_overflow=2, connect_args={"connect_timeout": 10}
        )
    return sqlalchemy.create_engine(url, connect_args={"timeout": 30})


def display_url(url: str) -> str:
    """`url` with its password masked (`postgresql://app:***@db:5432/runs`), for messages."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    masked = f"{name}:***" if ":" in user else name
    return urlunsplit(parts._replace(netloc=f"{masked}@{host}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRow:
    """One worker as its heartbeat row shows it."""

    executor_id: str
    host: str
    pid: int
    concurrency: int
    started_at: float
    """The database's clock when the worker started (seconds since the epoch)."""
    silent_s: float
    """Seconds since its last heartbeat, by the database's clock."""


class Heartbeat:
    """The heartbeat row of one worker, and the takeover of silent workers' runs.

    ```python
    beat = Heartbeat(engine, executor_id="w-1f3a", concurrency=10, takeover_after_s=5)
    beat.register()            # the row exists before the worker takes any run
    beat.start()               # a thread beats every `interval_s`, takes over silent workers
    ...
    beat.stop(hand_over=True)  # row marked silent: another worker takes over what is left
    ```

    Args:
        engine: a SQLAlchemy engine on the runs' database (Postgres or SQLite).
        executor_id: this worker's DBOS executor id.
        concurrency: runs at once in this worker (shown by `rows()`).
        takeover_after_s: a worker silent for longer than this is taken over.
        interval_s: the beat.
        recover: hands the runs of dead executors back to the queue (`recover_runs`).
        on_lost: called (on the heartbeat's thread) when this worker's runs were taken over.
    """

    def __init__(
        self,
        engine: sqlalchemy.Engine,
        *,
        executor_id: str,
        concurrency: int,
        takeover_after_s: float,
        interval_s: float = HEARTBEAT_S,
        recover: Callable[[Sequence[str]], int] = recover_runs,
        on_lost: Callable[[], object] | None = None,
    ) -> None:
        self.engine = engine
        self.executor_id = executor_id
        self.concurrency = concurrency
        self.takeover_after_s = takeover_after_s
        self.interval_s = interval_s
        self._recover = recover
        self._on_lost = on_lost
        self._postgres = engine.dialect.name == "postgresql"
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = threading.Event()
        """Set when another worker took this one's runs over (its row disappeared)."""
        self.taken_over: list[tuple[str, int]] = []
        """(executor id, runs handed back) for each worker this one took over."""

    # -- SQL ------------------------------------------------------------------------------------

    @property
    def _now(self) -> str:
        if self._postgres:
            return "extract(epoch from clock_timestamp())"
        return "((julianday('now') - 2440587.5) * 86400.0)"

    def _execute(self, connection: sqlalchemy.Connection, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        return connection.execute(text(sql), params)

    def create_table(self) -> None:
        """Create the heartbeat table when it does not exist yet."""
        real = "double precision" if self._postgres else "real"
        with self.engine.begin() as connection:
            if self._postgres:
                # Two workers starting at once would both try to create the table.
                self._execute(connection, "SELECT pg_advisory_xact_lock(:key)", key=_LOCK_KEY)
            self._execute(
                connection,
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                "executor_id text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL, "
                f"concurrency integer NOT NULL, started_at {real} NOT NULL, "
                f"beat_at {real} NOT NULL)",
            )

    def register(self) -> None:
        """Create the table if needed and write this worker's first heartbeat."""
        self.create_table()
        with self.engine.begin() as connection:
            self._execute(
                connection,
                f"INSERT INTO {TABLE} (executor_id, host, pid, concurrency, started_at, beat_at) "
                f"VALUES (:id, :host, :pid, :concurrency, {self._now}, {self._now})",
                id=self.executor_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                concurrency=self.concurrency,
            )

    def beat(self) -> bool:
        """Write this worker's heartbeat; False when its row is gone (taken over)."""
        with self.engine.begin() as connection:
            result = self._execute(
                connection,
                f"UPDATE {TABLE} SET beat_at = {self._now} WHERE executor_id = :id",
                id=self.executor_id,
            )
            return bool(result.rowcount)

    def rows(self) -> list[WorkerRow]:
        """Every worker in the table, the longest silent first."""
        with self.engine.begin() as connection:
            found = self._execute(
                connection,
                "SELECT executor_id, host, pid, concurrency, started_at, "
                f"{self._now} - beat_at AS silent_s FROM {TABLE} ORDER BY beat_at, executor_id",
            ).all()
        return [
            WorkerRow(
                executor_id=row.executor_id,
                host=row.host,
                pid=row.pid,
                concurrency=row.concurrency,
                started_at=float(row.started_at),
                silent_s=float(row.silent_s),
            )
            for row in found
        ]

    def _silent(self, connection: sqlalchemy.Connection) -> list[str]:
        found = self._execute(
            connection,
            f"SELECT executor_id FROM {TABLE} WHERE beat_at < {self._now} - :after "
            "AND executor_id <> :id ORDER BY beat_at",
            after=self.takeover_after_s,
            id=self.executor_id,
        ).all()
        return [row.executor_id for row in found]

    def _delete(self, connection: sqlalchemy.Connection, executor_ids: Sequence[str]) -> None:
        for executor_id in executor_ids:
            self._execute(
                connection, f"DELETE FROM {TABLE} WHERE executor_id = :id", id=executor_id
            )

    def take_over(self) -> list[tuple[str, int]]:
        """Hand the runs of workers silent for longer than `takeover_after_s` back to the
        queue and delete their rows; (executor id, runs handed back) for each. Does nothing
        while another worker is doing it."""
        if self._postgres:
            return self._take_over_postgres()
        return self._take_over_sqlite()

    def _take_over_postgres(self) -> list[tuple[str, int]]:
        # The advisory lock lives as long as this transaction: recovery (on DBOS's own
        # connections) and the deletion happen while it is held, and a crash releases it.
        with self.engine.begin() as connection:
            locked = self._execute(
                connection, "SELECT pg_try_advisory_xact_lock(:key)", key=_LOCK_KEY
            ).scalar()
            if not locked:
                return []
            dead = self._silent(connection)
            done = [(executor_id, self._recover([executor_id])) for executor_id in dead]
            self._delete(connection, dead)
        return done

    def _take_over_sqlite(self) -> list[tuple[str, int]]:
        # SQLite allows one writer: holding its lock during recovery would block DBOS's own
        # writes to the same file. One transaction claims the rows (deletes them) instead; if
        # recovery then fails, the rows come back, silent, for the next beat to retry.
        with self.engine.begin() as connection:
            # Writing this worker's own beat first takes SQLite's write lock.
            self._execute(
                connection,
                f"UPDATE {TABLE} SET beat_at = {self._now} WHERE executor_id = :id",
                id=self.executor_id,
            )
            dead = self._silent(connection)
            rows = [
                self._execute(
                    connection,
                    f"SELECT host, pid, concurrency, started_at FROM {TABLE} "
                    "WHERE executor_id = :id",
                    id=executor_id,
                ).one()
                for executor_id in dead
            ]
            self._delete(connection, dead)
        done = []
        for executor_id, row in zip(dead, rows, strict=True):
            try:
                done.append((executor_id, self._recover([executor_id])))
            except BaseException:
                with self.engine.begin() as connection:
                    self._execute(
                        connection,
                        f"INSERT INTO {TABLE} (executor_id, host, pid, concurrency, started_at, "
                        "beat_at) VALUES (:id, :host, :pid, :concurrency, :started, 0)",
                        id=executor_id,
                        host=row.host,
                        pid=row.pid,
                        concurrency=row.concurrency,
                        started=row.started_at,
                    )
                raise
        return done

    # -- the thread -----------------------------------------------------------------------------

    def start(self) -> None:
        """Beat every `interval_s` on a thread of its own, and take over silent workers."""
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{self.executor_id}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                if not self.beat():
                    logger.error(
                        "worker %s: another worker took over this worker's runs (its heartbeat "
                        "was silent for more than %g s); stopping",
                        self.executor_id,
                        self.takeover_after_s,
                    )
                    self.lost.set()
                    if self._on_lost is not None:
                        self._on_lost()
                    return
                for executor_id, runs in self.take_over():
                    self.taken_over.append((executor_id, runs))
                    logger.log(
                        logging.WARNING if runs else logging.INFO,
                        "worker %s took over %d unfinished run(s) of worker %s (it stopped, or "
                        "was silent for more than %g s)",
                        self.executor_id,
                        runs,
                        executor_id,
                        self.takeover_after_s,
                    )
            except Exception as error:
                # The database may be away for a moment: beat again on the next tick.
                logger.warning("worker %s: heartbeat failed: %s", self.executor_id, error)
            self._stopping.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def stop(self, *, hand_over: bool) -> None:
        """Stop beating. With `hand_over`, the row is marked silent since the epoch, so that
        another worker takes over at once whatever runs this one leaves unfinished (none, if
        all went well: then it only deletes the row); otherwise the row is deleted."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.lost.is_set():
            return
        with self.engine.begin() as connection:
            if hand_over:
                self._execute(
                    connection,
                    f"UPDATE {TABLE} SET beat_at = 0 WHERE executor_id = :id",
                    id=self.executor_id,
                )
            else:
                self._delete(connection, [self.executor_id])


def new_executor_id() -> str:
    """A fresh executor id for a worker: `w-` and 12 random hex digits."""
    import secrets

    return f"w-{secrets.token_hex(6)}"


class Worker:
    """A process's durable engine executing queued runs, with its heartbeat and takeover.

    ```python
    async with Runtime(config) as runtime, Worker(runtime) as worker:
        print(worker.ready_line)
        await worker.wait(stop)          # until `stop` is set (a signal) or `lost`
        await worker.drain(30, force)    # no new runs; those in flight get 30 s
    ```

    Args:
        runtime: the runtime whose agents the runs use; its `durability:` section (with the
            database URL the runtime resolved: `Runtime(..., database_url=...)`) is used.
        concurrency: runs at once in this worker instead of `durability.concurrency`.
        executor_id: this worker's id (default: a fresh one, `new_executor_id`).
        interval_s: the heartbeat.

    Raises (when opened):
        DurabilityError: no `durability:` section, or the database cannot be used.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        concurrency: int | None = None,
        executor_id: str | None = None,
        interval_s: float = HEARTBEAT_S,
    ) -> None:
        from agent_runtime.config.durability import DurabilityError, missing_section_message

        spec = runtime.config.spec.durability
        if spec is None:
            raise DurabilityError(missing_section_message(runtime.config.source))
        self.runtime = runtime
        self.database_url = spec.database_url
        self.concurrency = concurrency or spec.concurrency
        self.takeover_after_s = spec.takeover_after_s
        self.executor_id = executor_id or new_executor_id()
        self._interval_s = interval_s
        self._db: sqlalchemy.Engine | None = None
        self._heartbeat: Heartbeat | None = None
        self._engine: DurableEngine | None = None
        self._lost = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None

    @property
    def ready_line(self) -> str:
        """The line the `worker` command prints once the worker takes runs."""
        return (
            f"Worker {self.executor_id} executing runs from {display_url(self.database_url)} "
            f"(concurrency {self.concurrency}, takeover after {self.takeover_after_s:g} s)"
        )

    @property
    def lost(self) -> bool:
        """True when another worker took this one's runs over (see the module)."""
        return self._lost.is_set()

    @property
    def in_flight(self) -> int:
        """Runs this worker is executing now."""
        return self._engine.active_runs if self._engine is not None else 0

    async def __aenter__(self) -> Self:
        from agent_runtime.durable.client import require_dbos

        require_dbos()
        _check_dbos_version()  # fail now, not at the first takeover
        from agent_runtime.durable import DurableEngine

        loop = asyncio.get_running_loop()
        self._db = database_engine(self.database_url)
        self._heartbeat = Heartbeat(
            self._db,
            executor_id=self.executor_id,
            concurrency=self.concurrency,
            takeover_after_s=self.takeover_after_s,
            interval_s=self._interval_s,
            on_lost=lambda: loop.call_soon_threadsafe(self._lost.set),
        )
        engine = DurableEngine(
            self.runtime, executor_id=self.executor_id, concurrency=self.concurrency
        )
        registered = False
        # Build the agents now (the Agents SDK's import, the tools'), not in the first run.
        self.runtime.agent(self.runtime.agent_names[0])
        try:
            # The row exists before the engine takes a run, so a worker killed at any moment
            # after is found silent. A Postgres database that does not exist yet is created
            # by the engine's start: then the row comes right after.
            registered = await asyncio.to_thread(self._register, missing_ok=True)
            await engine.start()
            self._engine = engine
            if not registered:
                registered = await asyncio.to_thread(self._register, missing_ok=False)
        except BaseException:
            if self._engine is not None:
                await self._engine.aclose()
            if registered:
                await asyncio.to_thread(self._heartbeat.stop, hand_over=False)
            self._db.dispose()
            raise
        self._heartbeat.start()
        return self

    def _register(self, *, missing_ok: bool) -> bool:
        """Write the first heartbeat; False when the database does not exist yet and
        `missing_ok`."""
        assert self._heartbeat is not None
        try:
            self._heartbeat.register()
        except Exception as exc:
            if missing_ok and _no_such_database(exc):
                return False
            from agent_runtime.durable.client import database_error

            raise database_error(self.database_url, exc) from None
        return True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._heartbeat is not None and self._db is not None
        try:
            if self._closing is None:
                self._closing = asyncio.ensure_future(self._close(0.0))
            await asyncio.shield(self._closing)
        finally:
            # Handed over rather than deleted: the runs the engine cut off (and any dispatched
            # while it stopped) are taken over by the next beat of another worker.
            await asyncio.to_thread(self._heartbeat.stop, hand_over=True)
            self._db.dispose()

    async def _close(self, grace_s: float) -> None:
        if self._engine is not None:
            await self._engine.aclose(grace_s=grace_s)

    async def wait(self, stop: asyncio.Event) -> None:
        """Execute runs until `stop` is set or this worker's runs were taken over (`lost`)."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._lost.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def drain(self, grace_s: float, force: asyncio.Event | None = None) -> int:
        """Take no new runs; let those in flight finish for up to `grace_s` seconds (cut short
        when `force` is set), then stop the engine. The number of runs cut off: they stay
        unfinished in the database and another worker takes them over."""
        assert self._engine is not None
        engine = self._engine
        loop = asyncio.get_running_loop()
        # The engine is given more than the grace: this worker decides when it is over (and
        # so knows how many runs it cut off).
        self._closing = asyncio.ensure_future(self._close(grace_s + _CLOSE_MARGIN_S))
        waiters: list[asyncio.Future[Any]] = [self._closing]
        if force is not None:
            waiters.append(asyncio.ensure_future(force.wait()))
        deadline = loop.time() + grace_s
        cut = 0
        try:
            while not self._closing.done():
                left_s = deadline - loop.time()
                if left_s <= 0 or (force is not None and force.is_set()):
                    # The engine's close goes on as after its grace: the runs cancelled stay
                    # unfinished for another worker.
                    running = list(engine._tasks)
                    cut = len(running)
                    for task in running:
                        task.cancel()
                    break
                await asyncio.wait(waiters, timeout=left_s, return_when=asyncio.FIRST_COMPLETED)
            await self._closing
        finally:
            for waiter in waiters[1:]:
                waiter.cancel()
        return cut


def _no_such_database(exc: BaseException) -> bool:
    """Postgres's `database "x" does not exist` (SQLSTATE 3D000; psycopg gives no SQLSTATE
    for an error while connecting, only the server's message)."""
    original = getattr(exc, "orig", None)
    if getattr(original, "sqlstate", None) == "3D000":
        return True
    return re.search(r'database "[^"]*" does not exist', str(exc)) is not None
