"""`POST /v1/responses` bodies → the conversation vLLM builds from them, with vLLM's validation.

The rules follow vLLM v0.21's harmony path (`responses/protocol.py`, `responses/harmony.py`,
`parser/harmony_utils.py`): which requests are refused with which status and message, in vLLM's
order of checks, and how each input item becomes a harmony message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent_runtime.testing.http_error import VLLMHTTPError, bad_request, validation_error
from agent_runtime.testing.recording import (
    Api,
    FunctionCallRecord,
    FunctionOutputRecord,
    PromptMessage,
)
from agent_runtime.testing.request import (
    FunctionTool,
    ParsedRequest,
    check_literal,
    check_model,
    check_type,
    field_error,
    harmony_effort,
    missing_body,
    model_error,
    tool_description,
)

__all__ = ["parse_responses_request"]

_RESPONSES_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
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


def parse_responses_request(body: Any, *, served_models: Sequence[str]) -> ParsedRequest:
    """Validate a `POST /v1/responses` body and convert its input as vLLM does."""
    api: Api = "responses"
    if body is None:
        raise missing_body(api)
    if not isinstance(body, dict):
        # vLLM's before-validator calls `data.get(...)` on whatever JSON arrived.
        raise VLLMHTTPError(
            500,
            f"'{type(body).__name__}' object has no attribute 'get'",
            type="InternalServerError",
        )
    _validate_responses_schema(body)
    model = check_model(body.get("model"), served_models, api)
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
        reasoning_effort=harmony_effort(effort) if effort is not None else None,
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
        raise field_error(api, "input", input_, "string_type", "Input should be a valid string")
    check_type(api, body, "instructions", (str,), "string")
    check_type(api, body, "stream", (bool,), "boolean")
    check_type(api, body, "max_output_tokens", (int,), "integer")
    check_type(api, body, "temperature", (int, float), "number")
    check_type(api, body, "top_p", (int, float), "number")
    check_type(api, body, "parallel_tool_calls", (bool,), "boolean")
    check_type(api, body, "previous_response_id", (str,), "string")
    reasoning = check_type(api, body, "reasoning", (dict,), "dictionary")
    if reasoning:
        check_literal(api, "reasoning", reasoning.get("effort"), _RESPONSES_EFFORTS)
    include = check_type(api, body, "include", (list,), "list")
    for value in include or []:
        check_literal(api, "include", value, sorted(_INCLUDE_VALUES))
    tools = check_type(api, body, "tools", (list,), "list") or []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") not in _KNOWN_TOOL_TYPES:
            raise field_error(
                api, "tools", tool, "union_tag_invalid", "Input tag does not match any tool type"
            )
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise field_error(api, "tools", tool, "missing", "Field required")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and tool_choice not in ("auto", "none"):
        if tool_choice == "required" and not tools:
            raise model_error(
                api,
                body,
                "Tool choice 'required' must be specified with 'tools' parameter.",
                "tool_choice",
            )
        if isinstance(tool_choice, dict):
            names = {t.get("name") for t in tools if t.get("type") == "function"}
            if tool_choice.get("type") == "function" and tool_choice.get("name") not in names:
                raise model_error(
                    api,
                    body,
                    "Tool choice 'function' not found in 'tools' parameter.",
                    "tool_choice",
                )
        elif tool_choice != "required":
            check_literal(api, "tool_choice", tool_choice, ("none", "auto", "required"))
    if body.get("background") and body.get("store") is False:
        raise model_error(
            api, body, "background can only be used when `store` is true", "background"
        )
    if body.get("prompt") is not None:
        raise model_error(api, body, "prompt template is not supported", "prompt")


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
        description = tool_description(tool["name"], tool.get("description"))
        request.tools.append(FunctionTool(tool["name"], description, tool.get("parameters")))


def _convert_responses_input(input_: str | list[Any], request: ParsedRequest) -> None:
    if isinstance(input_, str):
        request.messages.append(PromptMessage("user", input_))
        return
    calls_by_id: dict[str, str] = {}
    for item in input_:
        if not isinstance(item, dict):
            raise field_error(
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
        raise field_error(
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
        raise field_error(
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
        raise field_error(
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
    else:  # system and developer items: the prompt renderer places them by the vLLM version
        request.messages.append(PromptMessage(role, "".join(texts)))
