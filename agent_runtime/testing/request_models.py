"""vLLM's pydantic request models, so that the mock refuses a body as vLLM's FastAPI layer does.

`ResponsesBody` and `ChatBody` declare the fields of vLLM's `ResponsesRequest` and
`ChatCompletionRequest` in vLLM's order, typed as vLLM types them (openai's own types for
Responses input items, tools, tool choice and reasoning), with vLLM's model validators.
`validate_body` runs a body through one of them and turns pydantic's errors into vLLM's answer.

The module loads openai's Responses types (about a second): `responses_request` and
`chat_request` import it on their first request.
"""

from __future__ import annotations

from typing import Any, Literal

from openai.types.responses import (
    ResponseInputItemParam,
    ResponseOutputItem,
    ResponsePrompt,
    ResponseTextConfig,
)
from openai.types.responses.response import ToolChoice
from openai.types.responses.tool import Tool
from openai.types.shared import Reasoning
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from agent_runtime.testing.http_error import VLLMValidationError, validation_error
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.recording import Api

__all__ = ["ChatBody", "ResponsesBody", "validate_body"]

_Includable = Literal[
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
    "file_search_call.results",
    "message.input_image.image_url",
    "message.output_text.logprobs",
    "reasoning.encrypted_content",
    "web_search_call.action.sources",
    "web_search_call.results",
]


class _VLLMModel(BaseModel):
    """vLLM's `OpenAIBaseModel`: unknown fields are accepted (vLLM logs them)."""

    model_config = ConfigDict(extra="allow")


def _profile(info: ValidationInfo) -> VLLMProfile:
    context = info.context or {}
    profile = context.get("profile")
    assert isinstance(profile, VLLMProfile)
    return profile


class ResponsesBody(_VLLMModel):
    """vLLM's `ResponsesRequest` (`POST /v1/responses`)."""

    background: bool | None = False
    include: list[_Includable] | None = None
    input: str | list[ResponseInputItemParam | ResponseOutputItem]
    instructions: str | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    metadata: dict[str, str] | None = None
    model: str | None = None
    logit_bias: dict[str, float] | None = None
    parallel_tool_calls: bool | None = True
    previous_response_id: str | None = None
    prompt: ResponsePrompt | None = None
    reasoning: Reasoning | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] = "auto"
    store: bool | None = True
    stream: bool | None = False
    temperature: float | None = None
    text: ResponseTextConfig | None = None
    tool_choice: ToolChoice = "auto"
    tools: list[Tool] = Field(default_factory=list)
    top_logprobs: int | None = 0
    top_p: float | None = None
    top_k: int | None = None
    truncation: Literal["auto", "disabled"] | None = "disabled"
    user: str | None = None
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False
    prompt_cache_key: str | None = None
    request_id: str | None = None
    priority: int = 0
    cache_salt: str | None = None
    enable_response_messages: bool = False
    previous_input_messages: list[dict[str, Any]] | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    ignore_eos: bool = False

    @model_validator(mode="before")
    @classmethod
    def _vllm_checks(cls, data: Any) -> Any:
        """vLLM's before-validators, in the order they run."""
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("input"), list):
            data["input"] = [_replayed_item(item) for item in data["input"]]
        tools = data.get("tools")
        if not tools and "tool_choice" not in data:
            data["tool_choice"] = "none"
        _check_responses_tool_choice(data.get("tool_choice"), tools)
        if data.get("prompt") is not None:
            raise VLLMValidationError("prompt template is not supported", parameter="prompt")
        if data.get("background") and not data.get("store", True):
            raise VLLMValidationError(
                "background can only be used when `store` is true", parameter="background"
            )
        return data


def _replayed_item(item: Any) -> Any:
    """An output item sent back as input, as vLLM takes it: a `reasoning` item needs no `id`,
    an assistant `message` no `id` or `status`, its `output_text` parts no `annotations`.
    (openai's types require them; a client replaying a conversation often drops them.)"""
    if not isinstance(item, dict):
        return item
    if item.get("type") == "reasoning" and "id" not in item:
        return {**item, "id": ""}
    if item.get("type") == "message" and item.get("role") == "assistant":
        content = item.get("content")
        if isinstance(content, list):
            content = [
                {"annotations": [], **part}
                if isinstance(part, dict) and part.get("type") == "output_text"
                else part
                for part in content
            ]
        return {"id": "", "status": "completed", **item, "content": content}
    return item


