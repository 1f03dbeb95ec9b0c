"""A run as the Responses API shows it: output items, the Response object and its SSE events.

How a run's items become output items (in run order):

- `Reasoning` → `reasoning`, with `content: [{type: reasoning_text, text}]`;
- `ToolCall` and its `ToolResult` → one `mcp_call`: `server_label` = the agent that called the
  tool, `name`, `arguments`, `output`, `status: completed`;
- `Handoff` → an `mcp_call` named `transfer_to_<agent>` (the SDK's own name for handoff tools,
  e.g. `transfer_to_weather_haiku`),
  `arguments: "{}"`, `output: {"assistant": "<agent>"}`, `server_label` = the agent handing off;
- `Message` → `message` with one `output_text` part;
- a call of a client tool that the run stopped at (`RunResult.pending_calls`) → a
  `function_call` (`call_id`, `name`, `arguments`, `status: completed`), after everything
  else: the client runs it and continues with a `function_call_output`.

The agent's own tool calls are `mcp_call` items because clients treat those as calls that a
server already made: the `openai` client parses them and the Agents SDK records them without
executing anything. Sent back as input (a client replaying the conversation), each becomes the
`function_call` and `function_call_output` the agent saw (`runtime_input`); the client's own
`function_call` and `function_call_output` items are passed on as they are.

How a run ends: completed → `completed`; `RunLimitError` (max turns, time budget, loop guard)
→ `incomplete` (`incomplete_details.reason` `max_output_tokens` when the answer was cut at the
output token limit, else `run_limit`; `error` has the message); any other error → `failed`
with `error` (`code` as in `errors.run_error`); cancelled → `cancelled`.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from agent_runtime.errors import AgentRuntimeError, RunLimitError
from agent_runtime.redact import redact_text
from agent_runtime.results import (
    Handoff,
    Message,
    Reasoning,
    ReasoningDelta,
    Retrying,
    RunEvent,
    RunFinished,
    RunItem,
    RunResult,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from agent_runtime.server.errors import run_error

__all__ = [
    "EventBuilder",
    "new_id",
    "output_items",
    "response_error",
    "runtime_input",
    "usage_object",
]

Item = dict[str, Any]
Event = dict[str, Any]


def new_id(prefix: str) -> str:
    """A fresh id: `resp_…`, `rs_…`, `msg_…`, `mcp_…` (24 hex characters after the prefix)."""
    return f"{prefix}_{secrets.token_hex(12)}"


# -- output items ------------------------------------------------------------------------------


def reasoning_item(item_id: str, text: str | None, status: str = "completed") -> Item:
    content = [] if text is None else [{"type": "reasoning_text", "text": text}]
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": content,
        "encrypted_content": None,
        "status": status,
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _part(kind: str, text: str) -> dict[str, Any]:
    """The content part of a reasoning or message item."""
    return {"type": "reasoning_text", "text": text} if kind == "reasoning" else text_part(text)


def message_item(item_id: str, text: str | None, status: str = "completed") -> Item:
    content = [] if text is None else [text_part(text)]
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def mcp_item(
    item_id: str,
    *,
    agent: str,
    name: str,
    arguments: str,
    output: str | None = None,
    status: str = "completed",
) -> Item:
    return {
        "id": item_id,
        "type": "mcp_call",
        "server_label": agent,
        "name": name,
        "arguments": arguments,
        "output": output,
        "error": None,
        "status": status,
    }


def function_call_item(item_id: str, call: ToolCall, status: str = "completed") -> Item:
    """A client tool's call, for the client to run."""
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments if status == "completed" else "",
        "status": status,
    }


def handoff_item(item_id: str, handoff: Handoff) -> Item:
    return mcp_item(
        item_id,
        agent=handoff.agent,
        name=re.sub(r"[^a-z0-9]", "_", f"transfer_to_{handoff.to_agent}".lower()),
        arguments="{}",
        output=json.dumps({"assistant": handoff.to_agent}),
    )


