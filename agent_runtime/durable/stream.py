"""Following a durable run while a worker executes it: `Runtime.follow(run_id)` yields the events
`Runtime.stream` yields, from any process, and ends with `RunFinished` (or raises the run's
error, as `result` does).

The worker writes the events to the run's DBOS stream (key `events`, in the durability
database) from the workflow itself, never from inside a step, at points every execution of the
run reaches in the same order (model calls are made one at a time):

- right after a model call's step: the reasoning, tool calls and message of its response;
- right before the next model call: the results of the previous response's tool calls (taken
  from the model's input, so calls the model got an error for count too), and `Handoff` plus
  `AgentChanged` when another agent makes the call.

A response that calls no tool is most likely the final answer: its items are not written then
(a run answering at once writes nothing); the follower takes them from the run's result, which
follows within milliseconds. Should the run go on (an answer sent back for breaking the
`output_schema`), they are written before the next model call.

A write from a workflow is an operation of its own that DBOS records in the same transaction
as the value (`DBOS.write_stream_async`), so a recovered run, which replays from the start,
finds each write already recorded and skips it: a follower sees every event once, in order,
whether it reads during the crash, after the recovery or after the end. A finished run's
stream stays in the database, so following it replays its events.

Live token deltas (`ReasoningDelta`, `TextDelta`) are not written. DBOS allows writing to a
stream from inside a step (`write_stream_from_step`), but such writes are not recorded: a model
call interrupted by a crash is made again and writes its deltas again, and the call that runs
its course may answer differently from the text already streamed. Durable model calls are also
`get_response` calls (no server-sent events) so that their recorded response is the one a plain
run gets. So a follower gets each model call's items when the call has finished, and tool
results when the tools of a turn have all finished, as `Runtime.stream` delivers items.

Cost: one small database write (one transaction) per model call that calls tools or hands
off, and one before the model call after it: 2 writes for a run of a tool call and an answer,
none for a run that answers at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.redact import own_logger
from agent_runtime.results import (
    AgentChanged,
    Handoff,
    Message,
    Reasoning,
    Retrying,
    RunEvent,
    RunFinished,
    RunItem,
    ToolCall,
    ToolResult,
    run_item,
)
from agent_runtime.text import valid_unicode

if TYPE_CHECKING:
    from agents import Agent
    from agents.items import ModelResponse

    from agent_runtime.durable.client import DurableClient

__all__ = ["STREAM_KEY", "EventLog", "decode", "encode", "follow"]

logger = own_logger(__name__)

STREAM_KEY = "events"
"""The key of a run's stream of events, in DBOS's stream table."""
_VERSION = 1

_EVENTS: dict[str, type[Any]] = {
    "reasoning": Reasoning,
    "tool_call": ToolCall,
    "tool_result": ToolResult,
    "message": Message,
    "handoff": Handoff,
    "agent_changed": AgentChanged,
    "retrying": Retrying,
}


def encode(events: Sequence[RunEvent]) -> dict[str, Any]:
    """Events as the JSON value of one stream record."""
    return {"v": _VERSION, "events": [dataclasses.asdict(event) for event in events]}


def decode(value: Any) -> list[RunEvent]:
    """The events of a stream record (those of kinds this version does not know left out)."""
    if not isinstance(value, Mapping):
        return []
    events: list[RunEvent] = []
    for fields in value.get("events", ()):
        fields = dict(fields)
        cls = _EVENTS.get(fields.pop("type", ""))
        if cls is None:
            continue
        try:
            events.append(cls(**fields))
        except TypeError:  # written by another version, with other fields
            logger.debug("stream event of unexpected shape skipped: %s", sorted(fields))
    return events


@dataclasses.dataclass(slots=True)
class EventLog:
    """What a durable run's follower has been told, to work out what is due at a model call.

    It lives in the run's workflow for one execution; the same calls on a replay compute the
    same events (from recorded responses), and their writes are found recorded.
    """

    agent: str | None = None
    """The agent of the last model call."""
    calls: dict[str, str] = dataclasses.field(default_factory=dict)
    """Call id → tool name of the last response's tool calls whose results are not out yet."""
    held: list[RunEvent] = dataclasses.field(default_factory=list)
    """The items of the last response when it called nothing: most likely the final answer,
    which the follower takes from the result (no write); written before the next call when
    there is one (an answer sent back for breaking the `output_schema`)."""
    answer_retries: int = 0

    def before_call(self, agent: str, input: Any) -> list[RunEvent]:
        """The events due when `agent` is about to call its model with `input`: the results of
        the last response's tool calls, and a handoff when the agent changed."""
        events, self.held = self.held, []
        if events:  # the answer broke the `output_schema` and was sent back
            self.answer_retries += 1
            events += [
                Retrying(agent=agent, attempt=self.answer_retries, cause=_retry_cause(input)),
                AgentChanged(agent=agent),
            ]
        if self.calls and isinstance(input, list):
            outputs = {
                str(item.get("call_id")): item.get("output")
                for item in input
                if isinstance(item, Mapping) and item.get("type") == "function_call_output"
            }
            for call_id, name in self.calls.items():
                if call_id in outputs:
                    events.append(
                        ToolResult(
                            agent=self.agent or agent,
                            name=name,
                            call_id=call_id,
                            output=valid_unicode(_output_text(outputs[call_id])),
                        )
                    )
        self.calls = {}
        if self.agent is not None and self.agent != agent:
            events += [Handoff(agent=self.agent, to_agent=agent), AgentChanged(agent=agent)]
        self.agent = agent
        return events

    def after_call(
        self, agent: Agent[Any], response: ModelResponse, handoffs: Sequence[Any]
    ) -> list[RunEvent]:
        """The items of a model response to write now (handoff calls are reported by the
        next call; the items of a response that calls nothing are held)."""
        from agents.items import MessageOutputItem, ReasoningItem, ToolCallItem

        handoff_tools = {str(getattr(handoff, "tool_name", "")) for handoff in handoffs}
        names: dict[str, str] = {}
        events: list[RunEvent] = []
        calls_any = False
        raw: Any
        for raw in response.output:
            kind = getattr(raw, "type", None)
            sdk_item: Any
            calls_any = calls_any or kind == "function_call"
            if kind == "reasoning":
                sdk_item = ReasoningItem(agent=agent, raw_item=raw)
            elif kind == "message":
                sdk_item = MessageOutputItem(agent=agent, raw_item=raw)
            elif kind == "function_call":
                if getattr(raw, "name", None) in handoff_tools:
                    continue
                sdk_item = ToolCallItem(agent=agent, raw_item=raw)
            else:
                continue
            item = run_item(sdk_item, names)
            if item is not None:
                events.append(item)
        self.calls = names
        if not calls_any:
            self.held = events
            return []
        return events


