"""What a run produces: `RunResult`, its items, and the events `Runtime.stream` yields.

Plain values, independent of the Agents SDK's classes, so callers can keep, compare and
serialise them (`RunResult.to_dict()` is the CLI's `--json` object).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

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
        final_output: the final answer: text, or the parsed JSON value for agents with an
            `output_schema`.
        items: reasoning, tool calls, tool results, messages and handoffs, in order.
        usage: token usage summed over the run's model calls.
        turns: how many model calls the run made.
        trace_id: the id of the run's record in the local trace.
        agent: the agent that gave the final answer.
    """

    final_output: Any
    items: tuple[RunItem, ...]
    usage: Usage
    turns: int
    trace_id: str
    agent: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: `final_output`, `items`, `usage`, `turns`, `trace_id`, `agent`."""
        usage = dataclasses.asdict(self.usage)
        usage["total_tokens"] = self.usage.total_tokens
        return {
            "final_output": self.final_output,
            "items": [dataclasses.asdict(item) for item in self.items],
            "usage": usage,
            "turns": self.turns,
            "trace_id": self.trace_id,
            "agent": self.agent,
        }


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