def output_items(items: Iterable[RunItem], pending: Iterable[ToolCall] = ()) -> list[Item]:
    """A finished run's items as output items (a tool call and its result make one item),
    then the client calls it stopped at."""
    output: list[Item] = []
    calls: dict[str, Item] = {}
    for item in items:
        if isinstance(item, Reasoning):
            output.append(reasoning_item(new_id("rs"), item.text))
        elif isinstance(item, Message):
            output.append(message_item(new_id("msg"), item.text))
        elif isinstance(item, ToolCall):
            call = mcp_item(
                new_id("mcp"),
                agent=item.agent,
                name=item.name,
                arguments=item.arguments,
                status="incomplete",
            )
            calls[item.call_id] = call
            output.append(call)
        elif isinstance(item, ToolResult):
            found = calls.pop(item.call_id, None)
            if found is None:  # a result without its call: show it on its own
                found = mcp_item(new_id("mcp"), agent=item.agent, name=item.name, arguments="")
                output.append(found)
            found["output"] = item.output
            found["status"] = "completed"
        elif isinstance(item, Handoff):
            output.append(handoff_item(new_id("mcp"), item))
    output += [function_call_item(new_id("fc"), call) for call in pending]
    return output


def usage_object(usage: Usage) -> dict[str, Any]:
    """The Responses `usage` object of a run (summed over its model calls)."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def complete(response: dict[str, Any], result: RunResult) -> None:
    """Mark `response` completed with `result`'s usage (its output already set)."""
    response["status"] = "completed"
    response["completed_at"] = int(time.time())
    response["usage"] = usage_object(result.usage)


def response_error(response: dict[str, Any], exc: BaseException) -> None:
    """Mark `response` incomplete or failed because of `exc` (see the module)."""
    if isinstance(exc, AgentRuntimeError):
        message = redact_text(str(exc))
        code = run_error(exc).code or "run_error"
    else:
        message = f"the run failed ({type(exc).__name__}); the server's log has the details."
        code = "server_error"
    cut = "status=incomplete" in message
    if isinstance(exc, RunLimitError) or cut:
        response["status"] = "incomplete"
        reason = "max_output_tokens" if cut else "run_limit"
        response["incomplete_details"] = {"reason": reason}
    else:
        response["status"] = "failed"
    response["error"] = {"code": code, "message": message}


# -- input sent by clients ---------------------------------------------------------------------


