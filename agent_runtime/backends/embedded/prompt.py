"""Responses-API input items → the harmony prompt gpt-oss reads, by vLLM 0.33's rules.

The same conversion vLLM 0.33's Responses endpoint makes: a system message (reasoning effort,
date), a developer message (the instructions — or, without them, the text of a leading system or
developer item — and the `functions` namespace), then each item: user and assistant messages
(an assistant message on the `final` channel), reasoning as `analysis`, function calls as
`commentary` to `functions.NAME` (content type `json`), tool results from `functions.NAME` to the
assistant, later system and developer items as developer messages of their own. It is rendered by
`harmony.render_prompt`: the reasoning before the last final answer is dropped.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_runtime.backends.harmony import render_prompt

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding, Message

__all__ = ["PromptError", "ToolSpec", "conversation", "render_items", "tools_fingerprint"]

ASSISTANT_START = "<|start|>assistant"


class PromptError(ValueError):
    """An input item the harmony prompt cannot hold (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool as the prompt declares it."""

    name: str
    description: str
    parameters: Mapping[str, Any] | None


def tools_fingerprint(
    instructions: str | None, tools: Sequence[ToolSpec], effort: str | None
) -> str:
    """What the system and developer messages depend on (a changed one means a new prefix)."""
    return json.dumps(
        [instructions, effort, [(t.name, t.description, t.parameters) for t in tools]],
        sort_keys=True,
        default=str,
    )


def _system(effort: str | None, start_date: str | None) -> Message:
    from openai_harmony import Message, ReasoningEffort, Role, SystemContent

    content = SystemContent.new()
    if effort is not None:
        content = content.with_reasoning_effort(ReasoningEffort(effort.capitalize()))
    content = content.with_conversation_start_date(start_date or datetime.date.today().isoformat())
    return Message.from_role_and_content(Role.SYSTEM, content)


def _developer(instructions: str | None, tools: Sequence[ToolSpec]) -> Message | None:
    from openai_harmony import DeveloperContent, Message, Role, ToolDescription

    if not instructions and not tools:
        return None
    content = DeveloperContent.new()
    if instructions:
        content = content.with_instructions(instructions)
    if tools:
        content = content.with_function_tools(
            [
                ToolDescription.new(
                    tool.name,
                    tool.description,
                    parameters=dict(tool.parameters) if tool.parameters else None,
                )
                for tool in tools
            ]
        )
    return Message.from_role_and_content(Role.DEVELOPER, content)


def _texts(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts = []
        for part in content:
            text = part.get("text") if isinstance(part, Mapping) else getattr(part, "text", None)
            if not isinstance(text, str):
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise PromptError(f"{where}: a {kind!r} part has no text; gpt-oss reads text only")
            texts.append(text)
        return texts
    raise PromptError(f"{where}: content must be text or a list of text parts")


def _plain(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        value = dump(exclude_unset=True)
        if isinstance(value, dict):
            return value
    raise PromptError(f"an input item of type {type(item).__name__} cannot be rendered")


def _instructions_item(item: Any) -> str | None:
    """The text of a system or developer message item, else None."""
    plain = _plain(item)
    if plain.get("type", "message") != "message" or plain.get("role") not in (
        "system",
        "developer",
    ):
        return None
    return "".join(_texts(plain.get("content"), "input[0]"))


def render_items(items: Iterable[Any], calls: dict[str, str]) -> list[Message]:
    """Harmony messages for input items.

    `calls` maps the call ids of function calls seen so far to their names (updated), so that a
    tool result can name the function it answers.
    """
    from openai_harmony import Author, Message, Role

    messages: list[Message] = []
    for position, raw in enumerate(items):
        item = _plain(raw)
        where = f"input[{position}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            texts = _texts(item.get("content"), where)
            if role == "user":
                messages.append(Message.from_role_and_content(Role.USER, "".join(texts)))
            elif role == "assistant":
                message = Message.from_role_and_content(Role.ASSISTANT, "".join(texts))
                messages.append(message.with_channel("final"))
            elif role in ("developer", "system"):
                developer = _developer("".join(texts), ())
                if developer is not None:
                    messages.append(developer)
            else:
                raise PromptError(f"{where}: unknown role {role!r}")
        elif kind == "reasoning":
            parts = item.get("content") or []
            if parts:  # summary-only reasoning carries no text to resend, as in vLLM
                text = "\n".join(str(_plain(p).get("text", "")) for p in parts)
                messages.append(
                    Message.from_role_and_content(Role.ASSISTANT, text).with_channel("analysis")
                )
        elif kind == "function_call":
            name, call_id = str(item.get("name")), str(item.get("call_id"))
            calls[call_id] = name
            message = Message.from_role_and_content(Role.ASSISTANT, str(item.get("arguments")))
            messages.append(
                message.with_channel("commentary")
                .with_recipient(f"functions.{name}")
                .with_content_type("json")
            )
        elif kind == "function_call_output":
            call_id = str(item.get("call_id"))
            if call_id not in calls:
                raise PromptError(f"{where}: no function call with call_id {call_id!r} before it")
            output = item.get("output")
            text = output if isinstance(output, str) else "".join(_texts(output, where))
            author = Author.new(Role.TOOL, f"functions.{calls[call_id]}")
            message = Message.from_author_and_content(author, text)
            messages.append(message.with_channel("commentary").with_recipient("assistant"))
        else:
            raise PromptError(f"{where}: input items of type {kind!r} have no harmony form")
    return messages


def conversation(
    encoding: HarmonyEncoding,
    *,
    instructions: str | None,
    items: Sequence[Any],
    tools: Sequence[ToolSpec],
    effort: str | None,
    start_date: str | None,
) -> list[int]:
    """The whole prompt, rendered for the assistant's next message."""
    if instructions is None and items:
        leading = _instructions_item(items[0])
        if leading is not None:
            instructions, items = leading, items[1:]
    head = [_system(effort, start_date)]
    developer = _developer(instructions, tools)
    if developer is not None:
        head.append(developer)
    return render_prompt(encoding, [*head, *render_items(items, {})])
