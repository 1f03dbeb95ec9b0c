"""Request bodies → the conversation vLLM builds from them, with vLLM's validation.

The rules follow vLLM's harmony path (`responses/serving.py`, `parser/harmony_utils.py`,
`serve/render/serving.py`): which input items are accepted, how each becomes a harmony message,
and which requests are refused with which status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runtime.testing.errors import VLLMHTTPError, bad_request, not_found
from agent_runtime.testing.recording import (
    Api,
    FunctionCallRecord,
    FunctionOutputRecord,
    PromptMessage,
)

__all__ = ["ParsedRequest", "parse_chat_request", "parse_responses_request"]

Effort = Literal["low", "medium", "high"]
_EFFORTS = ("low", "medium", "high")
_BUILTIN_TOOL_TYPES = ("web_search_preview", "code_interpreter", "container", "mcp")
_INCLUDE_VALUES = frozenset(
    {
        "code_interpreter_call.outputs",
        "computer_call_output.output.image_url",
        "file_search_call.results",
        "message.input_image.image_url",
        "message.output_text.logprobs",
        "reasoning.encrypted_content",
        "web_search_call.action.sources",
        "web_search_call.results",
    }
)


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function tool declared in the request."""

    name: str
    description: str | None
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
    tool_choice: Any = None
    messages: list[PromptMessage] = field(default_factory=list)
    function_calls: list[FunctionCallRecord] = field(default_factory=list)
    function_outputs: list[FunctionOutputRecord] = field(default_factory=list)
    max_tokens: int | None = None
    include_usage: bool = False
    include_reasoning: bool = True


def _schema_error(message: str, *, param: str | None = None) -> VLLMHTTPError:
    """A request that fails vLLM's pydantic request model: 400 `Bad Request`."""
    return VLLMHTTPError(400, message, type="Bad Request", param=param)


def _require_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise _schema_error(
            f"1 validation error for request body\n  Input should be a valid dictionary or "
            f"object to extract fields from [type=model_attributes_type, input_type="
            f"{type(body).__name__}]"
        )
    return body


