"""The responses a server keeps, in memory, for `GET`/`DELETE /v1/responses/{id}`, `cancel`,
`previous_response_id` and background runs.

Each entry records the Response object (updated while its run goes on), the session that holds
its conversation, the task of a background run, and the stream events of a background run (so
that a client can read them, also later). At most `store_limit` entries are kept: past it the
oldest finished ones are dropped (runs still going are kept: their number is bounded by the
run limit). A dropped or deleted response's session (`resp:<id>`) is cleared once no kept
response continues it; `conv:<id>` sessions belong to their conversation and stay.

The store also knows, for each session of a kept response, which response extends it last
(its head, `claim`): `previous_response_id` naming the head continues the session; naming an
older response branches from it (the session's first `session_items` items, which the entry
records when its run completes, go into a new session).
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ResponseStore", "StoredResponse"]


@dataclass(slots=True, kw_only=True)
class StoredResponse:
    """One kept response.

    Attributes:
        id: the response id (`resp_…`).
        session: the runtime session of its conversation, None for a run without memory.
        response: the Response object (a JSON-ready dict), updated while the run goes on.
        background: created with `background: true` (only those can be cancelled).
        durable: its run is on the durable queue (a worker runs it; this server follows it).
        task: the task running a background response.
        events: a background response's stream events so far.
        session_items: how many items its session held when its run completed (None until
            then, and for a run that did not complete).
    """

    id: str
    session: str | None
    response: dict[str, Any]
    background: bool = False
    durable: bool = False
    task: asyncio.Task[None] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    session_items: int | None = None
    _changed: asyncio.Event | None = None

    @property
    def status(self) -> str:
        return str(self.response.get("status"))

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def finished(self) -> bool:
        return self.status not in ("queued", "in_progress")

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Append stream events and wake those who read them."""
        self.events.extend(events)
        self.wake()

    def wake(self) -> None:
        """Wake the readers (new events, or the response has finished)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_after(self, count: int) -> None:
        """Wait until there are more than `count` events or the response has finished."""
        if len(self.events) > count or self.finished or not self.running:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()


class ResponseStore:
    """Responses by id, oldest first, bounded by `limit` (see the module)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self._entries: OrderedDict[str, StoredResponse] = OrderedDict()
        self._sessions: Counter[str] = Counter()
        self._heads: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, response_id: str) -> StoredResponse | None:
        return self._entries.get(response_id)

    def add(self, entry: StoredResponse) -> list[str]:
        """Keep `entry`; the sessions of dropped entries that nothing continues any more
        (to clear)."""
        self._entries[entry.id] = entry
        if entry.session:
            self._sessions[entry.session] += 1
        orphans: list[str] = []
        if len(self._entries) > self.limit:
            for old in list(self._entries.values()):
                if len(self._entries) <= self.limit:
                    break
                if old.running:
                    continue
                orphans += self._drop(old.id)
        return orphans

    def claim(self, session: str, response_id: str, *, kept: bool) -> None:
        """Record that response `response_id` (kept in the store or not) extends `session`
        from now on. Only sessions of kept responses are tracked."""
        if kept or self._sessions[session] > 0:
            self._heads[session] = response_id

    def is_head(self, entry: StoredResponse, session: str) -> bool:
        """Whether `entry` is the newest response extending `session` (none recorded: yes)."""
        return self._heads.get(session, entry.id) == entry.id

    def remove(self, response_id: str) -> tuple[StoredResponse | None, list[str]]:
        """Forget a response: it (None if unknown) and its session if nothing continues it."""
        entry = self._entries.get(response_id)
        if entry is None:
            return None, []
        return entry, self._drop(response_id)

    def running(self) -> list[StoredResponse]:
        """The background responses whose runs are still going."""
        return [entry for entry in self._entries.values() if entry.running]

    def _drop(self, response_id: str) -> list[str]:
        entry = self._entries.pop(response_id)
        session = entry.session
        if not session:
            return []
        self._sessions[session] -= 1
        if self._sessions[session] > 0:
            return []
        del self._sessions[session]
        self._heads.pop(session, None)
        return [session] if session.startswith("resp:") else []
