"""Responses API answers as vLLM serialises them: the response object and its SSE events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agent_runtime.testing.completion import Completion, OutMessage
from agent_runtime.testing.conversation import ParsedRequest
from agent_runtime.testing.profile import VLLMProfile

__all__ = ["Tick", "response_object", "stream_events"]

NewId = Callable[[], str]
"""Returns 16 fresh lowercase hex characters."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Marks one generated token in an event stream (the server paces tokens on these)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnInfo:
    """What a response object needs besides its output."""

    response_id: str
    created_at: int
    model: str
    prompt_tokens: int
    max_model_len: int


def _function_name(message: OutMessage, tool_names: set[str]) -> str | None:
    recipient = message.recipient
    if recipient is None:
        return None
    if recipient.startswith("functions."):
        return recipient.removeprefix("functions.")
    if recipient in tool_names:
        return recipient
    return None


def _arguments(text: str, profile: VLLMProfile) -> str:
    if not profile.normalize_arguments:
        return text
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return text.strip()


def _reasoning_item(item_id: str, text: str, status: str | None) -> dict[str, Any]:
    return {
        "id": item_id,
        "summary": [],
        "type": "reasoning",
        "content": [{"text": text, "type": "reasoning_text"}],
        "encrypted_content": None,
        "status": status,
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "content": [{"annotations": [], "text": text, "type": "output_text", "logprobs": None}],
        "role": "assistant",
        "status": status,
        "type": "message",
    }


def _function_call_item(
    hex_id: str, name: str, arguments: str, status: str | None
) -> dict[str, Any]:
    return {
        "arguments": arguments,
        "call_id": f"call_{hex_id}",
        "name": name,
        "type": "function_call",
        "id": f"fc_{hex_id}",
        "status": status,
    }


def _mcp_item(item_id: str, message: OutMessage) -> dict[str, Any]:
    recipient = message.recipient or ""
    server, _, name = recipient.partition(".")
    return {
        "id": f"mcp_{item_id}",
        "arguments": message.text,
        "name": name or recipient,
        "server_label": server,
        "type": "mcp_call",
        "error": None,
        "output": None,
        "approval_request_id": None,
        "status": "completed",
    }


def output_items(
    completion: Completion, request: ParsedRequest, profile: VLLMProfile, new_id: NewId
) -> list[dict[str, Any]]:
    """The `output` list vLLM builds from the parsed harmony messages."""
    tool_names = {t.name for t in request.tools}
    items: list[dict[str, Any]] = []
    for message in completion.messages:
        name = _function_name(message, tool_names)
        if name is not None:
            items.append(
                _function_call_item(
                    new_id(),
                    name,
                    _arguments(message.text, profile),
                    None if message.complete else "in_progress",
                )
            )
        elif message.recipient is not None:
            items.append(_mcp_item(new_id(), message))
        elif message.channel == "analysis":
            items.append(_reasoning_item(f"rs_{new_id()}", message.text, None))
        else:
            items.append(
                _message_item(
                    f"msg_{new_id()}",
                    message.text,
                    "completed" if message.complete else "incomplete",
                )
            )
    return items


def _tools_echo(request: ParsedRequest) -> list[dict[str, Any]]:
    echoed = []
    for tool in request.body.get("tools") or []:
        if tool.get("type") == "function":
            echoed.append(
                {
                    "name": tool.get("name"),
                    "parameters": tool.get("parameters"),
                    "strict": tool.get("strict"),
                    "type": "function",
                    "description": tool.get("description"),
                }
            )
        else:
            echoed.append(tool)
    return echoed


def _usage(completion: Completion | None, prompt_tokens: int) -> dict[str, Any]:
    output = completion.output_tokens if completion else 0
    reasoning = completion.reasoning_tokens if completion else 0
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": 0,
            "input_tokens_per_turn": [prompt_tokens],
            "cached_tokens_per_turn": [0],
        },
        "output_tokens": output,
        "output_tokens_details": {
            "reasoning_tokens": reasoning,
            "tool_output_tokens": 0,
            "output_tokens_per_turn": [output],
            "tool_output_tokens_per_turn": [0],
        },
        "total_tokens": prompt_tokens + output,
    }


