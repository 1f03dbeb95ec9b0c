"""Background responses kept by the durable queue, read back by any server of its database.

With `durability:` in agents.yaml, a `background: true` response is a durable run whose run id
is the response id (`responses._submit`); workers execute it. The server that created it
follows its events while it keeps it in memory. Any other server of the same database (or the
same one after a restart) answers `GET /v1/responses/{id}` from the run's record: its status,
and once it has finished its output, usage or error, as the Response object the creating
server would show (ids of output items are new; the request's own fields, such as `metadata`,
are not recorded with the run and come back empty).
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent_runtime.config.durability import DurabilityError
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import redact_text
from agent_runtime.server.errors import APIError
from agent_runtime.server.items import complete, output_items, response_error
from agent_runtime.server.state import ServerState

__all__ = ["durable_response"]

_STATUSES = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


async def durable_response(state: ServerState, response_id: str) -> dict[str, Any] | None:
    """The Response object of the durable run `response_id` (None: no such response)."""
    from agent_runtime.durable import UnknownRunError

    if not response_id.startswith("resp_"):  # runs submitted otherwise are not responses
        return None
    runtime = state.runtime
    try:
        status = await asyncio.to_thread(runtime.status, response_id)
    except UnknownRunError:
        return None
    except DurabilityError as exc:
        raise APIError(
            503, redact_text(str(exc)), type="server_error", code="queue_unavailable"
        ) from None
    response = _skeleton(response_id, status.agent, int(status.created_at.timestamp()))
    response["status"] = _STATUSES.get(status.status, status.status)
    if status.status in ("succeeded", "failed"):
        try:
            result = await runtime.result(response_id, wait=False)
        except AgentRuntimeError as exc:
            response_error(response, exc)
        else:
            response["output"] = output_items(result.items, result.pending_calls)
            complete(response, result)
            response["completed_at"] = int(status.updated_at.timestamp())
    return response


def _skeleton(response_id: str, agent: str, created_at: int) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "queued",
        "background": True,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "metadata": {},
        "model": agent,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "conversation": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": None,
        "user": None,
    }
