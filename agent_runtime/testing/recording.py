"""What the mock server saw: every request, raw and parsed, with helpers for assertions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runtime.testing.script import Reply

__all__ = ["FunctionCallRecord", "FunctionOutputRecord", "PromptMessage", "RecordedRequest"]

Api = Literal["responses", "chat_completions"]


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of the conversation as vLLM converts a request into harmony messages.

    `role` is the harmony author role; `name` is the author name of tool messages
    (`functions.get_weather`); `recipient` is set on tool calls (`functions.get_weather`).
    """

    role: Literal["system", "developer", "user", "assistant", "tool"]
    text: str
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionCallRecord:
    """A function call the client sent back in its history."""

    name: str
    arguments: str
    call_id: str | None


@dataclass(frozen=True, slots=True)
class FunctionOutputRecord:
    """A tool result the client sent back, with the name of the function it answers."""

    name: str
    output: str
    call_id: str | None


@dataclass(slots=True, kw_only=True)
class RecordedRequest:
    """One HTTP request the mock received, and how it answered.

    `messages` is the conversation as vLLM's harmony conversion sees it (system and developer
    messages built from the request parameters first, then the converted input); `prompt` is the
    rendered harmony prompt in harmony mode. `tool_names` lists the function tools the request
    offers, in order; `tool_parameters` maps each to the JSON Schema of its parameters (None when
    it declares none).
    """

    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    api: Api | None = None
    stream: bool = False
    status: int | None = None
    messages: tuple[PromptMessage, ...] = ()
    function_calls: tuple[FunctionCallRecord, ...] = ()
    function_outputs: tuple[FunctionOutputRecord, ...] = ()
    tool_names: tuple[str, ...] = ()
    tool_parameters: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    prompt: str | None = None
    prompt_token_ids: tuple[int, ...] | None = None
    prompt_tokens: int = 0
    reply: Reply | None = None
    reply_index: int | None = None
    response: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    error: Any = None
    disconnected: bool = False
    finished: bool = False

    @property
    def reasoning_texts(self) -> list[str]:
        """Texts of the analysis (reasoning) messages the client sent back."""
        return [m.text for m in self.messages if m.role == "assistant" and m.channel == "analysis"]

    @property
    def user_texts(self) -> list[str]:
        """Texts of the user messages."""
        return [m.text for m in self.messages if m.role == "user"]

    @property
    def is_model_call(self) -> bool:
        """True for `/v1/responses` and `/v1/chat/completions` requests."""
        return self.api is not None

    def __repr__(self) -> str:
        return (
            f"RecordedRequest(index={self.index}, {self.method} {self.path}, "
            f"status={self.status}, stream={self.stream})"
        )
