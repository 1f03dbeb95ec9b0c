"""Chat Completions answers as vLLM serialises them for gpt-oss: object and chunks.

The shape follows the profile's release: vLLM 0.22.1 parses the generated tokens in its chat
serving code, vLLM 0.33 with the harmony parser it shares with the Responses API
(`VLLMProfile.chat_unified_parser`), and applies `tool_choice` and `parallel_tool_calls` to
the answer (`VLLMProfile.chat_applies_tool_choice`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent_runtime.backends.harmony import CALL_TOKEN
from agent_runtime.testing.completion import Completion, OutMessage
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.request import ParsedRequest
from agent_runtime.testing.responses import NewId, Tick

__all__ = ["ChatTurn", "chat_chunks", "chat_object"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatTurn:
    """What a chat answer needs besides the completion."""

    completion_id: str
    created: int
    model: str
    prompt_tokens: int
    fingerprint: str


# -- messages ---------------------------------------------------------------------------------


def _call_name(message: OutMessage) -> str:
    return (message.recipient or "").removeprefix("functions.")


def _is_call(message: OutMessage) -> bool:
    return message.recipient is not None and message.recipient not in ("assistant", "")


def _is_content(message: OutMessage) -> bool:
    """Text for the user: the final answer and preambles (commentary to no one)."""
    return not _is_call(message) and message.channel != "analysis"


def _json_arguments(message: OutMessage) -> bool:
    """Arguments the model declared as JSON (`<|constrain|>json`) or left untyped."""
    return message.content_type is None or "json" in message.content_type


def _normalized(message: OutMessage) -> str:
    """vLLM's tool parser re-dumps JSON arguments (`json.dumps`, ASCII-escaped)."""
    if not _json_arguments(message):
        return message.text
    try:
        return json.dumps(json.loads(message.text))
    except ValueError:
        return message.text


def _reasoning_fields(text: str | None, profile: VLLMProfile) -> dict[str, Any]:
    if profile.chat_reasoning_field == "both":
        return {"reasoning": text, "reasoning_content": text}
    return {profile.chat_reasoning_field: text}


def _stop_reason(completion: Completion) -> int | None:
    """`<|call|>` is a stop token id the engine reports; `<|return|>` is EOS and reports null."""
    return CALL_TOKEN if completion.stop_token == CALL_TOKEN else None


def _named_choice(request: ParsedRequest) -> bool:
    return isinstance(request.tool_choice, dict)


def _drops_calls(request: ParsedRequest, profile: VLLMProfile) -> bool:
    """vLLM 0.33 drops the model's calls when the request says `tool_choice: "none"`."""
    return profile.chat_applies_tool_choice and request.tool_choice == "none"


def _reasoning_tokens(completion: Completion, profile: VLLMProfile) -> int:
    """Tokens of analysis messages and of calls: their content tokens (vLLM 0.33), or with
    the `<|message|>` token opening each."""
    if profile.reasoning_counts_message_token:
        return completion.reasoning_tokens
    return sum(
        1
        for step in completion.steps
        if step.message is not None
        and step.delta
        and completion.messages[step.message].is_reasoning_like
    )


def _usage(turn: ChatTurn, completion: Completion, profile: VLLMProfile) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": turn.prompt_tokens,
        "total_tokens": turn.prompt_tokens + completion.output_tokens,
        "completion_tokens": completion.output_tokens,
    }
    if profile.chat_metadata_keys:
        usage["completion_tokens_details"] = {
            "reasoning_tokens": _reasoning_tokens(completion, profile)
        }
    return usage


# -- the chat.completion object ---------------------------------------------------------------


def _reasoning_text(messages: tuple[OutMessage, ...], profile: VLLMProfile) -> str | None:
    """Analysis texts joined by newlines; vLLM 0.22.1 counts a call's arguments written on the
    analysis channel as reasoning too."""
    texts = [
        m.text
        for m in messages
        if m.channel == "analysis" and (not _is_call(m) or not profile.chat_unified_parser)
    ]
    return "\n".join(t for t in texts if t) or None


