"""Chat Completions answers as vLLM v0.21 serialises them for gpt-oss: object and chunks."""

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


def _call_name(message: OutMessage) -> str:
    return (message.recipient or "").removeprefix("functions.")


def _normalized(message: OutMessage) -> str:
    """vLLM's tool parser re-dumps JSON arguments (`json.dumps`, ASCII-escaped)."""
    if message.content_type is not None and "json" not in message.content_type:
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


def _is_call(message: OutMessage) -> bool:
    return message.recipient is not None and message.recipient not in ("assistant", "")


def _usage(turn: ChatTurn, completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": turn.prompt_tokens,
        "total_tokens": turn.prompt_tokens + completion.output_tokens,
        "completion_tokens": completion.output_tokens,
    }


def chat_object(
    request: ParsedRequest,
    turn: ChatTurn,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
) -> dict[str, Any]:
    """The non-streaming `chat.completion` object."""
    messages = completion.messages
    analysis = [m.text for m in messages if m.channel == "analysis" and m.recipient is None]
    finals = [m.text for m in messages if m.channel == "final" and m.recipient is None]
    preambles = [m.text for m in messages if m.channel == "commentary" and m.recipient is None]
    calls = [m for m in messages if _is_call(m)]
    if profile.chat_tool_parser:
        content = finals[-1] if finals else (preambles[-1] if preambles else None)
        tool_calls = [
            {
                "id": f"chatcmpl-tool-{new_id()}",
                "type": "function",
                "function": {"name": _call_name(m), "arguments": _normalized(m)},
            }
            for m in calls
        ]
    else:
        content = "\n".join(finals + preambles) if finals or preambles else None
        tool_calls = []
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": tool_calls,
    }
    if request.include_reasoning:
        message.update(_reasoning_fields("\n".join(analysis) if analysis else None, profile))
    return {
        "id": turn.completion_id,
        "object": "chat.completion",
        "created": turn.created,
        "model": turn.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else completion.finish_reason,
                "stop_reason": _stop_reason(completion),
                "token_ids": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": turn.fingerprint,
        "usage": {**_usage(turn, completion), "prompt_tokens_details": None},
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "prompt_text": None,
        "kv_transfer_params": None,
    }


def chat_chunks(
    request: ParsedRequest,
    turn: ChatTurn,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
) -> Iterator[dict[str, Any] | Tick]:
    """The `chat.completion.chunk` objects of a streamed answer, a `Tick` after each token.

    Tool calls are streamed whether or not the server runs a tool parser (vLLM's harmony
    streaming is hard-wired); `parallel_tool_calls: false` keeps only the first call.
    """
    head = {
        "id": turn.completion_id,
        "object": "chat.completion.chunk",
        "created": turn.created,
        "model": turn.model,
    }

    def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return {**head, "choices": [{**choice, "token_ids": None, **extra}]}

    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None}
    yield {
        **head,
        "choices": [{**first, "finish_reason": None}],
        "prompt_token_ids": None,
        "prompt_text": None,
    }
    calls_done = 0
    streamed_call = False
    current: int | None = None
    for step in completion.steps:
        delta: dict[str, Any] = {}
        if step.message is not None:
            message = completion.messages[step.message]
            starting = step.message != current
            if starting and current is not None and _is_call(completion.messages[current]):
                calls_done += 1
            current = step.message
            keep = request.parallel_tool_calls or calls_done == 0
            if _is_call(message):
                if starting and keep:
                    opening = {
                        "id": f"chatcmpl-tool-{new_id()}",
                        "type": "function",
                        "index": calls_done,
                        "function": {"name": _call_name(message), "arguments": ""},
                    }
                    delta["tool_calls"] = [opening]
                elif step.delta and keep:
                    delta["tool_calls"] = [
                        {"index": calls_done, "function": {"arguments": step.delta}}
                    ]
                streamed_call = streamed_call or bool(delta)
            elif message.channel == "analysis":
                if step.delta and request.include_reasoning:
                    delta.update(_reasoning_fields(step.delta, profile))
            elif starting or step.delta:
                delta["content"] = step.delta
        if delta:
            yield chunk(delta)
        yield Tick()
    finish = "tool_calls" if streamed_call else completion.finish_reason
    last = chunk({}, finish_reason=finish, stop_reason=_stop_reason(completion))
    if not request.include_usage:
        last["system_fingerprint"] = turn.fingerprint
    yield last
    if request.include_usage:
        usage = _usage(turn, completion)
        yield {**head, "choices": [], "usage": usage, "system_fingerprint": turn.fingerprint}