def _check_responses_tool_choice(tool_choice: Any, tools: Any) -> None:
    if tool_choice == "required" and not tools:
        raise VLLMValidationError(
            "Tool choice 'required' must be specified with 'tools' parameter.",
            parameter="tool_choice",
        )
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        names = {
            tool.get("name")
            for tool in (tools if isinstance(tools, list) else [])
            if isinstance(tool, dict) and tool.get("type") == "function"
        }
        if tool_choice.get("name") not in names:
            raise VLLMValidationError(
                "Tool choice 'function' not found in 'tools' parameter.", parameter="tool_choice"
            )


class CustomChatCompletionMessageParam(_VLLMModel):
    """A chat message: vLLM's union of message types takes any `role` string."""

    role: str


class FunctionDefinition(_VLLMModel):
    """A chat function tool's `function`."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ChatCompletionToolsParam(_VLLMModel):
    """A chat tool."""

    type: Literal["function"] = "function"
    function: FunctionDefinition


class ChatCompletionNamedFunction(_VLLMModel):
    """The function a named `tool_choice` forces."""

    name: str


class ChatCompletionNamedToolChoiceParam(_VLLMModel):
    """A named chat `tool_choice`."""

    function: ChatCompletionNamedFunction
    type: Literal["function"] = "function"


class StreamOptions(_VLLMModel):
    """Chat `stream_options`."""

    include_usage: bool | None = True
    continuous_usage_stats: bool | None = False


class ChatBody(_VLLMModel):
    """vLLM's `ChatCompletionRequest` (`POST /v1/chat/completions`)."""

    messages: list[CustomChatCompletionMessageParam]
    model: str | None = None
    frequency_penalty: float | None = 0.0
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = 0
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = 1
    presence_penalty: float | None = 0.0
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: list[ChatCompletionToolsParam] | None = None
    tool_choice: (
        Literal["none"]
        | Literal["auto"]
        | Literal["required"]
        | ChatCompletionNamedToolChoiceParam
        | None
    ) = "none"
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = (
        None
    )
    include_reasoning: bool = True
    parallel_tool_calls: bool | None = True
    user: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _vllm_checks(cls, data: Any, info: ValidationInfo) -> Any:
        """vLLM's before-validators, in the order they run; vLLM 0.33 names the parameter of
        its `tools`/`tool_choice` checks (before, they raise plain `ValueError`s)."""
        if not isinstance(data, dict):
            return data
        named = _profile(info).error_parameters
        tools = data.get("tools")
        if tools == []:
            raise _chat_error(
                "`tools` must not be an empty array. Either provide at least one tool or omit "
                "the field entirely.",
                "tools" if named else None,
            )
        if "tool_choice" not in data and tools:
            data["tool_choice"] = "auto"
        _check_chat_tool_choice(data.get("tool_choice"), tools, "tool_choice" if named else None)
        if data.get("stream_options") is not None and not data.get("stream"):
            raise VLLMValidationError(
                "Stream options can only be defined when `stream=True`.",
                parameter="stream_options",
            )
        return data


def _chat_error(message: str, parameter: str | None) -> ValueError:
    return VLLMValidationError(message, parameter=parameter) if parameter else ValueError(message)


def _check_chat_tool_choice(tool_choice: Any, tools: Any, parameter: str | None) -> None:
    if tool_choice is None or tool_choice == "none":
        return
    if tools is None:
        raise _chat_error("When using `tool_choice`, `tools` must be set.", parameter)
    if isinstance(tool_choice, dict) and isinstance(tool_choice.get("function"), dict):
        names = {
            tool["function"].get("name")
            for tool in (tools if isinstance(tools, list) else [])
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
        }
        if tool_choice["function"].get("name") not in names:
            raise _chat_error(
                "The tool specified in `tool_choice` does not match any of the specified `tools`",
                parameter,
            )


_MODELS: dict[Api, type[_VLLMModel]] = {"responses": ResponsesBody, "chat_completions": ChatBody}


def validate_body(api: Api, body: Any, profile: VLLMProfile) -> Any:
    """`body` validated by vLLM's request model for `api` (a `ResponsesBody` or `ChatBody`).

    The model's before-validators see a copy of the body (vLLM's change it, and its errors show
    the changed body).

    Raises:
        VLLMHTTPError: the 400 vLLM answers for a body its request model refuses.
    """
    data = dict(body) if isinstance(body, dict) else body
    try:
        return _MODELS[api].model_validate(data, context={"profile": profile})
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)
        ]
        raise validation_error(api, profile, errors) from None
