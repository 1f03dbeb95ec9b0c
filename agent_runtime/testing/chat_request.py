"""`POST /v1/chat/completions` bodies → the conversation vLLM builds from them, with its checks.

The rules follow vLLM v0.21's harmony path (`chat_completion/protocol.py`,
`serve/render/serving.py`, `parser/harmony_utils.py`): which requests are refused with which
status and message, in vLLM's order of checks, and how each chat message becomes a harmony
message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent_runtime.testing.http_error import bad_request, validation_error
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

__all__ = ["parse_chat_request"]

_CHAT_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def parse_chat_request(body: Any, *, served_models: Sequence[str]) -> ParsedRequest:
    """Validate a `POST /v1/chat/completions` body and convert its messages as vLLM does."""
    api: Api = "chat_completions"
    if body is None:
        raise missing_body(api)
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
    model = check_model(body.get("model"), served_models, api)
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
        reasoning_effort=harmony_effort(effort) if effort is not None else None,
        developer_message=bool(tools),
        tool_choice=body.get("tool_choice") or ("auto" if tools else "none"),
        max_tokens=max_tokens if max_tokens is not None else body.get("max_tokens"),
        include_usage=bool(stream_options.get("include_usage")),
        include_reasoning=body.get("include_reasoning") is not False,
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
    )
    for tool in tools:
        function = tool["function"]
        description = tool_description(function["name"], function.get("description"))
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
        raise field_error(api, "messages", messages, "list_type", "Input should be a valid list")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise field_error(
                api, "messages", message, "missing", "Field required: each message needs a `role`"
            )
    check_type(api, body, "stream", (bool,), "boolean")
    check_type(api, body, "max_tokens", (int,), "integer")
    check_type(api, body, "max_completion_tokens", (int,), "integer")
    check_type(api, body, "temperature", (int, float), "number")
    check_literal(api, "reasoning_effort", body.get("reasoning_effort"), _CHAT_EFFORTS)
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise field_error(
            api,
            "stream_options",
            stream_options,
            "model_type",
            "Input should be a valid dictionary or instance of StreamOptions",
        )
    tools = check_type(api, body, "tools", (list,), "list")
    if tools == []:
        raise model_error(
            api,
            body,
            "`tools` must not be an empty array. Either provide at least one tool or omit the "
            "field entirely.",
            None,
        )
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise field_error(api, "tools", tool, "missing", "Field required")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and tool_choice != "none" and not tools:
        raise model_error(api, body, "When using `tool_choice`, `tools` must be set.", None)
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        if wanted not in {t["function"]["name"] for t in tools or []}:
            raise model_error(
                api,
                body,
                "The tool specified in `tool_choice` does not match any of the specified `tools`",
                None,
            )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise model_error(
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
            raise field_error(
                "chat_completions", "messages", dict(message), "union_tag_invalid", "Unknown role"
            )
    request.messages.extend(converted)


def _convert_chat_assistant(
    message: Mapping[str, Any], request: ParsedRequest, out: list[PromptMessage]
) -> None:
    content = message.get("content")
    # With `"content": null` pydantic picks the openai TypedDict, which has no `reasoning`
    # key: vLLM silently loses the reasoning (send "" or omit `content` to keep it).
    reasoning = None if "content" in message and content is None else message.get("reasoning")
    if not reasoning:  # the older field name, read whatever `content` is (vLLM 0.22, 0.33)
        reasoning = message.get("reasoning_content")
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
                raise field_error(
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
