"""Responses API answers as vLLM serialises them: the response object and its SSE events.

Objects are dumped with every optional field as `null` (vLLM uses `model_dump(mode="json")`
without `exclude_none`), in the field order of the openai-python models vLLM builds them from.
What changed between vLLM versions (event names, ids, statuses, usage and response fields) is
read from the `VLLMProfile`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent_runtime.testing.completion import Completion, OutMessage
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.request import ParsedRequest

__all__ = [
    "Tick",
    "TurnInfo",
    "final_status",
    "item_messages",
    "output_items",
    "response_object",
    "stream_events",
]

NewId = Callable[[], str]
"""Returns 16 fresh lowercase hex characters."""

ItemKind = Literal["reasoning", "message", "function_call", "mcp_call", "web_search_call"]
_BUILTIN_RECIPIENTS = frozenset({"python", "browser", "container"})
_TOOL_FIELDS = ("allowed_callers", "async", "defer_loading", "description", "output_schema")
_CACHE_FIELDS = ("prompt_cache_key", "prompt_cache_options", "prompt_cache_retention")


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


def item_messages(completion: Completion, profile: VLLMProfile) -> tuple[OutMessage, ...]:
    """The messages vLLM makes output items of, in order.

    vLLM 0.33: a generation cut short inside a message header (or before its first token)
    adds the header's raw text, special tokens written out, as an unfinished message.
    """
    cut_in_header = completion.finish_reason == "length" and (
        bool(completion.unparsed) or not completion.steps
    )
    if not (profile.header_cut_message and cut_in_header):
        return completion.messages
    header = OutMessage(None, None, None, completion.unparsed, complete=False)
    return (*completion.messages, header)


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
        "async": None,
        "caller": None,
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
        status = profile.function_call_status if message.complete else profile.cut_call_status
        return _function_call_item(hex_id, hex_id, name, message.text, status)
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
    completion: Completion,
    request: ParsedRequest,
    profile: VLLMProfile,
    new_id: NewId,
    streamed: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The `output` list vLLM builds from the parsed harmony messages.

    Items get fresh ids, except those of `streamed` (the items a stream added, by message
    index), which keep their `id` and `call_id`.
    """
    tool_names = {t.name for t in request.tools}
    items = []
    for index, message in enumerate(item_messages(completion, profile)):
        kind = item_kind(message, tool_names)
        if kind == "web_search_call" and not message.complete:
            continue
        item = _output_item(message, kind, profile, new_id)
        added = (streamed or {}).get(index)
        if added is not None:
            item.update((key, added[key]) for key in ("id", "call_id") if key in item)
        items.append(item)
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
                }
                | {key: tool.get(key) for key in _TOOL_FIELDS}
            )
        else:
            echoed.append(tool)
    return echoed


def _reasoning_echo(request: ParsedRequest) -> dict[str, Any] | None:
    reasoning = request.body.get("reasoning")
    if not isinstance(reasoning, dict):
        return None
    keys = ("context", "effort", "generate_summary", "mode", "summary")
    return {key: reasoning.get(key) for key in keys}


def _text_echo(request: ParsedRequest) -> dict[str, Any] | None:
    text = request.body.get("text")
    if not isinstance(text, dict):
        return None
    return {"format": text.get("format"), "verbosity": text.get("verbosity")}


def _usage(
    completion: Completion | None, prompt_tokens: int, profile: VLLMProfile
) -> dict[str, Any]:
    output = completion.output_tokens if completion else 0
    reasoning = 0
    if completion is not None and profile.reasoning_counts_message_token:
        reasoning = completion.reasoning_tokens
    elif completion is not None:
        reasoning = completion.reasoning_content_tokens
    input_details: dict[str, Any] = {"cached_tokens": 0}
    if profile.usage_cache_write_tokens:
        input_details["cache_write_tokens"] = 0
    input_details |= {"input_tokens_per_turn": [prompt_tokens], "cached_tokens_per_turn": [0]}
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": input_details,
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
    profile: VLLMProfile,
    *,
    output: list[dict[str, Any]],
    completion: Completion | None,
    status: str,
) -> dict[str, Any]:
    """The full response object, null-filled like vLLM's `model_dump(mode="json")`."""
    body = request.body
    available = max(info.max_model_len - info.prompt_tokens, 0)
    max_output = available if request.max_tokens is None else min(request.max_tokens, available)
    response = {
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
    }
    if profile.response_cache_fields:
        response |= dict.fromkeys(_CACHE_FIELDS)
    response |= {
        "reasoning": _reasoning_echo(request),
        "service_tier": body.get("service_tier") or "auto",
        "status": status,
        "text": _text_echo(request),
        "top_logprobs": None,
        "truncation": body.get("truncation") or "disabled",
        "usage": _usage(completion, info.prompt_tokens, profile)
        if status != "in_progress"
        else None,
        "user": body.get("user"),
    }
    if profile.response_cache_fields:
        response["safety_identifier"] = None
    response |= {
        "presence_penalty": _number(body.get("presence_penalty"), 0.0),
        "frequency_penalty": _number(body.get("frequency_penalty"), 0.0),
        "kv_transfer_params": None,
    }
    if profile.response_cache_fields:
        response["ec_transfer_params"] = None
    response |= {"input_messages": None, "output_messages": None}
    return response


