"""What the library API of durable runs hands out: `RunHandle`, `RunStatus`, and the errors of
asking about a run (`UnknownRunError`, `RunPendingError`, `RunCancelledError`).

Plain values, independent of DBOS's classes (which `client` translates), so that callers and
the CLI can print, compare and serialise them without importing DBOS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from agent_runtime.config.durability import DurabilityError
from agent_runtime.errors import RunError

__all__ = [
    "RUN_STATES",
    "RunCancelledError",
    "RunHandle",
    "RunPendingError",
    "RunState",
    "RunStatus",
    "UnknownRunError",
    "input_preview",
]

RunState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
RUN_STATES: tuple[RunState, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
"""Every state a durable run can be in, in the order a run goes through them."""

_PREVIEW_CHARS = 80


class UnknownRunError(DurabilityError):
    """No durable run has this id (in this database)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"no durable run with id {run_id!r} in this database. Check the id (`agent-runtime "
            "runs` lists recent runs) and that --database-url / AGENT_RUNTIME_DATABASE_URL "
            "point where the run was submitted."
        )
        self.run_id = run_id


class RunPendingError(DurabilityError):
    """The run has not finished yet (asked without waiting, or the wait timed out)."""

    def __init__(self, run_id: str, state: str, *, waited_s: float | None = None) -> None:
        waited = f" after waiting {waited_s:g} s" if waited_s is not None else ""
        super().__init__(
            f"run {run_id!r} has not finished{waited}: it is {state}. Ask again later, or "
            "wait for it (`result(run_id, wait=True)`, `agent-runtime result --wait`); a "
            "queued run needs a running `agent-runtime worker`."
        )
        self.run_id = run_id
        self.state = state


class RunCancelledError(RunError):
    """The run was cancelled before it finished."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} was cancelled before it finished; it has no result.")
        self.run_id = run_id


@dataclass(frozen=True, slots=True, kw_only=True)
class RunHandle:
    """A submitted run: its id (for `result`, `status`, `cancel`) and its agent."""

    run_id: str
    agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStatus:
    """Where a durable run is.

    Attributes:
        run_id: the run's id.
        agent: the agent it runs.
        status: queued (waiting for a worker), running, succeeded, failed or cancelled.
        created_at: when it was submitted (UTC).
        updated_at: when its status last changed (UTC).
        session: the session it continues, if any.
        input_preview: the start of its input, for listings.
        error: why it failed (`ErrorClass: message`), for a failed run.
        executor: the id of the worker that runs or ran it (None while queued).
    """

    run_id: str
    agent: str
    status: RunState
    created_at: datetime
    updated_at: datetime
    session: str | None = None
    input_preview: str = ""
    error: str | None = None
    executor: str | None = None

    @property
    def finished(self) -> bool:
        """Succeeded, failed or cancelled: it will not change any more."""
        return self.status in ("succeeded", "failed", "cancelled")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 text)."""
        document = dataclasses.asdict(self)
        document["created_at"] = self.created_at.isoformat()
        document["updated_at"] = self.updated_at.isoformat()
        return document


def from_epoch_ms(value: int | None) -> datetime:
    """A DBOS time stamp (ms since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp((value or 0) / 1000, tz=UTC)


def input_preview(input: Any) -> str:
    """The start of a run's input on one line: the text of a string, else of its last user
    message."""
    text = ""
    if isinstance(input, str):
        text = input
    elif isinstance(input, list):
        for item in reversed(input):
            if isinstance(item, dict) and item.get("role") == "user":
                content = item.get("content")
                if isinstance(content, str):
                    text = content
                elif isinstance(content, list):
                    text = " ".join(
                        str(part.get("text", "")) for part in content if isinstance(part, dict)
                    )
                break
    text = " ".join(text.split())
    if len(text) > _PREVIEW_CHARS:
        text = text[: _PREVIEW_CHARS - 1] + "…"
    return text