def _content_text(completion: Completion, profile: VLLMProfile) -> str | None:
    """vLLM 0.33 joins every final and preamble text, in order, and the text of a generation
    cut inside a message header; vLLM 0.22.1 keeps the last final answer, else the last
    preamble (without a tool parser it joins them too)."""
    texts = [m.text for m in completion.messages if _is_content(m) and m.text]
    if completion.unparsed and profile.header_cut_message:
        texts.append(completion.unparsed)
    if profile.chat_unified_parser or not profile.chat_tool_parser:
        return "\n".join(texts) or None
    finals = [m.text for m in completion.messages if m.channel == "final" and not _is_call(m)]
    return finals[-1] if finals else (texts[-1] if texts else None)


def _answer_calls(
    request: ParsedRequest, completion: Completion, profile: VLLMProfile
) -> list[OutMessage]:
    """The calls a non-streamed answer carries. vLLM 0.22.1 drops a call cut short."""
    if not profile.chat_tool_parser or _drops_calls(request, profile):
        return []
    calls = [
        m
        for m in completion.messages
        if _is_call(m) and (m.complete or profile.chat_unified_parser)
    ]
    if profile.chat_applies_tool_choice and not request.parallel_tool_calls:
        return calls[:1]
    return calls


def _finish_reason(
    request: ParsedRequest, completion: Completion, called: bool, profile: VLLMProfile
) -> str:
    """`tool_calls` once the model called a tool; vLLM 0.33 keeps `length` on a cut and answers
    `stop` for a named tool choice."""
    if not called:
        return completion.finish_reason
    if not profile.chat_applies_tool_choice:
        return "tool_calls"
    if completion.finish_reason == "length" or _named_choice(request):
        return completion.finish_reason
    return "tool_calls"


def chat_object(
    request: ParsedRequest,
    turn: ChatTurn,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
) -> dict[str, Any]:
    """The non-streaming `chat.completion` object."""
    calls = _answer_calls(request, completion, profile)
    content = _content_text(completion, profile)
    forced = request.tool_choice == "required" or _named_choice(request)
    if profile.chat_applies_tool_choice and forced and content is None:
        content = ""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": [
            {
                "id": f"chatcmpl-tool-{new_id()}",
                "type": "function",
                "function": {"name": _call_name(m), "arguments": _normalized(m)},
            }
            for m in calls
        ],
    }
    if not message["tool_calls"] and profile.chat_omits_empty_tool_calls:
        del message["tool_calls"]
    reasoning = _reasoning_text(completion.messages, profile) if request.include_reasoning else None
    message.update(_reasoning_fields(reasoning, profile))
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _finish_reason(request, completion, bool(calls), profile),
        "stop_reason": _stop_reason(completion),
        "token_ids": None,
        "routed_experts": None,
    }
    body: dict[str, Any] = {
        "id": turn.completion_id,
        "object": "chat.completion",
        "created": turn.created,
        "model": turn.model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": turn.fingerprint,
        "usage": {**_usage(turn, completion, profile), "prompt_tokens_details": None},
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "prompt_text": None,
        "kv_transfer_params": None,
    }
    if profile.chat_metadata_keys:
        choice["weight_versions"] = None
        body["ec_transfer_params"] = None
        body["metrics"] = None
    return body


# -- the chunks of a stream -------------------------------------------------------------------