def runtime_input(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Client input items as the runtime takes them: `mcp_call` items (this server's own tool
    calls, replayed by a client that keeps the history) become the `function_call` and
    `function_call_output` pair the agent saw; `item_reference`s cannot be resolved and are
    left out; a `function_call_output` whose output is a list of parts becomes their text;
    everything else is passed on."""
    converted: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "mcp_call":
            call_id = str(item.get("id") or new_id("call"))
            converted.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": str(item.get("name", "")),
                    "arguments": str(item.get("arguments") or "{}"),
                }
            )
            output = item.get("output")
            if output is None:
                output = str(item.get("error") or "the call did not finish")
            converted.append(
                {"type": "function_call_output", "call_id": call_id, "output": str(output)}
            )
        elif kind == "item_reference":
            continue
        elif kind == "function_call_output" and isinstance(item.get("output"), list):
            parts = [part for part in item["output"] if isinstance(part, Mapping)]
            text = "".join(str(part.get("text") or "") for part in parts)
            converted.append({**item, "output": text})
        else:
            converted.append(dict(item))
    return converted


# -- streaming ---------------------------------------------------------------------------------


def _copied(value: Any) -> Any:
    """A copy of a JSON value (dicts, lists and scalars) that later changes do not reach: what
    an event shows of an item that the run goes on changing."""
    if type(value) is dict:
        return {key: _copied(inner) for key, inner in value.items()}
    if type(value) is list:
        return [_copied(inner) for inner in value]
    return value


class EventBuilder:
    """Turns a run's events into the Responses stream events, keeping `response` (the Response
    object, a dict) up to date: its `output` grows as items are added and finished.

    Every item gets an id when it is added, and keeps it and its `output_index` to the end.
    A `Retrying` event (a model call made again) ends the item being streamed as
    `incomplete` and leaves it out of the final output.
    """

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.sequence = 0
        self._output: list[Item] = []
        self._open: int | None = None  # index of the reasoning or message being streamed
        self._text = ""
        self._calls: dict[str, int] = {}
        self._dropped: set[int] = set()
        self._unconfirmed: list[int] = []  # streamed reasoning / messages awaiting their item

    def event(self, kind: str, **fields: Any) -> Event:
        """A stream event with the next sequence number."""
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _lifecycle(self, kind: str) -> Event:
        # Only the status, the output's items and what is set at the end change during a run
        # (the rest is replaced, never changed in place): the event gets a copy of those.
        response = {**self.response, "output": [_copied(i) for i in self.response["output"]]}
        return self.event(kind, response=response)

    def start(self) -> list[Event]:
        """`response.created` and `response.in_progress`."""
        self.response["status"] = "in_progress"
        return [self._lifecycle("response.created"), self._lifecycle("response.in_progress")]

    def feed(self, event: RunEvent) -> list[Event]:
        """The stream events for one run event (`RunFinished`: the completion)."""
        if isinstance(event, ReasoningDelta):
            return self._delta("reasoning", event.text)
        if isinstance(event, TextDelta):
            return self._delta("message", event.text)
        if isinstance(event, Reasoning):
            return self._finish_streamed("reasoning", event.text)
        if isinstance(event, Message):
            return self._finish_streamed("message", event.text)
        if isinstance(event, ToolCall):
            return self._tool_call(event)
        if isinstance(event, ToolResult):
            return self._tool_result(event)
        if isinstance(event, Handoff):
            events = self._close_open()
            item = handoff_item(new_id("mcp"), event)
            index = self._add_item(item, events)
            events.append(self._item_done(index))
            return events
        if isinstance(event, Retrying):  # what was streamed since the last item is void
            events = self._close_open(dropped=True)
            self._dropped.update(self._unconfirmed)
            self._unconfirmed.clear()
            self._set_output()
            return events
        if isinstance(event, RunFinished):
            return self.finish(event.result)
        return []  # AgentChanged: shown by the items that follow

    def finish(self, result: RunResult) -> list[Event]:
        """Close what is open, add the client calls the run stopped at, and end with
        `response.completed`."""
        events = self._close_open()
        for call in result.pending_calls:
            events += self._function_call(call)
        self._set_output()
        complete(self.response, result)
        events.append(self._lifecycle("response.completed"))
        return events

    def fail(self, exc: BaseException) -> list[Event]:
        """Close what is open and end with `response.incomplete` or `response.failed`."""
        events = self._close_open(status="incomplete")
        for index in self._calls.values():
            self._output[index]["status"] = "incomplete"
            events.append(self._item_done(index))
        self._calls.clear()
        self._set_output()
        response_error(self.response, exc)
        incomplete = self.response["status"] == "incomplete"
        events.append(self._lifecycle("response.incomplete" if incomplete else "response.failed"))
        return events

    def cancelled(self) -> None:
        """Mark the response cancelled (no event: nobody is listening any more, or the
        client asked for it)."""
        for index in self._calls.values():
            self._output[index]["status"] = "incomplete"
        if self._open is not None:
            self._output[self._open]["status"] = "incomplete"
        self._set_output()
        self.response["status"] = "cancelled"

    # -- items --

    def _set_output(self) -> None:
        self.response["output"] = [
            item for index, item in enumerate(self._output) if index not in self._dropped
        ]

    def _add_item(self, item: Item, events: list[Event]) -> int:
        index = len(self._output)
        self._output.append(item)
        self._set_output()
        events.append(
            self.event("response.output_item.added", output_index=index, item=_copied(item))
        )
        return index

    def _item_done(self, index: int) -> Event:
        item = _copied(self._output[index])
        return self.event("response.output_item.done", output_index=index, item=item)

    def _delta(self, kind: str, text: str) -> list[Event]:
        events: list[Event] = []
        if self._open is not None and self._output[self._open]["type"] != kind:
            events += self._close_open()
        if self._open is None:
            if kind == "reasoning":
                item = reasoning_item(new_id("rs"), None, status="in_progress")
                part: dict[str, Any] = {"type": "reasoning_text", "text": ""}
            else:
                item = message_item(new_id("msg"), None, status="in_progress")
                part = text_part("")
            self._open = self._add_item(item, events)
            self._unconfirmed.append(self._open)
            self._text = ""
            events.append(self._part_event("response.content_part.added", part, self._open))
        self._text += text
        assert self._open is not None
        where = {"item_id": self._output[self._open]["id"], "output_index": self._open}
        if kind == "reasoning":
            events.append(
                self.event("response.reasoning_text.delta", **where, content_index=0, delta=text)
            )
        else:
            events.append(
                self.event(
                    "response.output_text.delta", **where, content_index=0, delta=text, logprobs=[]
                )
            )
        return events

    def _part_event(self, kind: str, part: dict[str, Any], index: int) -> Event:
        return self.event(
            kind, item_id=self._output[index]["id"], output_index=index, content_index=0, part=part
        )

    def _finish_streamed(self, kind: str, text: str) -> list[Event]:
        """A reasoning or message item, complete. The runtime gives a turn's items after its
        deltas: the item is the first one streamed of its kind not yet matched; one that was
        not streamed is added whole."""
        for index in self._unconfirmed:
            if self._output[index]["type"] == kind:
                self._unconfirmed.remove(index)
                if index == self._open:
                    return self._close_open(text=text)
                self._output[index]["content"] = [_part(kind, text)]  # already done: keep text
                self._set_output()
                return []
        events = self._close_open()
        events += self._delta(kind, text)
        self._unconfirmed.pop()  # just added by `_delta`: matched at once
        return events + self._close_open(text=text)

    def _close_open(
        self, *, text: str | None = None, status: str = "completed", dropped: bool = False
    ) -> list[Event]:
        """Finish the reasoning or message being streamed (with `text`, else what came)."""
        index = self._open
        if index is None:
            return []
        self._open = None
        final = self._text if text is None else text
        item = self._output[index]
        item_id = item["id"]
        if dropped:
            status = "incomplete"
        events: list[Event] = []
        part = _part(item["type"], final)
        if item["type"] == "reasoning":
            done = self.event(
                "response.reasoning_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=final,
            )
        else:
            done = self.event(
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=final,
                logprobs=[],
            )
        events.append(done)
        events.append(self._part_event("response.content_part.done", part, index))
        item["content"] = [part]
        item["status"] = status
        self._set_output()
        events.append(self._item_done(index))
        return events

    def _tool_call(self, call: ToolCall) -> list[Event]:
        events = self._close_open()
        item = mcp_item(
            new_id("mcp"),
            agent=call.agent,
            name=call.name,
            arguments=call.arguments,
            status="in_progress",
        )
        index = self._add_item(item, events)
        self._calls[call.call_id] = index
        events.append(
            self.event("response.mcp_call.in_progress", item_id=item["id"], output_index=index)
        )
        return events

    def _function_call(self, call: ToolCall) -> list[Event]:
        """A client call, streamed as OpenAI streams function calls (its arguments whole)."""
        events: list[Event] = []
        index = self._add_item(function_call_item(new_id("fc"), call, "in_progress"), events)
        item = self._output[index]
        where = {"item_id": item["id"], "output_index": index}
        events.append(
            self.event("response.function_call_arguments.delta", **where, delta=call.arguments)
        )
        events.append(
            self.event("response.function_call_arguments.done", **where, arguments=call.arguments)
        )
        item["arguments"] = call.arguments
        item["status"] = "completed"
        events.append(self._item_done(index))
        return events

    def _tool_result(self, result: ToolResult) -> list[Event]:
        events = self._close_open()
        index = self._calls.pop(result.call_id, None)
        if index is None:
            item = mcp_item(
                new_id("mcp"),
                agent=result.agent,
                name=result.name,
                arguments="",
                status="in_progress",
            )
            index = self._add_item(item, events)
        item = self._output[index]
        item["output"] = result.output
        item["status"] = "completed"
        events.append(
            self.event("response.mcp_call.completed", item_id=item["id"], output_index=index)
        )
        events.append(self._item_done(index))
        return events
