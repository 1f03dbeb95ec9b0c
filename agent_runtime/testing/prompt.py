"""Harmony mode: the exact gpt-oss prompt vLLM renders for a request, with openai-harmony.

The vocabulary file is looked up where openai-harmony looks (`TIKTOKEN_ENCODINGS_BASE`, else its
download cache or a download); `vocab_dir` points it at a local copy for offline machines.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent_runtime.backends.harmony import HarmonyUnavailableError, load_encoding, render_prompt
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.recording import PromptMessage
from agent_runtime.testing.request import ParsedRequest

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding, Message

__all__ = [
    "HarmonyUnavailableError",
    "Prompt",
    "PromptRenderer",
    "estimate_prompt_tokens",
    "load_encoding",
    "prompt_messages",
]

_PIECE = re.compile(r" ?[^\W_]+| ?[^\w\s]+| ?_+|\s+")


class PromptRenderer:
    """Renders requests into harmony prompt tokens the way vLLM's harmony path does."""

    def __init__(self, *, start_date: str | None = None, vocab_dir: str | Path | None = None):
        self.start_date = start_date
        self.vocab_dir = vocab_dir
        self._encoding: HarmonyEncoding | None = None

    def load(self) -> HarmonyEncoding:
        """Load the encoding now (it is loaded on first use otherwise)."""
        if self._encoding is None:
            self._encoding = load_encoding(self.vocab_dir)
        return self._encoding

    @property
    def encoding(self) -> HarmonyEncoding:
        """The loaded harmony encoding."""
        return self.load()

    def decode(self, tokens: list[int]) -> str:
        """Token ids → text, special tokens included."""
        return self.encoding.decode_utf8(tokens)

    def conversation(self, request: ParsedRequest, profile: VLLMProfile) -> list[Message]:
        """The harmony messages of the prompt: system, developer (if any), then the input."""
        prompt = prompt_messages(request, profile)
        messages = [self._system(request, prompt, profile)]
        developer = self._developer(request, prompt, profile)
        if developer is not None:
            messages.append(developer)
        messages.extend(_to_harmony(m, profile) for m in prompt.messages)
        return messages

    def render(self, request: ParsedRequest, profile: VLLMProfile) -> list[int]:
        """Prompt tokens, ending with `<|start|>assistant` for the model to continue."""
        return render_prompt(
            self.encoding,
            self.conversation(request, profile),
            drop_analysis=False,  # prompt_messages dropped what this version drops
            harmony_drop=profile.harmony_drops_analysis,
            legacy_tool_results=profile.legacy_tool_results,
        )

    def _system(self, request: ParsedRequest, prompt: Prompt, profile: VLLMProfile) -> Message:
        from openai_harmony import Message, ReasoningEffort, Role, SystemContent

        content = SystemContent.new()
        if prompt.identity is not None:
            content = content.with_model_identity(prompt.identity)
        if request.reasoning_effort is not None:
            effort = {
                "low": ReasoningEffort.LOW,
                "medium": ReasoningEffort.MEDIUM,
                "high": ReasoningEffort.HIGH,
            }[request.reasoning_effort]
            content = content.with_reasoning_effort(effort)
        start = self.start_date or datetime.date.today().isoformat()
        content = content.with_conversation_start_date(start)
        return Message.from_role_and_content(Role.SYSTEM, content)

    def _developer(
        self, request: ParsedRequest, prompt: Prompt, profile: VLLMProfile
    ) -> Message | None:
        from openai_harmony import DeveloperContent, Message, Role, ToolDescription

        if not request.tools and not prompt.instructions:
            return None
        content = DeveloperContent.new()
        if prompt.instructions:
            content = content.with_instructions(prompt.instructions)
        if request.tools:
            content = content.with_function_tools(
                [
                    ToolDescription.new(
                        tool.name,
                        tool.description or "",
                        parameters=dict(tool.parameters) if tool.parameters else None,
                    )
                    for tool in request.tools
                ]
            )
        return Message.from_role_and_content(Role.DEVELOPER, content)


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a request puts in the prompt, by one vLLM version's rules: the model identity of
    the system message, the instructions of the developer message, and the conversation."""

    identity: str | None
    instructions: str | None
    messages: list[PromptMessage]


def prompt_messages(request: ParsedRequest, profile: VLLMProfile) -> Prompt:
    """Place a request's instructions and system/developer messages, and drop the reasoning
    the version does not show again.

    vLLM 0.33 (both APIs): a leading system or developer message becomes the instructions when
    the request has none (Chat has none); the others become developer messages of their own,
    written as instructions; the analysis before the last final answer is dropped.
    vLLM 0.22: on the Responses API the first system message becomes the model identity and
    later ones are dropped, developer messages are written `Instructions:\n…`, the
    `instructions` need a function tool to show; Chat keeps system and developer messages as
    they are, never shows instructions, and drops the analysis before the last final answer.
    """
    messages = list(request.messages)
    instructions = request.instructions
    identity = None
    if profile.system_items_as_instructions:
        if instructions is None and messages and messages[0].role in ("system", "developer"):
            instructions, messages = messages[0].text, messages[1:]
    elif request.api == "responses":
        kept = []
        for message in messages:
            if message.role == "system":
                identity = message.text if identity is None else identity
            elif message.role == "developer":
                kept.append(replace(message, text=f"Instructions:\n{message.text}"))
            else:
                kept.append(message)
        messages = kept
        if not request.tools and profile.instructions_need_tools:
            instructions = None
    else:
        instructions = None
    if request.api == "chat_completions" or profile.system_items_as_instructions:
        messages = _drop_analysis_before_final(messages)
    return Prompt(identity, instructions, messages)


def _drop_analysis_before_final(messages: list[PromptMessage]) -> list[PromptMessage]:
    last_final = max(
        (i for i, m in enumerate(messages) if m.role == "assistant" and m.channel == "final"),
        default=-1,
    )
    return [m for i, m in enumerate(messages) if i > last_final or m.channel != "analysis"]


def _to_harmony(message: PromptMessage, profile: VLLMProfile) -> Message:
    from openai_harmony import Author, DeveloperContent, Message, Role, TextContent

    role = Role(message.role)
    if role in (Role.SYSTEM, Role.DEVELOPER) and profile.system_items_as_instructions:
        content = DeveloperContent.new().with_instructions(message.text)
        return Message.from_role_and_content(Role.DEVELOPER, content)
    author = Author.new(role, message.name) if message.name else Author(role=role)
    return Message(
        author=author,
        content=[TextContent(text=message.text)],
        channel=message.channel,
        recipient=message.recipient,
        content_type=message.content_type,
    )


def estimate_prompt_tokens(request: ParsedRequest) -> int:
    """About as many tokens as the harmony prompt has, without the tokenizer."""
    count = 60  # system message: identity, knowledge cutoff, date, reasoning, channels
    if request.instructions:
        count += 6 + len(_PIECE.findall(request.instructions))
    for tool in request.tools:
        count += 8 + len(_PIECE.findall(tool.description or ""))
        count += len(_PIECE.findall(str(tool.parameters or "")))
    for message in request.messages:
        count += 5 + len(_PIECE.findall(message.text))
    return count + 3