def _retry_cause(input: Any) -> str:
    """Why an answer was sent back, as `Runtime.stream`'s `Retrying` says it: from the request
    the model got (the input's last item)."""
    from agent_runtime.runtime.runs import _retry_request

    cause = "the answer does not match the output_schema"
    last = input[-1] if isinstance(input, list) and input else None
    content = last.get("content") if isinstance(last, Mapping) else None
    before, _, after = _retry_request("\0").partition("\0")
    if isinstance(content, str) and content.startswith(before) and content.endswith(after):
        cause += ": " + content[len(before) : len(content) - len(after)]
    return cause


def _output_text(output: Any) -> str:
    """A tool's output as the model got it, as text (as `ToolResult.output` has it)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):  # structured output: its text parts
        texts = [str(part.get("text", "")) for part in output if isinstance(part, Mapping)]
        return "\n".join(text for text in texts if text)
    return str(output)


async def write(events: Sequence[RunEvent]) -> None:
    """Write events to the stream of the current workflow (once per execution point: a
    replay finds the write recorded and skips it)."""
    if not events:
        return
    from dbos import DBOS, WorkflowSerializationFormat

    await DBOS.write_stream_async(
        STREAM_KEY, encode(events), serialization_type=WorkflowSerializationFormat.PORTABLE
    )


async def follow(client: DurableClient, run_id: str) -> AsyncGenerator[RunEvent, None]:
    """The events of a durable run as it executes, then `RunFinished` (see `Runtime.follow`).

    Raises:
        UnknownRunError: no run has this id.
        RunCancelledError: the run was cancelled.
        AgentRuntimeError: the run failed: the error `run` would have raised.
    """
    status = await client._status(run_id)
    yield AgentChanged(agent=status.agent)
    items: list[RunItem] = []
    values = _read(client, run_id)
    try:
        async for value in values:
            record = decode(value)
            for event in record:
                if isinstance(event, Reasoning | ToolCall | ToolResult | Message | Handoff):
                    items.append(event)
                elif isinstance(event, Retrying):
                    # An answer sent back: the result leaves it out, as `run` does.
                    del items[len(items) - record.index(event) :]
                yield event
    finally:
        await values.aclose()
    result = await client.result(run_id, wait=True, timeout=None)
    # What the run did after its last model call (a run that ends at a tool's output, say).
    if tuple(items) == result.items[: len(items)]:
        for item in result.items[len(items) :]:
            yield item
    yield RunFinished(result=result)


_END = object()


async def _read(client: DurableClient, run_id: str) -> AsyncGenerator[Any, None]:
    """The values of a run's stream until the run has ended and all are read.

    DBOS's blocking reader runs in a thread of its own rather than in the loop's default
    executor, which a `DurableEngine` closing in this process shuts down for a moment.
    """
    from agent_runtime.durable.client import _is_database_error, database_error

    loop = asyncio.get_running_loop()
    reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agent-runtime-follow")
    values: Generator[Any, None, None] | None = None
    try:
        dbos = await loop.run_in_executor(reader, client._dbos)
        values = dbos.read_stream(run_id, STREAM_KEY, polling_interval_sec=client.spec.poll_s)
        while True:
            try:
                value = await loop.run_in_executor(reader, next, values, _END)
            except Exception as exc:
                if _is_database_error(exc):
                    raise database_error(client.database_url, exc) from None
                raise
            if value is _END:
                return
            yield value
    finally:
        if values is not None:
            reader.submit(values.close)  # after a read still going, in the reader's thread
        reader.shutdown(wait=False)
