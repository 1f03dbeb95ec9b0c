"""Request bodies → the conversation vLLM builds from them, with vLLM's validation.

The rules follow vLLM v0.21's harmony path (`responses/protocol.py`, `responses/harmony.py`,
`parser/harmony_utils.py`, `serve/render/serving.py`, `chat_completion/protocol.py`): which
requests are refused with which status and message, in vLLM's order of checks, and how each
input item or chat message becomes a harmony message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agent_runtime.testing.errors import VLLMHTTPError, bad_request, not_found, validation_error
from agent_runtime.testing.recording import (
    Api,
    FunctionCallRecord,
    FunctionOutputRecord,
    PromptMessage,
)

__all__ = ["FunctionTool", "ParsedRequest", "parse_chat_request", "parse_responses_request"]

Effort = Literal["low", "medium", "high"]
_HARMONY_EFFORTS = ("high", "medium", "low")
_RESPONSES_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_CHAT_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_BUILTIN_TOOL_TYPES = frozenset({"web_search_preview", "code_interpreter", "container"})
_KNOWN_TOOL_TYPES = frozenset(
    {
        "function",
        "file_search",
        "computer_use_preview",
        "web_search",
        "web_search_preview",
        "mcp",
        "code_interpreter",
        "image_generation",
        "local_shell",
        "custom",
        "container",
    }
)
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


def _field_error(api: Api, key: str, value: Any, kind: str, msg: str) -> VLLMHTTPError:
    return validation_error(api, [{"type": kind, "loc": ("body", key), "msg": msg, "input": value}])


def _check_type(
    api: Api, body: Mapping[str, Any], key: str, kinds: tuple[type, ...], name: str
) -> Any:
    value = body.get(key)
    if value is None:
        return None
    wrong_bool = isinstance(value, bool) and bool not in kinds
    if wrong_bool or not isinstance(value, kinds):
        raise _field_error(api, key, value, f"{name}_type", f"Input should be a valid {name}")
    return value


def _check_model(model: Any, served: Sequence[str], api: Api) -> str | None:
    if model is None or model == "":
        return None
    if not isinstance(model, str):
        raise _field_error(api, "model", model, "string_type", "Input should be a valid string")
    if model not in served:
        raise not_found(f"The model `{model}` does not exist.", param="model")
    return model


def _model_error(api: Api, body: Mapping[str, Any], message: str, param: str | None) -> Exception:
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


def _harmony_effort(value: str) -> Effort:
    if value not in _HARMONY_EFFORTS:
        raise bad_request(
            f"reasoning_effort={value!r} is not supported by Harmony. "
            "Supported values are: high, medium, low."
        )
    effort: Effort = value  # type: ignore[assignment]
    return effort


def _literal(api: Api, key: str, value: Any, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        expected = ", ".join(f"'{v}'" for v in allowed[:-1]) + f" or '{allowed[-1]}'"
        raise _field_error(api, key, value, "literal_error", f"Input should be {expected}")


def _description(tool_name: str, description: Any) -> str:
    if not isinstance(description, str):
        raise bad_request(
            "1 validation error for ToolDescription\ndescription\n  Input should be a valid "
            f"string [type=string_type, input_value={description!r}, "
            f"input_type={type(description).__name__}]\n    For further information visit "
            "https://errors.pydantic.dev/2.13/v/string_type"
        )
    return description


# -- Responses ------------------------------------------------------------------------------


def parse_responses_request(body: Any, *, served_models: Sequence[str]) -> ParsedRequest:
    """Validate a `POST /v1/responses` body and convert its input as vLLM does."""
    api: Api = "responses"
    if body is None:
        raise validation_error(
            api, [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if not isinstance(body, dict):
        # vLLM's before-validator calls `data.get(...)` on whatever JSON arrived.
        raise VLLMHTTPError(
            500,
            f"'{type(body).__name__}' object has no attribute 'get'",
            type="InternalServerError",
        )
    _validate_responses_schema(body)
    model = _check_model(body.get("model"), served_models, api)
    include = body.get("include") or []
    if "message.output_text.logprobs" in include:
        raise VLLMHTTPError(
            400,
            "logprobs are not supported with gpt-oss models",
            type="invalid_request_error",
            param="logprobs",
        )
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
    if previous is not None and body.get("previous_input_messages") is not None:
        raise VLLMHTTPError(
            400,
            "Only one of `previous_input_messages` and `previous_response_id` can be set.",
            type="invalid_request_error",
            param="previous_response_id",
        )
    if previous is not None:
        raise VLLMHTTPError(
            404,
            f"Response with id '{previous}' not found.",
            type="invalid_request_error",
            param="response_id",
        )
    tools = body.get("tools") or []
    tool_choice = body.get("tool_choice", "auto")
    if tools and tool_choice not in ("auto", "none"):
        raise VLLMHTTPError(
            501,
            "Only 'auto' or 'none' tool_choice is supported in response API with Harmony",
            type="NotImplementedError",
        )
    reasoning = body.get("reasoning") or {}
    effort = reasoning.get("effort")
    request = ParsedRequest(
        api=api,
        body=body,
        model=model,
        stream=bool(body.get("stream")),
        instructions=body.get("instructions"),
        reasoning_effort=_harmony_effort(effort) if effort is not None else None,
        tool_choice=tool_choice if tools else "none",
        max_tokens=body.get("max_output_tokens"),
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
    )
    _responses_tools(tools, request)
    _convert_responses_input(body["input"], request)
    return request


def _validate_responses_schema(body: Mapping[str, Any]) -> None:
    """The checks vLLM's pydantic `ResponsesRequest` makes (400 `Bad Request`)."""
    api: Api = "responses"
    if "input" not in body:
        raise validation_error(
            api,
            [{"type": "missing", "loc": ("body", "input"), "msg": "Field required", "input": body}],
        )
    input_ = body["input"]
    if not isinstance(input_, str | list):
        raise _field_error(api, "input", input_, "string_type", "Input should be a valid string")
    _check_type(api, body, "instructions", (str,), "string")
    _check_type(api, body, "stream", (bool,), "boolean")
    _check_type(api, body, "max_output_tokens", (int,), "integer")
    _check_type(api, body, "temperature", (int, float), "number")
    _check_type(api, body, "top_p", (int, float), "number")
    _check_type(api, body, "parallel_tool_calls", (bool,), "boolean")
    _check_type(api, body, "previous_response_id", (str,), "string")
    reasoning = _check_type(api, body, "reasoning", (dict,), "dictionary")
    if reasoning:
        _literal(api, "reasoning", reasoning.get("effort"), _RESPONSES_EFFORTS)
    include = _check_type(api, body, "include", (list,), "list")
    for value in include or []:
        _literal(api, "include", value, sorted(_INCLUDE_VALUES))
    tools = _check_type(api, body, "tools", (list,), "list") or []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") not in _KNOWN_TOOL_TYPES:
            raise _field_error(
                api, "tools", tool, "union_tag_invalid", "Input tag does not match any tool type"
            )
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise _field_error(api, "tools", tool, "missing", "Field required")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and tool_choice not in ("auto", "none"):
        if tool_choice == "required" and not tools:
            raise _model_error(
                api,
                body,
                "Tool choice 'required' must be specified with 'tools' parameter.",
                "tool_choice",
            )
        if isinstance(tool_choice, dict):
            names = {t.get("name") for t in tools if t.get("type") == "function"}
            if tool_choice.get("type") == "function" and tool_choice.get("name") not in names:
                raise _model_error(
                    api,
                    body,
                    "Tool choice 'function' not found in 'tools' parameter.",
                    "tool_choice",
                )
        elif tool_choice != "required":
            _literal(api, "tool_choice", tool_choice, ("none", "auto", "required"))
    if body.get("background") and body.get("store") is False:
        raise _model_error(
            api, body, "background can only be used when `store` is true", "background"
        )
    if body.get("prompt") is not None:
        raise _model_error(api, body, "prompt template is not supported", "prompt")