def _optional(body: Mapping[str, Any], key: str, kinds: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise _schema_error(f"`{key}` has the wrong type: {value!r}", param=key)
    if not isinstance(value, kinds):
        raise _schema_error(f"`{key}` has the wrong type: {value!r}", param=key)
    return value


def _check_model(model: Any, served: Sequence[str]) -> str | None:
    if model is None or model == "":
        return None
    if not isinstance(model, str):
        raise _schema_error(f"`model` must be a string, not {type(model).__name__}", param="model")
    if model not in served:
        raise not_found(f"The model `{model}` does not exist.", param="model")
    return model


def _text_of(content: Any, where: str) -> str:
    """Text of a message's content: a string or a list of text parts (`.text` joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") in ("input_image", "image_url"):
                raise bad_request(f"Unknown input type: {part.get('type')}")
            else:
                raise _schema_error(f"{where}: a content part needs a `text` string: {part!r}")
        return "".join(texts)
    raise _schema_error(f"{where}: `content` must be a string or a list of parts", param="input")


def _effort(value: Any) -> Effort | None:
    if value is None:
        return None
    if value not in _EFFORTS:
        raise bad_request(
            f"Invalid reasoning effort: {value!r}. gpt-oss supports 'low', 'medium' and 'high'."
        )
    effort: Effort = value
    return effort


def _function_tools_responses(tools: Any) -> list[FunctionTool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _schema_error("`tools` must be a list", param="tools")
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise _schema_error(f"invalid tool: {tool!r}", param="tools")
        kind = tool["type"]
        if kind == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise _schema_error("a function tool needs a `name`", param="tools")
            out.append(FunctionTool(name, tool.get("description"), tool.get("parameters")))
        elif kind not in _BUILTIN_TOOL_TYPES:
            raise bad_request(f"tool type {kind} not supported")
    return out


def parse_responses_request(body: Any, *, served_models: Sequence[str]) -> ParsedRequest:
    """Validate a `POST /v1/responses` body and convert its input as vLLM does."""
    body = _require_object(body)
    if "input" not in body:
        raise _schema_error("1 validation error for ResponsesRequest\ninput\n  Field required")
    model = _check_model(body.get("model"), served_models)
    stream = bool(_optional(body, "stream", bool))
    instructions = _optional(body, "instructions", str)
    reasoning = _optional(body, "reasoning", dict)
    include = _optional(body, "include", list)
    if include is not None:
        for value in include:
            if value not in _INCLUDE_VALUES:
                raise _schema_error(f"invalid `include` value: {value!r}", param="include")
        if "message.output_text.logprobs" in include:
            raise VLLMHTTPError(
                400,
                "logprobs are not supported with gpt-oss models",
                type="invalid_request_error",
                param="include",
            )
    if body.get("prompt") is not None:
        raise bad_request("prompt template is not supported", param="prompt")
    if body.get("background"):
        raise VLLMHTTPError(
            400,
            "This vLLM engine does not support `store=True` and therefore does not support "
            "the background mode. To enable these features, set the environment variable "
            "`VLLM_ENABLE_RESPONSES_API_STORE=1` when launching the vLLM server.",
            type="invalid_request_error",
            param="background",
        )
    previous = body.get("previous_response_id")
    if previous is not None:
        raise VLLMHTTPError(
            404,
            f"Response with id '{previous}' not found.",
            type="invalid_request_error",
            param="response_id",
        )
    tools = _function_tools_responses(body.get("tools"))
    tool_choice = body.get("tool_choice", "auto")
    has_tools = bool(body.get("tools"))
    if tool_choice not in (None, "auto", "none"):
        if not has_tools:
            raise _schema_error(
                "When using `tool_choice`, `tools` must be set.", param="tool_choice"
            )
        if (
            isinstance(tool_choice, dict)
            and tool_choice.get("type") == "function"
            and tool_choice.get("name") not in {t.name for t in tools}
        ):
            raise _schema_error(
                f"Tool '{tool_choice.get('name')}' has not been passed in `tools`.",
                param="tool_choice",
            )
        raise VLLMHTTPError(
            501,
            "Only 'auto' or 'none' tool_choice is supported in response API with Harmony",
            type="NotImplementedError",
        )
    max_tokens = _optional(body, "max_output_tokens", int)
    request = ParsedRequest(
        api="responses",
        body=body,
        model=model,
        stream=stream,
        instructions=instructions,
        reasoning_effort=_effort(reasoning.get("effort")) if reasoning else None,
        tools=tools,
        tool_choice=tool_choice if tool_choice is not None else "auto",
        max_tokens=max_tokens,
    )
    _convert_responses_input(body["input"], request)
    return request


def _convert_responses_input(input_: Any, request: ParsedRequest) -> None:
    if isinstance(input_, str):
        request.messages.append(PromptMessage("user", input_))
        return
    if not isinstance(input_, list):
        raise _schema_error("`input` must be a string or a list of items", param="input")
    calls_by_id: dict[str, str] = {}
    for position, item in enumerate(input_):
        where = f"input[{position}]"
        if not isinstance(item, dict):
            raise _schema_error(f"{where} must be an object", param="input")
        kind = item.get("type", "message")
        if kind == "message":
            _convert_message_item(item, where, request)
        elif kind == "reasoning":
            parts = item.get("content")
            if not parts:
                continue  # vLLM drops reasoning without `content` (summary-only) silently
            texts = [p.get("text", "") for p in parts if isinstance(p, dict)]
            request.messages.append(PromptMessage("assistant", "\n".join(texts), "analysis"))
        elif kind == "function_call":
            name, call_id = item.get("name"), item.get("call_id")
            arguments = item.get("arguments")
            if not isinstance(name, str) or not isinstance(arguments, str):
                raise _schema_error(
                    f"{where}: a function_call needs `name` and `arguments` strings",
                    param="input",
                )
            if isinstance(call_id, str):
                calls_by_id[call_id] = name
            request.function_calls.append(FunctionCallRecord(name, arguments, call_id))
            request.messages.append(
                PromptMessage(
                    "assistant",
                    arguments,
                    "commentary",
                    recipient=f"functions.{name}",
                    content_type="json",
                )
            )
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            output = item.get("output")
            name = calls_by_id.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise bad_request(f"No call message found for {call_id}")
            if not isinstance(output, str):
                output = _text_of(output, where)
            request.function_outputs.append(FunctionOutputRecord(name, output, call_id))
            request.messages.append(
                PromptMessage(
                    "tool",
                    output,
                    "commentary",
                    recipient="assistant",
                    name=f"functions.{name}",
                )
            )
        else:
            raise bad_request(f"Unknown input type: {kind}")


def _convert_message_item(item: Mapping[str, Any], where: str, request: ParsedRequest) -> None:
    role = item.get("role")
    text = _text_of(item.get("content"), where)
    if role == "user":
        request.messages.append(PromptMessage("user", text))
    elif role == "assistant":
        request.messages.append(PromptMessage("assistant", text, "final"))
    elif role == "developer":
        request.messages.append(PromptMessage("developer", f"Instructions:\n{text}"))
    elif role == "system":
        if request.system_identity is None:
            request.system_identity = text
    else:
        raise _schema_error(f"{where}: unknown role {role!r}", param="input")


# -- Chat Completions -----------------------------------------------------------------------


def _function_tools_chat(tools: Any) -> list[FunctionTool]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _schema_error("`tools` must be a list", param="tools")
    if not tools:
        raise _schema_error(
            "`tools` must not be an empty array. Omit `tools` or provide at least one tool.",
            param="tools",
        )
    out = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _schema_error(f"invalid tool: {tool!r}", param="tools")
        out.append(
            FunctionTool(function["name"], function.get("description"), function.get("parameters"))
        )
    return out


def parse_chat_request(body: Any, *, served_models: Sequence[str]) -> ParsedRequest:
    """Validate a `POST /v1/chat/completions` body and convert its messages as vLLM does."""
    body = _require_object(body)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _schema_error(
            "1 validation error for ChatCompletionRequest\nmessages\n  Field required",
            param="messages",
        )
    model = _check_model(body.get("model"), served_models)
    stream = bool(_optional(body, "stream", bool))
    tools = _function_tools_chat(body.get("tools"))
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not tools:
        raise _schema_error("When using `tool_choice`, `tools` must be set.", param="tool_choice")
    stream_options = _optional(body, "stream_options", dict) or {}
    max_tokens = _optional(body, "max_completion_tokens", int)
    if max_tokens is None:
        max_tokens = _optional(body, "max_tokens", int)
    include_reasoning = body.get("include_reasoning", True)
    request = ParsedRequest(
        api="chat_completions",
        body=body,
        model=model,
        stream=stream,
        reasoning_effort=_effort(body.get("reasoning_effort")),
        tools=tools,
        tool_choice=tool_choice if tool_choice is not None else ("auto" if tools else "none"),
        max_tokens=max_tokens,
        include_usage=bool(stream_options.get("include_usage")),
        include_reasoning=include_reasoning is not False,
    )
    _convert_chat_messages(messages, request)
    return request


def _convert_chat_messages(messages: list[Any], request: ParsedRequest) -> None:
    names_by_id: dict[str, str] = {}
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            raise _schema_error(f"{where} must be an object", param="messages")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer", "user"):
            text = _text_of(content, where) if content is not None else ""
            request.messages.append(PromptMessage(role, text))
        elif role == "assistant":
            _convert_chat_assistant(message, where, request, names_by_id)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = names_by_id.get(call_id, "") if isinstance(call_id, str) else ""
            text = _text_of(content, where) if content is not None else ""
            request.function_outputs.append(FunctionOutputRecord(name, text, call_id))
            request.messages.append(
                PromptMessage(
                    "tool", text, "commentary", recipient="assistant", name=f"functions.{name}"
                )
            )
        else:
            raise _schema_error(f"{where}: unknown role {role!r}", param="messages")


def _convert_chat_assistant(
    message: Mapping[str, Any],
    where: str,
    request: ParsedRequest,
    names_by_id: dict[str, str],
) -> None:
    content = message.get("content")
    text = _text_of(content, where) if content is not None else ""
    reasoning = message.get("reasoning")
    tool_calls = message.get("tool_calls") or []
    if tool_calls:
        if text:
            request.messages.append(PromptMessage("assistant", text, "commentary"))
        if isinstance(reasoning, str) and reasoning:
            request.messages.append(PromptMessage("assistant", reasoning, "analysis"))
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise _schema_error(f"{where}: invalid tool call {call!r}", param="messages")
            name = str(function.get("name", ""))
            arguments = str(function.get("arguments", ""))
            call_id = call.get("id")
            if isinstance(call_id, str):
                names_by_id[call_id] = name
            request.function_calls.append(FunctionCallRecord(name, arguments, call_id))
            request.messages.append(
                PromptMessage(
                    "assistant",
                    arguments,
                    "commentary",
                    recipient=f"functions.{name}",
                    content_type="json",
                )
            )
        return
    if isinstance(reasoning, str) and reasoning:
        request.messages.append(PromptMessage("assistant", reasoning, "analysis"))
    if text:
        request.messages.append(PromptMessage("assistant", text, "final"))
