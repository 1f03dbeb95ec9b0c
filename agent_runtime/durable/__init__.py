"""Durable runs: queued in a database, executed by worker processes on any number of machines,
recorded step by step on DBOS so that a run survives the crash of the process executing it.

```python
async with Runtime.from_yaml("agents.yaml") as runtime:       # with a `durability:` section
    handle = await runtime.submit("weather-haiku", "Tokyo?", session="alice")
    result = await runtime.result(handle.run_id)               # waits for a worker to run it
```

Workers (`agent-runtime worker`, or `DurableEngine` in a program) take runs from the queue. Each
run is one DBOS workflow running `Runtime.run`; each model call, each tool call and the session's
read and write is a step whose outcome is recorded. A run recovered after a crash runs again from
the start, and every recorded step gives its recorded outcome instead of running again: finished
model calls and tool calls are never made twice. The step in flight at the crash runs again (at
least once per step), except a call of a tool marked `idempotent: false`, which is not made again:
the model gets a result saying it was interrupted. Tools can pass `current_step().idempotency_key`
(`RUN_ID:STEP`, the same on a re-run) to services that deduplicate.

The runs of one session run one at a time, in submission order, across all workers. With a
Postgres `database_url`, sessions are stored in that database (`PostgresSessionStore`) and a
recovered run stores its items exactly once.

A run can be followed from any process (`Runtime.follow`, `stream`): its events come as its
steps finish, each once, also across a recovery; live token deltas are not streamed.

Importing this package does not import DBOS; `engine` does (DBOS is needed only by workers and
when a runtime first submits or asks about a run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_runtime.config.durability import (
    DATABASE_URL_VARIABLE,
    DurabilityError,
    DurabilitySpec,
    database_url,
)
from agent_runtime.durable.client import check_database, describe_database
from agent_runtime.durable.runs import (
    RUN_STATES,
    RunCancelledError,
    RunHandle,
    RunPendingError,
    RunState,
    RunStatus,
    UnknownRunError,
)
from agent_runtime.durable.steps import DurableStep, current_step, interrupted_message

if TYPE_CHECKING:
    from agent_runtime.durable.engine import DurableEngine
    from agent_runtime.durable.sessions import PostgresSessionStore

__all__ = [
    "DATABASE_URL_VARIABLE",
    "RUN_STATES",
    "DurabilityError",
    "DurabilitySpec",
    "DurableEngine",
    "DurableStep",
    "PostgresSessionStore",
    "RunCancelledError",
    "RunHandle",
    "RunPendingError",
    "RunState",
    "RunStatus",
    "UnknownRunError",
    "check_database",
    "current_step",
    "database_url",
    "describe_database",
    "interrupted_message",
]


def __getattr__(name: str) -> Any:
    # The DBOS-backed classes are imported when first asked for.
    if name == "DurableEngine":
        from agent_runtime.durable.client import require_dbos

        require_dbos()
        from agent_runtime.durable.engine import DurableEngine

        return DurableEngine
    if name == "PostgresSessionStore":
        from agent_runtime.durable.sessions import PostgresSessionStore

        return PostgresSessionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