def _responses_tools(tools: list[Any], request: ParsedRequest) -> None:
    """vLLM builds the developer message when a custom (non built-in) tool is declared."""
    custom = [t for t in tools if t["type"] not in _BUILTIN_TOOL_TYPES and t["type"] != "mcp"]
    if not custom:
        return
    request.developer_message = True
    for tool in tools:
        kind = tool["type"]
        if kind in _BUILTIN_TOOL_TYPES:
            continue
        if kind != "function":
            raise bad_request(f"tool type {kind} not supported")
        description = _description(tool["name"], tool.get("description"))
        request.tools.append(FunctionTool(tool["name"], description, tool.get("parameters")))


def _convert_responses_input(input_: str | list[Any], request: ParsedRequest) -> None:
    if isinstance(input_, str):
        request.messages.append(PromptMessage("user", input_))
        return
    calls_by_id: dict[str, str] = {}
    for item in input_:
        if not isinstance(item, dict):
            raise _field_error(
                "responses", "input", item, "model_type", "Input should be a valid dictionary"
            )
        kind = item.get("type", "message")
        if kind == "message":
            _convert_message_item(item, request)
        elif kind == "reasoning":
            parts = item.get("content")
            if not parts:
                continue  # summary-only reasoning is skipped silently
            text = "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
            request.messages.append(PromptMessage("assistant", text, "analysis"))
        elif kind == "function_call":
            _convert_function_call(item, request, calls_by_id)
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            name = calls_by_id.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise bad_request(f"No call message found for {call_id}")
            output = item.get("output")
            if not isinstance(output, str):
                raise bad_request(
                    "1 validation error for TextContent\ntext\n  Input should be a valid string"
                )
            request.function_outputs.append(FunctionOutputRecord(name, output, call_id))
            request.messages.append(
                PromptMessage(
                    "tool", output, "commentary", recipient="assistant", name=f"functions.{name}"
                )
            )
        else:
            raise bad_request(f"Unknown input type: {kind}")