def final_status(
    completion: Completion,
    output: list[dict[str, Any]],
    profile: VLLMProfile,
    *,
    streamed: bool = False,
) -> str:
    """`incomplete` on a `length` finish or when nothing could be parsed, else `completed`.

    vLLM 0.22: a stream cut short by `length` still reports `completed` when it has output.
    """
    cut = completion.finish_reason == "length" and (profile.stream_reports_length or not streamed)
    return "incomplete" if cut or not output else "completed"


def stream_events(
    request: ParsedRequest,
    info: TurnInfo,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
) -> Iterator[dict[str, Any] | Tick]:
    """The SSE events of a streamed answer, with a `Tick` after each generated token.

    An item's events start with its first content token (header tokens send nothing). The
    terminal event (`response.completed`, or vLLM 0.33's `response.incomplete`) carries the
    output built again: with fresh ids, or (0.33) the streamed ones.
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
        self.messages = item_messages(completion, profile)
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
        self.streamed: dict[int, dict[str, Any]] = {}

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        fields["sequence_number"] = self.sequence
        fields["type"] = kind
        self.sequence += 1
        return dict(sorted(fields.items()))

    def events(self) -> Iterator[dict[str, Any] | Tick]:
        snapshot = response_object(
            self.request,
            self.info,
            self.profile,
            output=[],
            completion=None,
            status="in_progress",
        )
        yield self.event("response.created", response=snapshot)
        yield self.event("response.in_progress", response=snapshot)
        if self.profile.empty_generation_breaks_stream and not self.completion.steps:
            return
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
        yield from self.cut_header()
        yield self.terminal()

    def cut_header(self) -> Iterator[dict[str, Any]]:
        """vLLM 0.33 sends a header cut short as one delta of a message, after the last token."""
        index = len(self.completion.messages)
        if index < len(self.messages) and self.messages[index].text:
            text = self.messages[index].text
            yield from self.start(index)
            self.text.append(text)
            yield self.delta(text)
            yield from self.close()

    def terminal(self) -> dict[str, Any]:
        streamed = self.streamed if self.profile.final_reuses_stream_ids else None
        output = output_items(self.completion, self.request, self.profile, self.new_id, streamed)
        status = final_status(self.completion, output, self.profile, streamed=True)
        final = response_object(
            self.request,
            self.info,
            self.profile,
            output=output,
            completion=self.completion,
            status=status,
        )
        incomplete = status == "incomplete" and self.profile.incomplete_event
        return self.event(
            "response.incomplete" if incomplete else "response.completed", response=final
        )

    def start(self, index: int) -> Iterator[dict[str, Any]]:
        message = self.messages[index]
        self.open = index
        self.text = []
        self.kind = item_kind(message, self.tool_names)
        hex_id = self.new_id()
        if self.kind == "function_call":
            # 0.22 draws the call_id hex separately from the item id hex.
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
        self.streamed[index] = self.item
        if self.kind in ("reasoning", "message"):
            if self.profile.content_index_continues:
                self.content_index += 1
            else:
                self.content_index = 0
        yield self.event(
            "response.output_item.added", item=dict(self.item), output_index=self.output_index
        )
        where = self.where()
        if self.kind == "reasoning":
            part = {"text": "", "type": "reasoning_text"}
            yield self.event(
                f"response.{self.profile.reasoning_part_events}.added", part=part, **where
            )
        elif self.kind == "message":
            yield self.event("response.content_part.added", part=_text_part("", []), **where)

    def where(self) -> dict[str, Any]:
        return {
            "item_id": self.item["id"],
            "output_index": self.output_index,
            "content_index": self.content_index,
        }

    def delta(self, delta: str) -> dict[str, Any]:
        item_id, index = self.item["id"], self.output_index
        if self.kind == "reasoning":
            return self.event("response.reasoning_text.delta", delta=delta, **self.where())
        if self.kind == "message":
            return self.event(
                "response.output_text.delta", delta=delta, logprobs=[], **self.where()
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
        """The done events of the open item; an item cut short by `length` gets them only
        from vLLM 0.33 (as `completed`)."""
        if self.open is None:
            return
        message = self.messages[self.open]
        self.open = None
        if not message.complete and not self.profile.stream_closes_cut_item:
            return
        text = "".join(self.text)
        if self.kind == "reasoning":
            part = {"text": text, "type": "reasoning_text"}
            yield self.event("response.reasoning_text.done", text=text, **self.where())
            yield self.event(
                f"response.{self.profile.reasoning_part_events}.done", part=part, **self.where()
            )
            done = _reasoning_item(self.item["id"], text, "completed")
        elif self.kind == "message":
            yield self.event("response.output_text.done", text=text, logprobs=[], **self.where())
            yield self.event(
                "response.content_part.done", part=_text_part(text, None), **self.where()
            )
            done = _message_item(self.item["id"], text, "completed")
        elif self.kind == "function_call":
            done = self.function_call_done(text)
            yield self.event(
                "response.function_call_arguments.done",
                item_id=self.item["id"],
                output_index=self.output_index,
                name=self.item["name"],
                arguments=done["arguments"],
            )
        else:
            done = {**self.item, "arguments": text, "status": "completed"}
        yield self.event("response.output_item.done", item=done, output_index=self.output_index)
        self.output_index += 1

    def function_call_done(self, arguments: str) -> dict[str, Any]:
        """The item of a function call's `output_item.done`, with each version's stray keys."""
        done = {**self.item, "arguments": arguments, "status": "completed"}
        if self.profile.function_call_done_id_null:
            done.update(id=None, item_id=self.item["id"])
        if self.profile.function_call_done_stray_keys:
            done.update(output_index=self.output_index, sequence_number=-1)
        return done