def response_object(
    request: ParsedRequest,
    info: TurnInfo,
    *,
    output: list[dict[str, Any]],
    completion: Completion | None,
    status: str,
) -> dict[str, Any]:
    """The full response object, null-filled like vLLM's `model_dump(mode="json")`."""
    body = request.body
    available = max(info.max_model_len - info.prompt_tokens, 0)
    max_output = available if request.max_tokens is None else min(request.max_tokens, available)
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    tool_choice = request.tool_choice if request.tools else "none"
    return {
        "id": info.response_id,
        "created_at": info.created_at,
        "incomplete_details": incomplete,
        "instructions": request.instructions,
        "metadata": body.get("metadata"),
        "model": info.model,
        "object": "response",
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature") if body.get("temperature") is not None else 1.0,
        "tool_choice": tool_choice,
        "tools": _tools_echo(request),
        "top_p": body.get("top_p") if body.get("top_p") is not None else 1.0,
        "background": False,
        "max_output_tokens": max_output,
        "max_tool_calls": body.get("max_tool_calls"),
        "previous_response_id": None,
        "prompt": None,
        "reasoning": body.get("reasoning"),
        "service_tier": body.get("service_tier") or "auto",
        "status": status,
        "text": body.get("text"),
        "top_logprobs": body.get("top_logprobs"),
        "truncation": body.get("truncation") or "disabled",
        "usage": _usage(completion, info.prompt_tokens) if status != "in_progress" else None,
        "user": body.get("user"),
        "presence_penalty": body.get("presence_penalty") or 0.0,
        "frequency_penalty": body.get("frequency_penalty") or 0.0,
        "kv_transfer_params": None,
        "input_messages": None,
        "output_messages": None,
    }


def final_status(completion: Completion, output: list[dict[str, Any]]) -> str:
    """`incomplete` on a `length` finish or when nothing could be parsed, else `completed`."""
    if completion.finish_reason == "length" or not output:
        return "incomplete"
    return "completed"


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        value = self.value
        self.value += 1
        return value


def stream_events(
    request: ParsedRequest,
    info: TurnInfo,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
) -> Iterator[dict[str, Any] | Tick]:
    """The SSE events of a streamed answer, with a `Tick` after each generated token.

    The final `response.completed` carries an output parsed again with fresh ids, as vLLM's
    streamer does (its ids do not match the streamed ones).
    """
    seq = _Counter()

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "sequence_number": seq.next(), **fields}

    snapshot = response_object(request, info, output=[], completion=None, status="in_progress")
    yield event("response.created", response=snapshot)
    yield event("response.in_progress", response=snapshot)

    tool_names = {t.name for t in request.tools}
    content_index = 0
    open_index: int | None = None
    output_index = -1
    item: dict[str, Any] = {}
    text_parts: list[str] = []

    def close() -> Iterator[dict[str, Any]]:
        nonlocal content_index
        message = completion.messages[open_index] if open_index is not None else None
        if message is None:
            return
        text = "".join(text_parts)
        yield from _close_item(
            event, item, message, text, output_index, content_index, profile, tool_names
        )
        if profile.content_index_continues:
            content_index += 1

    for step in completion.steps:
        if step.message is not None and step.message != open_index:
            yield from close()
            open_index = step.message
            output_index += 1
            text_parts = []
            message = completion.messages[open_index]
            if not profile.content_index_continues:
                content_index = 0
            item = _open_item(message, new_id(), profile, tool_names)
            yield from _open_events(event, item, message, output_index, content_index, tool_names)
        if step.message is not None and step.delta:
            text_parts.append(step.delta)
            yield _delta_event(event, item, step.delta, output_index, content_index)
        yield Tick()
    yield from close()

    output = output_items(completion, request, profile, new_id)
    status = final_status(completion, output)
    final = response_object(request, info, output=output, completion=completion, status=status)
    yield event("response.completed", response=final)