def _convert_function_call(
    item: Mapping[str, Any], request: ParsedRequest, calls_by_id: dict[str, str]
) -> None:
    name, call_id, arguments = item.get("name"), item.get("call_id"), item.get("arguments")
    if not isinstance(name, str) or not isinstance(arguments, str) or not isinstance(call_id, str):
        raise _field_error(
            "responses", "input", dict(item), "missing", "Field required (call_id, name, arguments)"
        )
    calls_by_id[call_id] = name
    request.function_calls.append(FunctionCallRecord(name, arguments, call_id))
    request.messages.append(
        PromptMessage(
            "assistant", arguments, "commentary", recipient=f"functions.{name}", content_type="json"
        )
    )


def _part_texts(content: Any) -> list[str]:
    """Texts of a Responses message's content; a part without text fails like in vLLM."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise _field_error(
            "responses", "input", content, "string_type", "Input should be a valid string"
        )
    texts = []
    for part in content:
        if not isinstance(part, dict) or "text" not in part:
            raise VLLMHTTPError(500, "'text'", type="InternalServerError")
        texts.append(str(part["text"]))
    return texts


def _convert_message_item(item: Mapping[str, Any], request: ParsedRequest) -> None:
    role = item.get("role")
    if role not in ("user", "assistant", "developer", "system"):
        raise _field_error(
            "responses",
            "input",
            dict(item),
            "literal_error",
            "Input should be 'user', 'assistant', 'system' or 'developer'",
        )
    texts = _part_texts(item.get("content"))
    if role == "user":
        request.messages.append(PromptMessage("user", "".join(texts)))
    elif role == "assistant":
        request.messages.append(PromptMessage("assistant", "".join(texts), "final"))
    elif role == "developer":
        text = "".join(f"Instructions:\n{t}" for t in texts)
        request.messages.append(PromptMessage("developer", text))
    elif request.system_identity is None:
        # The first system message becomes the model identity; the message itself is dropped.
        request.system_identity = texts[0] if texts else ""


# -- Chat Completions -----------------------------------------------------------------------


def parse_chat_request(body: Any, *, served_models: Sequence[str]) -> ParsedRequest:
    """Validate a `POST /v1/chat/completions` body and convert its messages as vLLM does."""
    api: Api = "chat_completions"
    if body is None:
        raise validation_error(
            api, [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if not isinstance(body, dict):
        raise validation_error(
            api,
            [
                {
                    "type": "model_attributes_type",
                    "loc": ("body",),
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": body,
                }
            ],
        )
    _validate_chat_schema(body)
    model = _check_model(body.get("model"), served_models, api)
    effort = body.get("reasoning_effort")
    if effort == "none":
        raise bad_request("Harmony does not support reasoning_effort='none'")
    tools = body.get("tools") or []
    stream_options = body.get("stream_options") or {}
    max_tokens = body.get("max_completion_tokens")
    request = ParsedRequest(
        api=api,
        body=body,
        model=model,
        stream=bool(body.get("stream")),
        reasoning_effort=_harmony_effort(effort) if effort is not None else None,
        developer_message=bool(tools),
        tool_choice=body.get("tool_choice") or ("auto" if tools else "none"),
        max_tokens=max_tokens if max_tokens is not None else body.get("max_tokens"),
        include_usage=bool(stream_options.get("include_usage")),
        include_reasoning=body.get("include_reasoning") is not False,
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
    )
    for tool in tools:
        function = tool["function"]
        description = _description(function["name"], function.get("description"))
        request.tools.append(
            FunctionTool(function["name"], description, function.get("parameters"))
        )
    _convert_chat_messages(body["messages"], request)
    return request


def _validate_chat_schema(body: Mapping[str, Any]) -> None:
    """The checks vLLM's pydantic `ChatCompletionRequest` makes (400 `Bad Request`)."""
    api: Api = "chat_completions"
    messages = body.get("messages")
    if messages is None:
        raise validation_error(
            api,
            [
                {
                    "type": "missing",
                    "loc": ("body", "messages"),
                    "msg": "Field required",
                    "input": dict(body),
                }
            ],
        )
    if not isinstance(messages, list):
        raise _field_error(api, "messages", messages, "list_type", "Input should be a valid list")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _field_error(
                api, "messages", message, "missing", "Field required: each message needs a `role`"
            )
    _check_type(api, body, "stream", (bool,), "boolean")
    _check_type(api, body, "max_tokens", (int,), "integer")
    _check_type(api, body, "max_completion_tokens", (int,), "integer")
    _check_type(api, body, "temperature", (int, float), "number")
    _literal(api, "reasoning_effort", body.get("reasoning_effort"), _CHAT_EFFORTS)
    tools = _check_type(api, body, "tools", (list,), "list")
    if tools == []:
        raise _model_error(
            api,
            body,
            "`tools` must not be an empty array. Either provide at least one tool or omit the "
            "field entirely.",
            None,
        )
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _field_error(api, "tools", tool, "missing", "Field required")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and tool_choice != "none" and not tools:
        raise _model_error(api, body, "When using `tool_choice`, `tools` must be set.", None)
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        if wanted not in {t["function"]["name"] for t in tools or []}:
            raise _model_error(
                api,
                body,
                "The tool specified in `tool_choice` does not match any of the specified `tools`",
                None,
            )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise _model_error(
            api, body, "Stream options can only be defined when `stream=True`.", "stream_options"
        )


