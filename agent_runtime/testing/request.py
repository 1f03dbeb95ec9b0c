"""A parsed model request, and the checks that `/v1/responses` and `/v1/chat/completions` share.

`ParsedRequest` is what the rest of the mock works from (prompt rendering, answers, recording);
`responses_request` and `chat_request` build it. The helpers here raise the errors vLLM's
FastAPI layer and harmony path raise, with the same status, type and message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from agent_runtime.testing.http_error import (
    VLLMHTTPError,
    bad_request,
    not_found,
    parameter_error,
    validation_error,
)
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.recording import (
    Api,
    FunctionCallRecord,
    FunctionOutputRecord,
    PromptMessage,
)

__all__ = [
    "Effort",
    "FunctionTool",
    "ParsedRequest",
    "check_model",
    "field_error",
    "harmony_effort",
    "missing_body",
    "tool_description",
]

Effort = Literal["low", "medium", "high"]
_HARMONY_EFFORTS = ("high", "medium", "low")


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function tool declared in the request."""

    name: str
    description: str
    parameters: Mapping[str, Any] | None


@dataclass(slots=True, kw_only=True)
class ParsedRequest:
    """A validated model request, reduced to what the mock needs."""

    api: Api
    body: Mapping[str, Any]
    model: str | None
    stream: bool
    instructions: str | None = None
    system_identity: str | None = None
    reasoning_effort: Effort | None = None
    tools: list[FunctionTool] = field(default_factory=list)
    developer_message: bool = False
    tool_choice: Any = None
    messages: list[PromptMessage] = field(default_factory=list)
    function_calls: list[FunctionCallRecord] = field(default_factory=list)
    function_outputs: list[FunctionOutputRecord] = field(default_factory=list)
    max_tokens: int | None = None
    include_usage: bool = False
    include_reasoning: bool = True
    parallel_tool_calls: bool = True


# -- shared checks --------------------------------------------------------------------------


def missing_body(api: Api, profile: VLLMProfile) -> VLLMHTTPError:
    """The validation error (400) of a request without a body."""
    return validation_error(
        api,
        profile,
        [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}],
    )


def field_error(
    api: Api, profile: VLLMProfile, loc: tuple[Any, ...], value: Any, kind: str, msg: str
) -> VLLMHTTPError:
    """A validation error (400) at `loc` in the body, as FastAPI reports it."""
    return validation_error(
        api, profile, [{"type": kind, "loc": ("body", *loc), "msg": msg, "input": value}]
    )


def check_model(model: str | None, served: Sequence[str], profile: VLLMProfile) -> str | None:
    """The requested model (None when not given); 404 when the server does not serve it.

    vLLM 0.33 lists the served names in the message.
    """
    if not model:
        return None
    if model not in served:
        message = f"The model `{model}` does not exist."
        if profile.unknown_model_aliases:
            message += f" Valid aliases: {', '.join(served)}."
        raise not_found(message, param="model")
    return model


def harmony_effort(value: str, profile: VLLMProfile) -> Effort:
    """A reasoning effort harmony can render; 400 for the others."""
    if value not in _HARMONY_EFFORTS:
        raise parameter_error(
            profile,
            f"reasoning_effort={value!r} is not supported by Harmony. "
            "Supported values are: high, medium, low.",
            "reasoning_effort",
        )
    effort: Effort = value  # type: ignore[assignment]
    return effort


def tool_description(description: str | None, profile: VLLMProfile) -> str:
    """A function tool's description: harmony's `ToolDescription` refuses a missing one before
    vLLM 0.29, which renders it as "" since."""
    if description is None and profile.tool_description_required:
        from openai_harmony import ToolDescription

        try:
            ToolDescription.new("", None, parameters=None)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise bad_request(str(exc)) from None
    return description or ""
