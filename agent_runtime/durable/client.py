"""The library API of durable runs behind `Runtime.submit`, `result`, `status`, `cancel` and
`runs`: a DBOS client on the durability database. It queues runs and reads their outcomes;
it never executes one (that is `DurableEngine`'s job, in a worker process), so any process can
submit without becoming a worker.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent_runtime.config.durability import (
    DurabilityError,
    database_url_secrets,
    default_app_version,
    missing_section_message,
)
from agent_runtime.durable.records import RunFailed, error_from_record, result_from_record
from agent_runtime.durable.runs import (
    RUN_STATES,
    RunCancelledError,
    RunHandle,
    RunPendingError,
    RunState,
    RunStatus,
    UnknownRunError,
    from_epoch_ms,
    input_preview,
)
from agent_runtime.redact import Redactor, own_logger

if TYPE_CHECKING:
    from dbos import DBOSClient, EnqueueOptions, WorkflowStatus

    from agent_runtime.config import Config
    from agent_runtime.results import RunEvent, RunResult

__all__ = [
    "DurableClient",
    "check_database",
    "database_error",
    "describe_database",
    "require_dbos",
]

logger = own_logger(__name__)

_STATES: dict[str, RunState] = {
    "ENQUEUED": "queued",
    "DELAYED": "queued",
    "PENDING": "running",
    "SUCCESS": "succeeded",
    "ERROR": "failed",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed",
    "CANCELLED": "cancelled",
}
_DBOS_STATES: dict[RunState, list[str]] = {
    state: [name for name, mapped in _STATES.items() if mapped == state] for state in RUN_STATES
}
_MAX_RUN_ID_CHARS = 200
_PAGE = 200


def describe_database(url: str) -> str:
    """The database of a URL for messages, without its password: `Postgres database NAME at
    HOST:PORT` or `SQLite file PATH`."""
    if url.startswith("sqlite"):
        return f"SQLite file {url.partition(':///')[2]}"
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        return "the Postgres database"
    return f"Postgres database {parts.path.strip('/')!r} at {parts.hostname}:{port}"


def database_error(url: str, exc: BaseException) -> DurabilityError:
    """A `DurabilityError` for a database that cannot be used: which one, why (passwords
    masked), and how to fix it."""
    redact = Redactor(database_url_secrets(url)).text
    reason = redact(" ".join(str(exc).split())) or type(exc).__name__
    if len(reason) > 400:
        reason = reason[:399] + "…"
    return DurabilityError(
        f"cannot use the {describe_database(url)} for durable runs: {reason}. Check "
        "`durability.database_url` in agents.yaml (or --database-url, "
        "AGENT_RUNTIME_DATABASE_URL), and that the database server is running and reachable."
    )


def require_dbos() -> None:
    """Check that DBOS is installed.

    Raises:
        DurabilityError: it is not, with the command that installs it.
    """
    import importlib.util

    if importlib.util.find_spec("dbos") is None:
        raise DurabilityError(
            "durable runs need the `dbos` package, which is not installed. Install it with "
            "pip install 'agent-runtime[durable]'."
        )


def check_database(url: str) -> None:
    """Connect to the database of durable runs once.

    Raises:
        DurabilityError: it cannot be reached or used (`database_error`).
    """
    import sqlalchemy

    from agent_runtime.durable.engine import sqlalchemy_url

    engine = sqlalchemy.create_engine(
        sqlalchemy_url(url, driver=True),
        connect_args={} if url.startswith("sqlite") else {"connect_timeout": 10},
    )
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        raise database_error(url, exc) from None
    finally:
        engine.dispose()


class DurableClient:
    """Submits durable runs and reads their state (one per runtime, made on first use).

    Args:
        config: the runtime's configuration (with `durability:`).
    """

    def __init__(self, config: Config) -> None:
        spec = config.spec.durability
        if spec is None:
            raise DurabilityError(missing_section_message(config.source))
        self.config = config
        self.spec = spec
        self.database_url = spec.database_url
        self.app_version = spec.app_version or default_app_version()
        self._client: DBOSClient | None = None
        self._lock = threading.Lock()

    def _dbos(self) -> DBOSClient:
        """The DBOS client, made on first use: DBOS's tables are created first when missing
        (no worker has started on this database yet)."""
        with self._lock:
            if self._client is None:
                require_dbos()
                from dbos import DBOS, DBOSClient

                from agent_runtime.durable.engine import APP_NAME, sqlalchemy_url

                url = sqlalchemy_url(self.database_url)
                try:
                    DBOS.migrate(url)
                    self._client = DBOSClient(
                        system_database_url=url,
                        application_name=APP_NAME,
                        retry_connection_errors=False,
                    )
                except Exception as exc:
                    raise database_error(self.database_url, exc) from None
            return self._client

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """A blocking client call in a worker thread (the first one connects)."""
        return await asyncio.to_thread(self._sync, function, *args, **kwargs)

    def _sync(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        client = self._dbos()
        try:
            return function(client, *args, **kwargs)
        except DurabilityError:
            raise
        except Exception as exc:
            if _is_database_error(exc):
                raise database_error(self.database_url, exc) from None
            raise

    # -- the API -------------------------------------------------------------------------------

    async def submit(
        self,
        agent: str,
        input: Any,
        *,
        session: str | None,
        run_id: str | None,
        options: dict[str, Any] | None = None,
    ) -> RunHandle:
        """Queue a run (see `Runtime.submit`); `options`: `run`'s keyword arguments
        `instructions`, `model_settings` and `max_turns` (JSON values)."""
        from agent_runtime.durable.engine import QUEUE, WORKFLOW

        if run_id is not None:
            _check_run_id(run_id)
        run_id = run_id or f"run-{uuid.uuid4().hex}"
        run_options = options
        attributes = {"agent": agent, "input_preview": input_preview(input)}
        if session:
            attributes["session"] = session

        def enqueue(client: DBOSClient) -> None:
            options: EnqueueOptions = {
                "queue_name": QUEUE,
                "workflow_name": WORKFLOW,
                "workflow_id": run_id,
                # The runs of a session share a partition: one at a time.
                "queue_partition_key": _partition(session, run_id),
                "attributes": attributes,
            }
            if session:
                options["priority"] = _next_in_line(client, session)
            client.enqueue(options, agent, input, session, run_options or None)

        await self._call(enqueue)
        status = await self._status(run_id)
        if status.agent != agent or status.session != session:
            raise DurabilityError(
                f"run id {run_id!r} is taken by another run (agent `{status.agent}`, session "
                f"{status.session!r}); choose another run id, or leave it out."
            )
        return RunHandle(run_id=run_id, agent=agent)

    async def _status(self, run_id: str) -> RunStatus:
        return await asyncio.to_thread(self.status, run_id)

    def status(self, run_id: str) -> RunStatus:
        """Where a run is (see `Runtime.status`)."""
        found = self._sync(
            lambda client: client.list_workflows(workflow_ids=[run_id], load_input=False)
        )
        if not found:
            raise UnknownRunError(run_id)
        return _run_status(found[0])

    async def result(
        self,
        run_id: str,
        *,
        wait: bool,
        timeout: float | None,  # noqa: ASYNC109 - a wait that times out is a RunPendingError
    ) -> RunResult:
        """A run's result (see `Runtime.result`)."""
        status = await self._status(run_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not status.finished:
            if not wait or (deadline is not None and loop.time() >= deadline):
                raise RunPendingError(run_id, status.status, waited_s=timeout if wait else None)
            pause = self.spec.poll_s
            if deadline is not None:
                pause = max(min(pause, deadline - loop.time()), 0)
            await asyncio.sleep(pause)
            status = await self._status(run_id)
        return await self._outcome(run_id, status)

    def follow(self, run_id: str) -> AsyncGenerator[RunEvent, None]:
        """A run's events as it executes, then its result (see `Runtime.follow`)."""
        from agent_runtime.durable.stream import follow

        return follow(self, run_id)

    async def _outcome(self, run_id: str, status: RunStatus) -> RunResult:
        if status.status == "cancelled":
            raise RunCancelledError(run_id)
        found = await self._call(
            lambda client: client.list_workflows(workflow_ids=[run_id], load_input=False)
        )
        workflow = found[0]
        if status.status == "failed":
            error = workflow.error
            if isinstance(error, RunFailed):
                raise error_from_record(error.record)
            from agent_runtime.errors import RunError

            raise RunError(
                f"run {run_id!r} failed in its worker: {type(error).__name__}: {error}"
                if error is not None
                else f"run {run_id!r} failed: it was recovered more times than allowed."
            )
        output_type = self.config.output_types.get(workflow.output.get("agent", ""))
        return result_from_record(workflow.output, output_type)

    async def cancel(self, run_id: str) -> RunStatus:
        """Cancel a run (see `Runtime.cancel`)."""
        status = await self._status(run_id)
        if not status.finished:
            await self._call(lambda client: client.cancel_workflow(run_id))
            status = await self._status(run_id)
        return status

    def runs(
        self, *, limit: int, agent: str | None, status: RunState | Sequence[RunState] | None
    ) -> list[RunStatus]:
        """Recent runs, newest first (see `Runtime.runs`)."""
        from agent_runtime.durable.engine import WORKFLOW

        wanted: list[str] | None = None
        if status is not None:
            states = [status] if isinstance(status, str) else list(status)
            for state in states:
                if state not in _DBOS_STATES:
                    raise DurabilityError(
                        f"unknown run status {state!r}; one of {', '.join(RUN_STATES)}."
                    )
            wanted = [name for state in states for name in _DBOS_STATES[state]]

        def page(client: DBOSClient, offset: int, size: int, by_agent: bool) -> list[Any]:
            found: list[Any] = client.list_workflows(
                name=WORKFLOW,
                status=wanted,
                attributes={"agent": agent} if by_agent else None,
                limit=size,
                offset=offset,
                sort_desc=True,
                load_input=False,
                load_output=True,
            )
            return found

        if agent is None or not self.database_url.startswith("sqlite"):
            found = self._sync(page, 0, limit, agent is not None)
            return [_run_status(workflow) for workflow in found]
        # DBOS cannot filter by attributes on SQLite: read pages until enough match.
        statuses: list[RunStatus] = []
        offset = 0
        while len(statuses) < limit:
            found = self._sync(page, offset, _PAGE, False)
            statuses += [
                _run_status(w) for w in found if (w.attributes or {}).get("agent") == agent
            ]
            if len(found) < _PAGE:
                break
            offset += _PAGE
        return statuses[:limit]

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.destroy()


def _next_in_line(client: DBOSClient, session: str) -> int:
    """The queue priority of a new run of `session`: after the session's unfinished runs.

    A partition's next run is its lowest priority, then its oldest (DBOS's creation times
    have a second's precision on SQLite, so they cannot order quick submissions).
    """
    from agent_runtime.durable.engine import QUEUE

    waiting = client.list_workflows(
        queue_name=QUEUE,
        status=["ENQUEUED", "DELAYED", "PENDING"],
        load_input=False,
        load_output=False,
    )
    key = _partition(session, "")
    return (
        max(
            (w.priority or 0 for w in waiting if w.queue_partition_key == key),
            default=0,
        )
        + 1
    )


def _partition(session: str | None, run_id: str) -> str:
    """The queue partition of a run: its session's, else its own."""
    return f"session:{session}" if session else f"run:{run_id}"


def _check_run_id(run_id: str) -> None:
    if not run_id.strip() or len(run_id) > _MAX_RUN_ID_CHARS or not run_id.isprintable():
        raise DurabilityError(
            f"run id {run_id[:60]!r} cannot be used: a run id is 1 to {_MAX_RUN_ID_CHARS} "
            "printable characters."
        )


def _run_status(workflow: WorkflowStatus) -> RunStatus:
    attributes = workflow.attributes or {}
    error = None
    if workflow.status in ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
        failure = workflow.error
        if isinstance(failure, RunFailed):
            error = str(failure)
        elif failure is not None:
            error = f"{type(failure).__name__}: {failure}"
        else:
            error = "the run was recovered more times than allowed"
    return RunStatus(
        run_id=workflow.workflow_id,
        agent=str(attributes.get("agent", "")),
        status=_STATES.get(str(workflow.status), "running"),
        created_at=from_epoch_ms(workflow.created_at),
        updated_at=from_epoch_ms(workflow.updated_at or workflow.created_at),
        session=attributes.get("session"),
        input_preview=str(attributes.get("input_preview", "")),
        error=error,
        executor=workflow.executor_id if workflow.status != "ENQUEUED" else None,
    )


def _is_database_error(exc: BaseException) -> bool:
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
