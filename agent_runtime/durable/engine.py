"""The DBOS side of durable runs: the workflow that executes a run, and `DurableEngine`, which
launches DBOS in a process so that it executes queued runs.

DBOS keeps one instance per process (its design: the workflow registry, the executor id and the
queue threads are process-wide), so this module is the one place that creates, launches and
destroys it, and at most one `DurableEngine` is open in a process at a time. Closing it
destroys the DBOS instance; a new engine can be opened after (tests open several in turn).

Processes that only submit runs and read their results never launch DBOS: they use `client`.

```python
async with Runtime.from_yaml("agents.yaml") as runtime:
    async with DurableEngine(runtime, concurrency=4) as engine:
        await stop.wait()          # queued runs execute here until the engine is closed
```
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from dbos import DBOS

from agent_runtime.config.durability import DurabilityError, default_app_version
from agent_runtime.durable.records import RunFailed, error_record, result_record
from agent_runtime.durable.steps import DurableRun, current_run, once_only_tools
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import own_logger

if TYPE_CHECKING:
    from agent_runtime.runtime import Runtime

__all__ = ["APP_NAME", "QUEUE", "WORKFLOW", "DurableEngine", "dbos_config", "sqlalchemy_url"]

logger = own_logger(__name__)

APP_NAME = "agent-runtime"
"""The DBOS application name of agent-runtime's workflows and queue."""
QUEUE = "agent-runtime-runs"
"""The queue runs wait in. Partitioned by session: the runs of one session one at a time, in
the order they were submitted; a run without a session is a partition of its own."""
WORKFLOW = "agent_runtime.run"
"""The registered name of the workflow that executes a run."""

_CANCEL_WAIT_S = 10.0

_engine: DurableEngine | None = None
"""The open engine of this process (DBOS allows one): the one its workflows run on."""


@DBOS.workflow(name=WORKFLOW)
async def _execute(
    agent: str, input: Any, session: str | None, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One durable run: `Runtime.run` of the agent (with the run's `options`: instructions,
    model settings, max turns), its steps recorded. Returns the result's record; a failed run
    raises `RunFailed` with the error's record."""
    engine = _engine
    if engine is None:  # a workflow outlived its engine (being closed): retried later
        raise asyncio.CancelledError
    return await engine.execute(agent, input, session, options)


def dbos_config(database_url: str, *, executor_id: str, app_version: str) -> dict[str, Any]:
    """The configuration of agent-runtime's DBOS instance."""
    return {
        "name": APP_NAME,
        "system_database_url": sqlalchemy_url(database_url),
        "executor_id": executor_id,
        "application_version": app_version,
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.1,
    }


def sqlalchemy_url(url: str, *, driver: bool = False) -> str:
    """The URL as SQLAlchemy wants it (postgres:// is not a dialect name); with `driver`,
    naming psycopg 3 (SQLAlchemy's default Postgres driver is psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if driver and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


class DurableEngine:
    """Executes queued durable runs in this process until closed.

    Args:
        runtime: the runtime whose agents run (its agents.yaml needs `durability:`).
        executor_id: this process's id among the workers (default: a fresh one); runs it
            leaves unfinished are recovered by a process that starts with the same id, or
            taken over by another worker.
        concurrency: runs at once in this process (default: `durability.concurrency`). DBOS
            keeps it with the queue, so the workers of one database share the value of the
            one that started last.

    Raises (when opened):
        DurabilityError: no `durability:` section, another engine is open in this process,
            or the database cannot be used.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        executor_id: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        spec = runtime.config.spec.durability
        if spec is None:
            from agent_runtime.config.durability import missing_section_message

            raise DurabilityError(missing_section_message(runtime.config.source))
        self.runtime = runtime
        self.spec = spec
        self.database_url = spec.database_url
        self.executor_id = executor_id or f"w-{uuid.uuid4().hex[:12]}"
        self.concurrency = concurrency if concurrency is not None else spec.concurrency
        self.app_version = spec.app_version or default_app_version()
        self._once_only = once_only_tools(runtime.config)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_events: list[Any] = []
        self._open = False

    @property
    def active_runs(self) -> int:
        """Runs executing in this process now."""
        return len(self._tasks)

    async def start(self) -> None:
        """Launch DBOS (creating its tables in the database when missing) and start taking
        runs from the queue. The workflows run on the calling event loop."""
        global _engine
        if _engine is not None:
            raise DurabilityError(
                "a DurableEngine is already open in this process (DBOS runs one instance per "
                "process); close it first, or run another worker process."
            )
        if self.concurrency < 1:
            raise DurabilityError(f"concurrency must be at least 1, not {self.concurrency}.")
        total = self.spec.total_concurrency
        _engine = self
        try:
            instance = DBOS(
                config=dbos_config(  # type: ignore[arg-type]
                    self.database_url, executor_id=self.executor_id, app_version=self.app_version
                )
            )
            self._stop_events = instance.background_thread_stop_events
            # Launched from the loop's own thread: DBOS runs async workflows on this loop.
            DBOS.launch()
            await DBOS.register_queue_async(
                QUEUE,
                worker_concurrency=self.concurrency,
                global_concurrency=max(total, self.concurrency) if total is not None else None,
                partition_concurrency=1,
                polling_interval_sec=self.spec.poll_s,
                on_conflict="always_update",
            )
        except BaseException as exc:
            _engine = None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(DBOS.destroy)
            asyncio.get_running_loop().set_default_executor(
                concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
            )
            if isinstance(exc, Exception) and not isinstance(exc, AgentRuntimeError):
                from agent_runtime.durable.client import database_error

                raise database_error(self.database_url, exc) from None
            raise
        self._open = True
        logger.info(
            "durable engine %s started (concurrency %d, version %s)",
            self.executor_id,
            self.concurrency,
            self.app_version,
        )

    async def execute(
        self, agent: str, input: Any, session: str | None, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run one durable run in this process (called by its workflow)."""
        run_id = DBOS.workflow_id or ""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        token = current_run.set(DurableRun(run_id=run_id, once_only=self._once_only))
        try:
            result = await self.runtime.run(agent, input, session=session, **(options or {}))
        except AgentRuntimeError as exc:
            cancelled = _dbos_cancellation(exc)
            if cancelled is not None:
                raise cancelled from None
            raise RunFailed(error_record(exc)) from None
        finally:
            current_run.reset(token)
            if task is not None:
                self._tasks.discard(task)
        return result_record(result)

    async def aclose(self, *, grace_s: float = 0.0) -> None:
        """Stop taking runs, give the runs executing here up to `grace_s` to finish, cancel the
        others (they stay unfinished in the database, for another worker or a restart with this
        executor id to finish), and destroy the DBOS instance."""
        global _engine
        if not self._open:
            return
        self._open = False
        try:
            for event in self._stop_events:
                event.set()  # the queue threads stop claiming runs
            if self._tasks and grace_s > 0:
                await asyncio.wait(set(self._tasks), timeout=grace_s)
            await self._cancel_runs()
            await asyncio.to_thread(DBOS.destroy)
            await self._cancel_runs()  # runs dispatched while the queue threads stopped
        finally:
            _engine = None
            # DBOS made its thread pool (now shut down) the loop's default executor.
            asyncio.get_running_loop().set_default_executor(
                concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
            )
        logger.info("durable engine %s stopped", self.executor_id)

    async def _cancel_runs(self) -> None:
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CANCEL_WAIT_S)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _dbos_cancellation(exc: BaseException) -> BaseException | None:
    """DBOS's cancellation of the workflow, when that is what ended the run."""
    from dbos import error

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, error.DBOSWorkflowCancelledError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
