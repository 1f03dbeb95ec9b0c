"""The body of `POST /v1/responses`, checked: a bad field is a 400 that names it.

Fields of OpenAI's Responses API that a served agent has no use for (`include`, `text`,
`tool_choice`, `truncation`, `user`, ...) are accepted and ignored, so that clients that send
them (the Agents SDK does) work; a field OpenAI does not have is refused with a did-you-mean.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent_runtime.server.errors import APIError, validation_error
from agent_runtime.text import did_you_mean

__all__ = ["CreateResponse", "parse_create"]

_IGNORED = frozenset(
    {
        "access_programs",
        "background_options",
        "context_management",
        "image",
        "include",
        "max_tool_calls",
        "moderation",
        "parallel_tool_calls",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "safety_identifier",
        "service_tier",
        "stream_options",
        "text",
        "tool_choice",
        "top_logprobs",
        "truncation",
        "user",
    }
)
"""OpenAI's request fields that are accepted and have no effect here."""


class Conversation(BaseModel):
    """`conversation: {"id": "..."}` (the object form)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)


class ReasoningOptions(BaseModel):
    """`reasoning: {"effort": ...}`; `summary` is accepted (gpt-oss gives full reasoning)."""

    model_config = ConfigDict(extra="forbid")
    effort: Literal["low", "medium", "high"] | None = None
    summary: str | None = None
    generate_summary: str | None = None


class CreateResponse(BaseModel):
    """What `POST /v1/responses` takes."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool = False
    store: bool = True
    background: bool = False
    previous_response_id: str | None = Field(default=None, min_length=1)
    conversation: str | Conversation | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    reasoning: ReasoningOptions | None = None
    tools: list[dict[str, Any]] | None = None

    @field_validator("input")
    @classmethod
    def _items_have_a_kind(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, item in enumerate(value):
                if "type" not in item and "role" not in item:
                    raise ValueError(
                        f"item {index} has neither `type` nor `role`; a message is "
                        '`{"role": "user", "content": "..."}`'
                    )
        return value

    @model_validator(mode="after")
    def _known_fields(self) -> CreateResponse:
        for name in self.model_extra or {}:
            if name not in _IGNORED:
                known = [*type(self).model_fields, *_IGNORED]
                hint = did_you_mean(name, known) or "."
                raise APIError(400, f"unknown field `{name}`{hint}", param=name)
        if self.tools:
            raise APIError(
                400,
                "function tools sent by the client are not supported yet: the agent uses the "
                "tools declared for it in agents.yaml. Send `tools: []` or leave it out.",
                param="tools",
            )
        return self

    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, Conversation):
            return self.conversation.id
        return self.conversation

    def reasoning_effort(self) -> str | None:
        return self.reasoning.effort if self.reasoning is not None else None

    def model_settings(self) -> dict[str, Any]:
        """The run's `model_settings=`: what the request sets, nothing else."""
        settings = {
            "max_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "reasoning_effort": self.reasoning_effort(),
        }
        return {key: value for key, value in settings.items() if value is not None}


def parse_create(body: Any) -> CreateResponse:
    """The checked body, or the 400 that names the bad field."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object.")
    try:
        return CreateResponse.model_validate(body)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None
