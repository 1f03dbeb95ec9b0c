"""Responses API answers as vLLM v0.21 serialises them: the response object and its SSE events.

Objects are dumped with every optional field as `null` (vLLM uses `model_dump(mode="json")`
without `exclude_none`), in the field order of the openai-python models vLLM builds them from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from agent_runtime.testing.completion import Completion, OutMessage
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.request import ParsedRequest

__all__ = ["Tick", "TurnInfo", "final_status", "output_items", "response_object", "stream_events"]

NewId = Callable[[], str]
"""Returns 16 fresh lowercase hex characters."""

ItemKind = Literal["reasoning", "message", "function_call", "mcp_call", "web_search_call"]
_BUILTIN_RECIPIENTS = frozenset({"python", "browser", "container"})


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


def _is_function_recipient(recipient: str, tool_names: set[str]) -> bool:
    if not recipient or recipient.startswith("<|") or recipient == "assistant":
        return False
    if recipient.startswith("functions."):
        return bool(recipient.removeprefix("functions."))
    if recipient.split(".")[0] in _BUILTIN_RECIPIENTS:
        return False
    return recipient in tool_names


def item_kind(message: OutMessage, tool_names: set[str]) -> ItemKind:
    """Which output item vLLM makes of a parsed harmony message."""
    recipient = message.recipient
    if recipient is None:
        return "reasoning" if message.channel == "analysis" else "message"
    if _is_function_recipient(recipient, tool_names):
        return "function_call"
    if recipient.startswith("browser."):
        return "web_search_call"
    if recipient in _BUILTIN_RECIPIENTS:
        return "reasoning"
    return "mcp_call"


def _arguments(text: str, profile: VLLMProfile) -> str:
    if not profile.normalize_arguments:
        return text
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return text.strip()


def _reasoning_item(item_id: str, text: str | None, status: str | None) -> dict[str, Any]:
    return {
        "id": item_id,
        "summary": [],
        "type": "reasoning",
        "content": None if text is None else [{"text": text, "type": "reasoning_text"}],
        "encrypted_content": None,
        "status": status,
    }


def _text_part(text: str, logprobs: list[Any] | None) -> dict[str, Any]:
    return {"annotations": [], "text": text, "type": "output_text", "logprobs": logprobs}


def _message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "content": [] if text is None else [_text_part(text, None)],
        "role": "assistant",
        "status": status,
        "type": "message",
        "phase": None,
    }


def _function_call_item(
    item_hex: str, call_hex: str, name: str, arguments: str, status: str | None
) -> dict[str, Any]:
    return {
        "arguments": arguments,
        "call_id": f"call_{call_hex}",
        "name": name,
        "type": "function_call",
        "id": f"fc_{item_hex}",
        "namespace": None,
        "status": status,
    }


def _mcp_item(hex_id: str, message: OutMessage, status: str) -> dict[str, Any]:
    recipient = message.recipient or ""
    segments = recipient.split(".")
    return {
        "id": f"mcp_{hex_id}",
        "arguments": message.text,
        "name": segments[-1],
        "server_label": segments[0],
        "type": "mcp_call",
        "approval_request_id": None,
        "error": None,
        "output": None,
        "status": status,
    }


def _web_search_item(hex_id: str, message: OutMessage) -> dict[str, Any]:
    return {
        "id": f"ws_{hex_id}",
        "action": {"query": message.text, "type": "search", "sources": None},
        "status": "completed",
        "type": "web_search_call",
    }


def _output_item(
    message: OutMessage, kind: ItemKind, profile: VLLMProfile, new_id: NewId
) -> dict[str, Any]:
    if kind == "function_call":
        hex_id = new_id()
        name = (message.recipient or "").removeprefix("functions.")
        status = "in_progress" if not message.complete else profile.function_call_status
        return _function_call_item(hex_id, hex_id, name, _arguments(message.text, profile), status)
    if kind == "reasoning":
        return _reasoning_item(f"rs_{new_id()}", message.text, None)
    if kind == "message":
        return _message_item(
            f"msg_{new_id()}", message.text, "completed" if message.complete else "incomplete"
        )
    if kind == "web_search_call":
        return _web_search_item(new_id(), message)
    return _mcp_item(new_id(), message, "completed" if message.complete else "in_progress")


def output_items(
    completion: Completion, request: ParsedRequest, profile: VLLMProfile, new_id: NewId
) -> list[dict[str, Any]]:
    """The `output` list vLLM builds from the parsed harmony messages (fresh ids each time)."""
    tool_names = {t.name for t in request.tools}
    items = []
    for message in completion.messages:
        kind = item_kind(message, tool_names)
        if kind == "web_search_call" and not message.complete:
            continue
        items.append(_output_item(message, kind, profile, new_id))
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
                    "defer_loading": tool.get("defer_loading"),
                    "description": tool.get("description"),
                }
            )
        else:
            echoed.append(tool)
    return echoed


def _reasoning_echo(request: ParsedRequest) -> dict[str, Any] | None:
    reasoning = request.body.get("reasoning")
    if not isinstance(reasoning, dict):
        return None
    return {
        "effort": reasoning.get("effort"),
        "generate_summary": reasoning.get("generate_summary"),
        "summary": reasoning.get("summary"),
    }


def _text_echo(request: ParsedRequest) -> dict[str, Any] | None:
    text = request.body.get("text")
    if not isinstance(text, dict):
        return None
    return {"format": text.get("format"), "verbosity": text.get("verbosity")}


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


def _number(value: Any, default: float) -> Any:
    return default if value is None else value


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
    return {
        "id": info.response_id,
        "created_at": info.created_at,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": request.instructions,
        "metadata": body.get("metadata"),
        "model": info.model,
        "object": "response",
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": _number(body.get("temperature"), 1.0),
        "tool_choice": request.tool_choice,
        "tools": _tools_echo(request),
        "top_p": _number(body.get("top_p"), 1.0),
        "background": bool(body.get("background", False)),
        "max_output_tokens": max_output,
        "max_tool_calls": body.get("max_tool_calls"),
        "previous_response_id": None,
        "prompt": None,
        "reasoning": _reasoning_echo(request),
        "service_tier": body.get("service_tier") or "auto",
        "status": status,
        "text": _text_echo(request),
        "top_logprobs": None,
        "truncation": body.get("truncation") or "disabled",
        "usage": _usage(completion, info.prompt_tokens) if status != "in_progress" else None,
        "user": body.get("user"),
        "presence_penalty": _number(body.get("presence_penalty"), 0.0),
        "frequency_penalty": _number(body.get("frequency_penalty"), 0.0),
        "kv_transfer_params": None,
        "input_messages": None,
        "output_messages": None,
    }


def final_status(completion: Completion, output: list[dict[str, Any]]) -> str:
    """`incomplete` on a `length` finish or when nothing could be parsed, else `completed`."""
    if completion.finish_reason == "length" or not output:
        return "incomplete"
    return "completed"


def stream_events(
    request: ParsedRequest,
    info: TurnInfo,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
) -> Iterator[dict[str, Any] | Tick]:
    """The SSE events of a streamed answer, with a `Tick` after each generated token.

    An item's events start with its first content token (header tokens send nothing). The final
    `response.completed` carries an output built again with fresh ids, as vLLM's streamer does.
    """
    return _Streamer(request, info, completion, profile, new_id).events()


class _Streamer:
    def __init__(
        self,
        request: ParsedRequest,
        info: TurnInfo,
        completion: Completion,
        profile: VLLMProfile,
        new_id: NewId,
    ) -> None:
        self.request = request
        self.info = info
        self.completion = completion
        self.profile = profile
        self.new_id = new_id
        self.tool_names = {t.name for t in request.tools}
        self.sequence = 0
        self.output_index = 0
        self.content_index = -1
        self.item: dict[str, Any] = {}
        self.kind: ItemKind = "message"
        self.open: int | None = None
        self.text: list[str] = []

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        fields["sequence_number"] = self.sequence
        fields["type"] = kind
        self.sequence += 1
        return dict(sorted(fields.items()))

    def events(self) -> Iterator[dict[str, Any] | Tick]:
        snapshot = response_object(
            self.request, self.info, output=[], completion=None, status="in_progress"
        )
        yield self.event("response.created", response=snapshot)
        yield self.event("response.in_progress", response=snapshot)
        for step in self.completion.steps:
            if step.message != self.open:
                yield from self.close()
            if step.message is not None and step.delta:
                if self.open is None:
                    yield from self.start(step.message)
                self.text.append(step.delta)
                yield self.delta(step.delta)
            yield Tick()
        yield from self.close()
        output = output_items(self.completion, self.request, self.profile, self.new_id)
        status = final_status(self.completion, output)
        final = response_object(
            self.request, self.info, output=output, completion=self.completion, status=status
        )
        yield self.event("response.completed", response=final)

    def start(self, index: int) -> Iterator[dict[str, Any]]:
        message = self.completion.messages[index]
        self.open = index
        self.text = []
        self.kind = item_kind(message, self.tool_names)
        hex_id = self.new_id()
        if self.kind == "function_call":
            # v0.21 draws the call_id hex separately from the item id hex.
            call_hex = self.new_id() if self.profile.function_call_done_id_null else hex_id
            name = (message.recipient or "").removeprefix("functions.")
            self.item = _function_call_item(hex_id, call_hex, name, "", "in_progress")
        elif self.kind == "reasoning":
            prefix = self.profile.streamed_reasoning_id_prefix
            self.item = _reasoning_item(f"{prefix}_{hex_id}", None, "in_progress")
        elif self.kind == "message":
            self.item = _message_item(f"msg_{hex_id}", None, "in_progress")
        elif self.kind == "web_search_call":
            self.item = _web_search_item(hex_id, message) | {"status": "in_progress"}
        else:
            self.item = _mcp_item(hex_id, message, "in_progress") | {"arguments": ""}
        if self.kind in ("reasoning", "message"):
            if self.profile.content_index_continues:
                self.content_index += 1
            else:
                self.content_index = 0
        yield self.event(
            "response.output_item.added", item=dict(self.item), output_index=self.output_index
        )
        where = {
            "item_id": self.item["id"],
            "output_index": self.output_index,
            "content_index": self.content_index,
        }
        if self.kind == "reasoning":
            part = {"text": "", "type": "reasoning_text"}
            yield self.event("response.reasoning_part.added", part=part, **where)
        elif self.kind == "message":
            yield self.event("response.content_part.added", part=_text_part("", []), **where)

    def delta(self, delta: str) -> dict[str, Any]:
        item_id, index = self.item["id"], self.output_index
        if self.kind == "reasoning":
            return self.event(
                "response.reasoning_text.delta",
                item_id=item_id,
                output_index=index,
                content_index=self.content_index,
                delta=delta,
            )
        if self.kind == "message":
            return self.event(
                "response.output_text.delta",
                item_id=item_id,
                output_index=index,
                content_index=self.content_index,
                delta=delta,
                logprobs=[],
            )
        if self.kind == "function_call":
            return self.event(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=delta,
            )
        return self.event(
            "response.mcp_call_arguments.delta", item_id=item_id, output_index=index, delta=delta
        )

    def close(self) -> Iterator[dict[str, Any]]:
        """The done events of the open item; none for an item cut short by `length`."""
        if self.open is None:
            return
        message = self.completion.messages[self.open]
        self.open = None
        if not message.complete:
            return
        text = "".join(self.text)
        where = {
            "item_id": self.item["id"],
            "output_index": self.output_index,
            "content_index": self.content_index,
        }
        if self.kind == "reasoning":
            part = {"text": text, "type": "reasoning_text"}
            yield self.event("response.reasoning_text.done", text=text, **where)
            yield self.event("response.reasoning_part.done", part=part, **where)
            done = _reasoning_item(self.item["id"], text, "completed")
        elif self.kind == "message":
            yield self.event("response.output_text.done", text=text, logprobs=[], **where)
            yield self.event("response.content_part.done", part=_text_part(text, None), **where)
            done = _message_item(self.item["id"], text, "completed")
        elif self.kind == "function_call":
            arguments = _arguments(text, self.profile)
            yield self.event(
                "response.function_call_arguments.done",
                item_id=self.item["id"],
                output_index=self.output_index,
                name=self.item["name"],
                arguments=arguments,
            )
            done = {**self.item, "arguments": arguments, "status": "completed"}
            if self.profile.function_call_done_id_null:
                done.update(
                    id=None,
                    item_id=self.item["id"],
                    output_index=self.output_index,
                    sequence_number=-1,
                )
        else:
            done = {**self.item, "arguments": text, "status": "completed"}
        yield self.event("response.output_item.done", item=done, output_index=self.output_index)
        self.output_index += 1