def _open_item(
    message: OutMessage, hex_id: str, profile: VLLMProfile, tool_names: set[str]
) -> dict[str, Any]:
    name = _function_name(message, tool_names)
    if name is not None:
        other = hex_id[::-1] if profile.function_call_done_id_null else hex_id
        return {
            "arguments": "",
            "call_id": f"call_{other}",
            "name": name,
            "type": "function_call",
            "id": f"fc_{hex_id}",
            "status": "in_progress",
        }
    if message.recipient is None and message.channel == "analysis":
        return {
            "id": f"{profile.streamed_reasoning_id_prefix}_{hex_id}",
            "summary": [],
            "type": "reasoning",
            "content": None,
            "encrypted_content": None,
            "status": "in_progress",
        }
    if message.recipient is not None:
        return {"type": "mcp_call", "id": f"mcp_{hex_id}", "status": "in_progress"}
    return {
        "id": f"msg_{hex_id}",
        "content": [],
        "role": "assistant",
        "status": "in_progress",
        "type": "message",
    }


def _open_events(
    event: Callable[..., dict[str, Any]],
    item: dict[str, Any],
    message: OutMessage,
    output_index: int,
    content_index: int,
    tool_names: set[str],
) -> Iterator[dict[str, Any]]:
    yield event("response.output_item.added", output_index=output_index, item=dict(item))
    kind = item["type"]
    if kind == "reasoning":
        yield event(
            "response.reasoning_part.added",
            item_id=item["id"],
            output_index=output_index,
            content_index=content_index,
            part={"text": "", "type": "reasoning_text"},
        )
    elif kind == "message":
        yield event(
            "response.content_part.added",
            item_id=item["id"],
            output_index=output_index,
            content_index=content_index,
            part={"annotations": [], "text": "", "type": "output_text", "logprobs": []},
        )


def _delta_event(
    event: Callable[..., dict[str, Any]],
    item: dict[str, Any],
    delta: str,
    output_index: int,
    content_index: int,
) -> dict[str, Any]:
    kind = item["type"]
    if kind == "reasoning":
        return event(
            "response.reasoning_text.delta",
            item_id=item["id"],
            output_index=output_index,
            content_index=content_index,
            delta=delta,
        )
    if kind == "function_call":
        return event(
            "response.function_call_arguments.delta",
            item_id=item["id"],
            output_index=output_index,
            delta=delta,
        )
    if kind == "message":
        return event(
            "response.output_text.delta",
            item_id=item["id"],
            output_index=output_index,
            content_index=content_index,
            delta=delta,
            logprobs=[],
        )
    return event(
        "response.mcp_call_arguments.delta",
        item_id=item["id"],
        output_index=output_index,
        delta=delta,
    )


def _close_item(
    event: Callable[..., dict[str, Any]],
    item: dict[str, Any],
    message: OutMessage,
    text: str,
    output_index: int,
    content_index: int,
    profile: VLLMProfile,
    tool_names: set[str],
) -> Iterator[dict[str, Any]]:
    kind = item["type"]
    item_id = item["id"]
    status = "completed" if message.complete else "incomplete"
    if kind == "reasoning":
        yield event(
            "response.reasoning_text.done",
            item_id=item_id,
            output_index=output_index,
            content_index=content_index,
            text=text,
        )
        part: dict[str, Any] = {"text": text, "type": "reasoning_text"}
        yield event(
            "response.reasoning_part.done",
            item_id=item_id,
            output_index=output_index,
            content_index=content_index,
            part=part,
        )
        done = {**item, "content": [part], "status": status}
        yield event("response.output_item.done", output_index=output_index, item=done)
    elif kind == "message":
        yield event(
            "response.output_text.done",
            item_id=item_id,
            output_index=output_index,
            content_index=content_index,
            text=text,
            logprobs=[],
        )
        part = {
            "annotations": [],
            "text": text,
            "type": "output_text",
            "logprobs": None,
        }
        yield event(
            "response.content_part.done",
            item_id=item_id,
            output_index=output_index,
            content_index=content_index,
            part=part,
        )
        done = {**item, "content": [part], "status": status}
        yield event("response.output_item.done", output_index=output_index, item=done)
    elif kind == "function_call":
        arguments = _arguments(text, profile)
        yield event(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=output_index,
            name=item["name"],
            arguments=arguments,
        )
        done = {**item, "arguments": arguments, "status": "completed"}
        if profile.function_call_done_id_null:
            done["id"] = None
            done.update(item_id=item_id, output_index=output_index, sequence_number=-1)
        yield event("response.output_item.done", output_index=output_index, item=done)
    else:
        done = {**_mcp_item(item_id.removeprefix("mcp_"), message), "arguments": text}
        yield event("response.output_item.done", output_index=output_index, item=done)
