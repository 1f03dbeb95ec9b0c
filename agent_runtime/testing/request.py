"""A parsed model request, and the checks that `/v1/responses` and `/v1/chat/completions` share.

`ParsedRequest` is what the rest of the mock works from (prompt rendering, answers, recording);
`responses_request` and `chat_request` build it. The helpers here raise the errors vLLM's
FastAPI layer and harmony path raise, with the same status, type and message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runtime.testing.http_error import VLLMHTTPError, bad_request, not_found, validation_error
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
    "check_literal",
    "check_model",
    "check_type",
    "field_error",
    "harmony_effort",
    "missing_body",
    "model_error",
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


def missing_body(api: Api) -> VLLMHTTPError:
    """The validation error (400) of a request without a body."""
    return validation_error(
        api, [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
    )


def field_error(api: Api, key: str, value: Any, kind: str, msg: str) -> VLLMHTTPError:
    """A validation error (400) of the body field `key`, as FastAPI reports it."""
    return validation_error(api, [{"type": kind, "loc": ("body", key), "msg": msg, "input": value}])


def check_type(
    api: Api, body: Mapping[str, Any], key: str, kinds: tuple[type, ...], name: str
) -> Any:
    """`body[key]` when absent, null or one of `kinds` (a bool only when listed), else an error."""
    value = body.get(key)
    if value is None:
        return None
    wrong_bool = isinstance(value, bool) and bool not in kinds
    if wrong_bool or not isinstance(value, kinds):
        raise field_error(api, key, value, f"{name}_type", f"Input should be a valid {name}")
    return value


def check_model(model: Any, served: Sequence[str], api: Api) -> str | None:
    """The requested model (None when not given); 404 when the server does not serve it."""
    if model is None or model == "":
        return None
    if not isinstance(model, str):
        raise field_error(api, "model", model, "string_type", "Input should be a valid string")
    if model not in served:
        raise not_found(f"The model `{model}` does not exist.", param="model")
    return model


def model_error(api: Api, body: Mapping[str, Any], message: str, param: str | None) -> Exception:
    """A failing model-level validator (FastAPI reports the whole body as the input)."""
    suffix = f" (parameter={param})" if param else ""
    return validation_error(
        api,
        [
            {
                "type": "value_error",
                "loc": ("body",),
                "msg": f"Value error, {message}{suffix}",
                "input": dict(body),
            }
        ],
        param=param,
    )


def harmony_effort(value: str) -> Effort:
    """A reasoning effort harmony can render; 400 for the others."""
    if value not in _HARMONY_EFFORTS:
        raise bad_request(
            f"reasoning_effort={value!r} is not supported by Harmony. "
            "Supported values are: high, medium, low."
        )
    effort: Effort = value  # type: ignore[assignment]
    return effort


def check_literal(api: Api, key: str, value: Any, allowed: Sequence[str]) -> None:
    """Refuse a `value` that is not None and not one of `allowed`, as pydantic's `Literal` does."""
    if value is not None and value not in allowed:
        expected = ", ".join(f"'{v}'" for v in allowed[:-1]) + f" or '{allowed[-1]}'"
        raise field_error(api, key, value, "literal_error", f"Input should be {expected}")


def tool_description(tool_name: str, description: Any) -> str:
    """A function tool's description, which vLLM's harmony path requires to be a string."""
    if not isinstance(description, str):
        raise bad_request(
            "1 validation error for ToolDescription\ndescription\n  Input should be a valid "
            f"string [type=string_type, input_value={description!r}, "
            f"input_type={type(description).__name__}]\n    For further information visit "
            "https://errors.pydantic.dev/2.13/v/string_type"
        )
    return description
