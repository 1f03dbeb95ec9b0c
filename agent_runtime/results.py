"""What a run produces: `RunResult`, its items, and the events `Runtime.stream` yields.

Plain values, independent of the Agents SDK's classes, so callers can keep, compare and
serialise them (`RunResult.to_dict()` is the CLI's `--json` object). `run_item` and
`run_result` make them from the SDK's run items and results (the SDK is imported only there).

Their text is valid Unicode: a lone surrogate from a tool (a file name that is not UTF-8, as
`os.listdir` returns it) or from the model (`"\\ud800"`) becomes U+FFFD, as in the session store
and the requests sent, so printing or encoding a result never fails.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agent_runtime.text import valid_unicode, valid_unicode_json

if TYPE_CHECKING:
    from agents.items import RunItem as SDKRunItem

__all__ = [
    "AgentChanged",
    "Handoff",
    "Message",
    "Reasoning",
    "ReasoningDelta",
    "Retrying",
    "RunEvent",
    "RunFinished",
    "RunItem",
    "RunResult",
    "TextDelta",
    "ToolCall",
    "ToolResult",
    "Usage",
    "call_id_of",
    "run_item",
    "run_result",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reasoning:
    """The model's reasoning (gpt-oss analysis channel) in one turn."""

    agent: str
    text: str
    type: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A tool call the model made; `arguments` is the JSON text the model wrote."""

    agent: str
    name: str
    arguments: str
    call_id: str
    type: Literal["tool_call"] = "tool_call"

    @property
    def parsed_arguments(self) -> Any:
        """The arguments as a dict when their text is a JSON object, else the text itself."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return self.arguments
        return value if isinstance(value, dict) else self.arguments


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """The output sent back to the model for a tool call (error text included)."""

    agent: str
    name: str
    call_id: str
    output: str
    type: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Text the model wrote to the user (a preamble or the final answer)."""

    agent: str
    text: str
    type: Literal["message"] = "message"


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff:
    """Control passed from one agent to another."""

    agent: str
    to_agent: str
    type: Literal["handoff"] = "handoff"


RunItem = Reasoning | ToolCall | ToolResult | Message | Handoff


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens used by all model calls of a run."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """The outcome of a finished run.

    Attributes:
        final_output: the final answer: text; for agents with an `output_schema`, the parsed
            JSON value (a JSON Schema) or an instance of the type it names.
        items: reasoning, tool calls, tool results, messages and handoffs, in order.
        usage: token usage summed over the run's model calls.
        turns: how many model calls the run made.
        trace_id: the id of the run's record in the local trace.
        agent: the agent that gave the final answer.
        warnings: what went wrong without costing the answer, e.g. the run's new items could
            not be stored in its session (the database stayed locked).
        pending_calls: calls of client tools (`tools=` of the run) that the run stopped at,
            for the caller to run: then `final_output` is None. Continue the session with a
            `function_call_output` item for each.
        session_items: how many items the run's session holds after it (None for a run
            without a session).
        pending_approvals: calls of tools declared with `approval: always` that the run
            stopped at, waiting for a person: then `final_output` is None. Decide each and
            continue with `Runtime.resume`.
        pending_state: the stopped run as JSON text (with `pending_approvals`), to save and
            give to `Runtime.resume` later, in this process or another.
        decisions: what `approve` and `reject` recorded: call id → (approved, reason), used
            by `Runtime.resume(result)`.
    """

    final_output: Any
    items: tuple[RunItem, ...]
    usage: Usage
    turns: int
    trace_id: str
    agent: str
    warnings: tuple[str, ...] = ()
    pending_calls: tuple[ToolCall, ...] = ()
    session_items: int | None = None
    pending_approvals: tuple[ToolCall, ...] = ()
    pending_state: str | None = dataclasses.field(default=None, repr=False)
    decisions: dict[str, tuple[bool, str | None]] = dataclasses.field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The run's tool calls (the `ToolCall` items), in order."""
        return [item for item in self.items if isinstance(item, ToolCall)]

    def approve(self, call: ToolCall | str) -> None:
        """Approve a pending call (one of `pending_approvals`, or its call id): it runs when
        the run goes on with `Runtime.resume(result)`."""
        self.decisions[self._pending_id(call)] = (True, None)

    def reject(self, call: ToolCall | str, reason: str | None = None) -> None:
        """Reject a pending call: when the run goes on (`Runtime.resume(result)`), the model
        gets "the user did not approve" it, with `reason`, as the call's output."""
        self.decisions[self._pending_id(call)] = (False, reason)

    def _pending_id(self, call: ToolCall | str) -> str:
        call_id = call.call_id if isinstance(call, ToolCall) else call
        pending = [item.call_id for item in self.pending_approvals]
        if call_id not in pending:
            waiting = ", ".join(repr(item) for item in pending) or "none"
            raise ValueError(
                f"no call waiting for approval has id {call_id!r} (waiting: {waiting})"
            )
        return call_id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: `final_output` (a typed output as its JSON value), `items`,
        `usage`, `turns`, `trace_id`, `agent`, and `warnings`, `pending_calls` and
        `pending_approvals` when there are any."""
        from pydantic_core import to_jsonable_python

        usage = dataclasses.asdict(self.usage)
        usage["total_tokens"] = self.usage.total_tokens
        document = {
            "final_output": _valid_json(to_jsonable_python(self.final_output, fallback=str)),
            "items": [dataclasses.asdict(item) for item in self.items],
            "usage": usage,
            "turns": self.turns,
            "trace_id": self.trace_id,
            "agent": self.agent,
        }
        if self.warnings:
            document["warnings"] = list(self.warnings)
        if self.pending_calls:
            document["pending_calls"] = [dataclasses.asdict(call) for call in self.pending_calls]
        if self.pending_approvals:
            document["pending_approvals"] = [
                dataclasses.asdict(call) for call in self.pending_approvals
            ]
        return document


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningDelta:
    """A piece of reasoning text as it streams."""

    agent: str
    text: str
    type: Literal["reasoning_delta"] = "reasoning_delta"


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta:
    """A piece of answer text as it streams."""

    agent: str
    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentChanged:
    """Another agent took over (a handoff), or the first agent started."""

    agent: str
    type: Literal["agent_changed"] = "agent_changed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Retrying:
    """A model call failed part-way and is made again: drop the partial text since the last
    item. `attempt` is the attempt that failed (1-based); `cause` says why."""

    agent: str
    attempt: int
    cause: str
    type: Literal["retrying"] = "retrying"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished:
    """The last event of a stream, with the whole result."""

    result: RunResult
    type: Literal["run_finished"] = "run_finished"


RunEvent = ReasoningDelta | TextDelta | AgentChanged | Retrying | RunItem | RunFinished
"""What `Runtime.stream` yields: deltas as they arrive, each item once complete, then the end."""


# -- from the SDK's run items ------------------------------------------------------------------

_valid = valid_unicode
_valid_json = valid_unicode_json


def _text_of(raw: Any) -> str:
    parts = getattr(raw, "content", None) or []
    texts = [getattr(p, "text", "") for p in parts if getattr(p, "text", None)]
    if not texts:
        texts = [getattr(p, "text", "") for p in getattr(raw, "summary", None) or []]
    return "\n".join(texts)


def run_item(item: SDKRunItem, names: dict[str, str]) -> RunItem | None:
    """An SDK run item as a runtime item (None for kinds the runtime does not report).

    `names` maps call ids to tool names: filled in by tool calls, read by their results.
    """
    from agents.items import (
        HandoffOutputItem,
        ItemHelpers,
        MessageOutputItem,
        ReasoningItem,
        ToolCallItem,
        ToolCallOutputItem,
    )

    agent = item.agent.name
    if isinstance(item, ReasoningItem):
        return Reasoning(agent=agent, text=_valid(_text_of(item.raw_item)))
    if isinstance(item, ToolCallItem):
        raw = item.raw_item
        call_id = str(getattr(raw, "call_id", "") or "")
        name = str(getattr(raw, "name", "") or type(raw).__name__)
        names[call_id] = name
        arguments = _valid(str(getattr(raw, "arguments", "")))
        return ToolCall(agent=agent, name=_valid(name), arguments=arguments, call_id=call_id)
    if isinstance(item, ToolCallOutputItem):
        call_id = call_id_of(item)
        return ToolResult(
            agent=agent,
            name=names.get(call_id, ""),
            call_id=call_id,
            output=_valid(str(item.output)),
        )
    if isinstance(item, MessageOutputItem):
        return Message(agent=agent, text=_valid(ItemHelpers.text_message_output(item)))
    if isinstance(item, HandoffOutputItem):
        return Handoff(agent=item.source_agent.name, to_agent=item.target_agent.name)
    return None


def call_id_of(item: SDKRunItem) -> str:
    """The call id of an SDK tool call or tool output item ("" for other items)."""
    raw = item.raw_item
    found = raw.get("call_id", "") if isinstance(raw, dict) else getattr(raw, "call_id", "")
    return str(found or "")


def run_result(
    result: Any,
    *,
    trace_id: str,
    client_call: Callable[[SDKRunItem], bool] | None = None,
) -> RunResult:
    """The SDK's run result (finished, or a finished stream) as a `RunResult`.

    With `client_call`, the run stopped at calls of client tools: the tool call items it
    picks are the `pending_calls` (their placeholder outputs left out), `final_output` None.
    """
    from agents.items import ToolCallItem

    names: dict[str, str] = {}
    pending: list[ToolCall] = []
    pending_ids: set[str] = set()
    items: list[RunItem] = []
    for item in result.new_items:
        converted = run_item(item, names)
        if converted is None:
            continue
        if client_call is not None and isinstance(item, ToolCallItem) and client_call(item):
            assert isinstance(converted, ToolCall)
            pending.append(converted)
            pending_ids.add(converted.call_id)
        elif not (isinstance(converted, ToolResult) and converted.call_id in pending_ids):
            items.append(converted)
    approvals = tuple(
        ToolCall(
            agent=item.agent.name,
            name=_valid(str(item.tool_name or "")),
            arguments=_valid(str(getattr(item.raw_item, "arguments", "") or "")),
            call_id=call_id_of(item),
        )
        for item in getattr(result, "interruptions", None) or ()
    )
    usage = result.context_wrapper.usage
    final_output = None if pending or approvals else result.final_output
    return RunResult(
        pending_approvals=approvals,
        final_output=_valid(final_output) if isinstance(final_output, str) else final_output,
        items=tuple(items),
        pending_calls=tuple(pending),
        usage=Usage(
            requests=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.output_tokens_details.reasoning_tokens,
            cached_tokens=usage.input_tokens_details.cached_tokens,
        ),
        turns=len(result.raw_responses),
        trace_id=trace_id,
        agent=result.last_agent.name,
    )