def _chat_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) if isinstance(part, dict) else "" for part in content
        )
    return str(content)


def _convert_chat_messages(messages: list[Any], request: ParsedRequest) -> None:
    names_by_id = {
        call["id"]: str((call.get("function") or {}).get("name", ""))
        for message in messages
        if message.get("role") == "assistant" and isinstance(message.get("tool_calls"), list)
        for call in message["tool_calls"]
        if isinstance(call, dict)
        and isinstance(call.get("id"), str)
        and isinstance(call.get("function") or {}, dict)
    }
    converted: list[PromptMessage] = []
    for message in messages:
        role = message["role"]
        if role == "assistant":
            _convert_chat_assistant(message, request, converted)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = names_by_id.get(call_id, "") if isinstance(call_id, str) else ""
            text = _chat_text(message.get("content"))
            request.function_outputs.append(FunctionOutputRecord(name, text, call_id))
            converted.append(
                PromptMessage(
                    "tool", text, "commentary", recipient="assistant", name=f"functions.{name}"
                )
            )
        elif role in ("system", "developer", "user"):
            converted.append(PromptMessage(role, _chat_text(message.get("content"))))
        else:
            raise _field_error(
                "chat_completions", "messages", dict(message), "union_tag_invalid", "Unknown role"
            )
    # vLLM drops every analysis message before the last final answer (baseline rule).
    last_final = max(
        (i for i, m in enumerate(converted) if m.role == "assistant" and m.channel == "final"),
        default=-1,
    )
    request.messages.extend(
        m for i, m in enumerate(converted) if not (i < last_final and m.channel == "analysis")
    )


def _convert_chat_assistant(
    message: Mapping[str, Any], request: ParsedRequest, out: list[PromptMessage]
) -> None:
    content = message.get("content")
    # With `"content": null` pydantic picks the openai TypedDict, which has no `reasoning`
    # key: vLLM silently loses the reasoning (send "" or omit `content` to keep it).
    reasoning = None if "content" in message and content is None else message.get("reasoning")
    tool_calls = message.get("tool_calls") or []
    if tool_calls:
        text = _chat_text(content)
        if text:
            out.append(PromptMessage("assistant", text, "commentary"))
        if reasoning:
            out.append(PromptMessage("assistant", str(reasoning), "analysis"))
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise _field_error(
                    "chat_completions", "messages", call, "missing", "Field required: function"
                )
            name = str(function.get("name", ""))
            arguments = str(function.get("arguments") or "")
            call_id = call.get("id")
            request.function_calls.append(FunctionCallRecord(name, arguments, call_id))
            out.append(
                PromptMessage(
                    "assistant",
                    arguments,
                    "commentary",
                    recipient=f"functions.{name}",
                    content_type="json",
                )
            )
        return
    if reasoning:
        out.append(PromptMessage("assistant", str(reasoning), "analysis"))
    if isinstance(content, list):
        first = content[0].get("text", "") if content and isinstance(content[0], dict) else ""
        if first:
            out.append(PromptMessage("assistant", _chat_text(content), "final"))
    elif content:
        out.append(PromptMessage("assistant", str(content), "final"))
