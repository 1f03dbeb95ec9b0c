"""The body of `POST /v1/responses`, checked: a bad field is a 400 that names it.

Fields of OpenAI's Responses API that a served agent has no use for (`include`, `text`,
`truncation`, `user`, ...) are accepted and ignored, so that clients that send them (the Agents
SDK does) work; a field OpenAI does not have is refused with a did-you-mean. `tools` takes
function tools (the client's, see `responses`); other tool types are refused, naming
`tools[i].type`. `tool_choice` is a mode (`auto`, `none`, `required`) for the run; naming a
tool is refused.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent_runtime.server.errors import APIError, validation_error
from agent_runtime.text import did_you_mean
from agent_runtime.tools import ClientTool

__all__ = ["CreateResponse", "FunctionToolParam", "parse_create"]

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


class FunctionToolParam(BaseModel):
    """A function tool of the client: `{"type": "function", "name", "description",
    "parameters", "strict"}` (OpenAI's other keys, e.g. `defer_loading`, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["function"]
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    def client_tool(self) -> ClientTool:
        """The tool for the runtime; `strict` unset means false (the schema is used as sent)."""
        return ClientTool(
            name=self.name,
            description=self.description or "",
            parameters=self.parameters or {"type": "object", "properties": {}},
            strict=bool(self.strict),
        )

    def echoed(self) -> dict[str, Any]:
        """The tool as the Response object shows it."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": bool(self.strict),
        }


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
    tools: list[FunctionToolParam] | None = None
    tool_choice: Literal["auto", "none", "required"] | None = None

    @field_validator("tools", mode="before")
    @classmethod
    def _function_tools_only(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, tool in enumerate(value):
                kind = tool.get("type") if isinstance(tool, dict) else None
                if isinstance(kind, str) and kind != "function":
                    raise APIError(
                        400,
                        f"tools of type `{kind}` are not supported: a served agent uses its own "
                        "tools (agents.yaml) and the client's `function` tools.",
                        param=f"tools[{index}].type",
                    )
        return value

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _a_mode(cls, value: Any) -> Any:
        if value is None or value in ("auto", "none", "required"):
            return value
        what = "naming a tool is" if isinstance(value, dict) else f"{value!r} is"
        raise APIError(
            400,
            f"`tool_choice` {what} not supported: send `auto`, `none` or `required`, or leave "
            "it out.",
            param="tool_choice",
        )

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
        return self

    def client_tools(self) -> list[ClientTool]:
        """The client's function tools, for the run."""
        return [tool.client_tool() for tool in self.tools or ()]

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
            "tool_choice": self.tool_choice,
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