class _Deltas:
    """Turns each generated token into the delta vLLM streams for it (None: no chunk)."""

    def __init__(
        self,
        request: ParsedRequest,
        completion: Completion,
        profile: VLLMProfile,
        new_id: NewId,
    ) -> None:
        self._request = request
        self._completion = completion
        self._profile = profile
        self._new_id = new_id
        self._current: int | None = None
        self._calls_before = 0
        self.streamed_call = False

    def next(self, message_index: int | None, text: str) -> dict[str, Any] | None:
        """The delta of one token: which message it belongs to (None in headers), its text."""
        if message_index is None:
            return None
        message = self._completion.messages[message_index]
        starting = message_index != self._current
        if starting and self._current is not None:
            self._calls_before += _is_call(self._completion.messages[self._current])
        self._current = message_index
        delta: dict[str, Any] | None = None
        if _is_call(message):
            delta = self._call_delta(message, starting, text)
        elif message.channel == "analysis":
            if self._request.include_reasoning and text:
                return _reasoning_fields(text, self._profile)
        elif text or (starting and not self._profile.chat_unified_parser):
            delta = {"content": text}
        if delta is not None and self._hides_reasoning:
            delta.update(_reasoning_fields(None, self._profile))
        return delta

    @property
    def _hides_reasoning(self) -> bool:
        """vLLM 0.33 writes `reasoning: null` in each delta when reasoning is not wanted."""
        return self._profile.chat_unified_parser and not self._request.include_reasoning

    def _call_delta(self, message: OutMessage, starting: bool, text: str) -> dict[str, Any] | None:
        if _drops_calls(self._request, self._profile):
            return None
        index = self._calls_before
        if starting:
            call: dict[str, Any] = {
                "id": f"chatcmpl-tool-{self._new_id()}",
                "type": "function",
                "index": index,
                "function": {"name": _call_name(message), "arguments": ""},
            }
        elif text:
            call = {"index": index, "function": {"arguments": text}}
        else:
            return None
        self.streamed_call = True
        if index > 0 and not self._request.parallel_tool_calls:
            return {} if self._profile.chat_omits_empty_tool_calls else {"tool_calls": []}
        return {"tool_calls": [call]}


def chat_chunks(
    request: ParsedRequest,
    turn: ChatTurn,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
) -> Iterator[dict[str, Any] | Tick]:
    """The `chat.completion.chunk` objects of a streamed answer, a `Tick` after each token.

    One chunk per token that has something to say; the last token's delta rides on the chunk
    with the finish reason. Tool calls are streamed whether or not the server runs a tool
    parser (vLLM's harmony streaming is hard-wired); `parallel_tool_calls: false` empties the
    deltas of every call after the first.
    """
    head = {
        "id": turn.completion_id,
        "object": "chat.completion.chunk",
        "created": turn.created,
        "model": turn.model,
    }
    later = {**head, "kv_transfer_params": None} if profile.chat_metadata_keys else head

    def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return {**later, "choices": [{**choice, "token_ids": None, **extra}]}

    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None}
    yield {
        **head,
        "choices": [{**first, "finish_reason": None}],
        "prompt_token_ids": None,
        "prompt_text": None,
    }
    if not completion.steps and profile.empty_generation_breaks_stream:
        return
    deltas = _Deltas(request, completion, profile, new_id)
    last: dict[str, Any] = {}
    for number, step in enumerate(completion.steps, start=1):
        delta = deltas.next(step.message, step.delta)
        if number == len(completion.steps):
            last = delta or {}
        elif delta is not None:
            yield chunk(delta)
        yield Tick()
    if completion.unparsed and profile.header_cut_message:
        last = {**last, "content": last.get("content", "") + completion.unparsed}
    finish = _finish_reason(request, completion, deltas.streamed_call, profile)
    extra: dict[str, Any] = {"finish_reason": finish, "stop_reason": _stop_reason(completion)}
    if profile.chat_metadata_keys:
        extra["weight_versions"] = None
    final = chunk(last, **extra)
    if not request.include_usage:
        final["system_fingerprint"] = turn.fingerprint
    yield final
    if request.include_usage:
        usage = _usage(turn, completion, profile)
        yield {**head, "choices": [], "usage": usage, "system_fingerprint": turn.fingerprint}
