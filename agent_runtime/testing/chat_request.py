"""`POST /v1/chat/completions` bodies → the conversation vLLM builds from them, with its checks.

The rules follow vLLM's harmony path (`chat_completion/protocol.py`,
`serve/render/serving.py`, `parser/harmony_utils.py`): the body is validated by vLLM's request
model (`request_models.ChatBody`), then refused by the serving checks with vLLM's status and
message, in vLLM's order, and each chat message becomes a harmony message. What changed between
releases follows the `VLLMProfile`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.testing.http_error import parameter_error
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.recording import (
    Api,
    FunctionCallRecord,
    FunctionOutputRecord,
    PromptMessage,
)
from agent_runtime.testing.request import (
    FunctionTool,
    ParsedRequest,
    check_model,
    field_error,
    harmony_effort,
    missing_body,
    tool_description,
)

if TYPE_CHECKING:
    from agent_runtime.testing.request_models import ChatBody

__all__ = ["parse_chat_request"]


def parse_chat_request(
    body: Any, *, served_models: Sequence[str], profile: VLLMProfile
) -> ParsedRequest:
    """Validate a `POST /v1/chat/completions` body and convert its messages as `profile`'s vLLM
    does."""
    api: Api = "chat_completions"
    if body is None:
        raise missing_body(api, profile)
    from agent_runtime.testing.request_models import validate_body

    valid: ChatBody = validate_body(api, body, profile)
    model = check_model(valid.model, served_models, profile)
    effort = valid.reasoning_effort
    if effort == "none":
        raise parameter_error(
            profile, "Harmony does not support reasoning_effort='none'", "reasoning_effort"
        )
    tools = body.get("tools") or []
    max_tokens = valid.max_completion_tokens
    request = ParsedRequest(
        api=api,
        body=body,
        model=model,
        stream=bool(valid.stream),
        reasoning_effort=harmony_effort(effort, profile) if effort is not None else None,
        developer_message=bool(tools),
        tool_choice=body.get("tool_choice") or ("auto" if tools else "none"),
        max_tokens=max_tokens if max_tokens is not None else valid.max_tokens,
        include_usage=valid.stream_options is not None and bool(valid.stream_options.include_usage),
        include_reasoning=valid.include_reasoning,
        parallel_tool_calls=valid.parallel_tool_calls is not False,
    )
    for tool in valid.tools or []:
        function = tool.function
        description = tool_description(function.description, profile)
        request.tools.append(FunctionTool(function.name, description, function.parameters))
    _convert_chat_messages(body["messages"], request, profile)
    return request


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


def _convert_chat_messages(
    messages: list[Any], request: ParsedRequest, profile: VLLMProfile
) -> None:
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
            _convert_chat_assistant(message, request, converted, profile)
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
                "chat_completions",
                profile,
                ("messages",),
                dict(message),
                "union_tag_invalid",
                "Unknown role",
            )
    request.messages.extend(converted)


def _convert_chat_assistant(
    message: Mapping[str, Any],
    request: ParsedRequest,
    out: list[PromptMessage],
    profile: VLLMProfile,
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
                    "chat_completions",
                    profile,
                    ("messages",),
                    call,
                    "missing",
                    "Field required: function",
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
