"""Chat Completions answers as vLLM serialises them for gpt-oss: object and stream chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent_runtime.testing.completion import Completion, OutMessage
from agent_runtime.testing.conversation import ParsedRequest
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.responses import NewId, Tick

__all__ = ["ChatTurn", "chat_chunks", "chat_object"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatTurn:
    """What a chat answer needs besides the completion."""

    completion_id: str
    created: int
    model: str
    prompt_tokens: int


def _call_name(message: OutMessage) -> str | None:
    if message.recipient is None:
        return None
    return message.recipient.removeprefix("functions.")


def _normalized(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments))
    except ValueError:
        return arguments


def _reasoning_fields(text: str | None, profile: VLLMProfile) -> dict[str, Any]:
    if profile.chat_reasoning_field == "both":
        return {"reasoning": text, "reasoning_content": text}
    return {profile.chat_reasoning_field: text}


def _finish_reason(completion: Completion, has_calls: bool) -> str:
    if has_calls:
        return "tool_calls"
    return completion.finish_reason


def chat_message_parts(
    completion: Completion,
) -> tuple[str | None, str | None, list[OutMessage]]:
    """Reasoning text, content text and call messages, by vLLM's gpt-oss chat rules."""
    reasoning = [m.text for m in completion.messages if m.channel == "analysis" and not m.recipient]
    finals = [m.text for m in completion.messages if m.channel == "final" and not m.recipient]
    preambles = [
        m.text for m in completion.messages if m.channel == "commentary" and not m.recipient
    ]
    calls = [m for m in completion.messages if m.recipient is not None]
    content = "".join(finals) if finals else ("".join(preambles) if preambles else None)
    return ("".join(reasoning) if reasoning else None), content, calls


def chat_object(
    request: ParsedRequest,
    turn: ChatTurn,
    completion: Completion,
    profile: VLLMProfile,
    new_id: NewId,
    *,
    empty: bool = False,
) -> dict[str, Any]:
    """The non-streaming `chat.completion` object."""
    reasoning, content, calls = chat_message_parts(completion)
    if empty:
        reasoning, content, calls = None, None, []
    if not profile.chat_tool_parser:
        calls = []
    tool_calls = [
        {
            "id": f"chatcmpl-tool-{new_id()}",
            "type": "function",
            "function": {"name": _call_name(m), "arguments": _normalized(m.text)},
        }
        for m in calls
    ]
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
        message.update(_reasoning_fields(reasoning, profile))
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
                "finish_reason": "stop" if empty else _finish_reason(completion, bool(tool_calls)),
                "stop_reason": None if empty else completion.stop_token,
                "token_ids": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": turn.prompt_tokens,
            "total_tokens": turn.prompt_tokens + completion.output_tokens,
            "completion_tokens": completion.output_tokens,
            "prompt_tokens_details": None,
        },
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
    """The `chat.completion.chunk` objects of a streamed answer, a `Tick` after each token."""

    def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None, **extra}
        return {
            "id": turn.completion_id,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.model,
            "choices": [choice],
        }

    yield chunk({"role": "assistant", "content": ""})
    call_index = -1
    current: int | None = None
    for step in completion.steps:
        if step.message is not None:
            message = completion.messages[step.message]
            delta: dict[str, Any] = {}
            if message.recipient is not None and step.message != current:
                call_index += 1
                delta["tool_calls"] = [
                    {
                        "id": f"chatcmpl-tool-{new_id()}",
                        "type": "function",
                        "index": call_index,
                        "function": {"name": _call_name(message), "arguments": step.delta},
                    }
                ]
            elif step.delta:
                if message.recipient is not None:
                    delta["tool_calls"] = [
                        {"index": call_index, "function": {"arguments": step.delta}}
                    ]
                elif message.channel == "analysis":
                    if request.include_reasoning:
                        delta.update(_reasoning_fields(step.delta, profile))
                else:
                    delta["content"] = step.delta
            current = step.message
            if delta:
                yield chunk(delta, token_ids=None)
        yield Tick()
    finish = _finish_reason(completion, call_index >= 0)
    yield chunk({}, finish_reason=finish, stop_reason=completion.stop_token, token_ids=None)
    if request.include_usage:
        yield {
            "id": turn.completion_id,
            "object": "chat.completion.chunk",
            "created": turn.created,
            "model": turn.model,
            "choices": [],
            "usage": {
                "prompt_tokens": turn.prompt_tokens,
                "total_tokens": turn.prompt_tokens + completion.output_tokens,
                "completion_tokens": completion.output_tokens,
            },
        }
