"""Harmony mode: the exact gpt-oss prompt vLLM renders for a request, with openai-harmony.

The vocabulary file is looked up where openai-harmony looks (`TIKTOKEN_ENCODINGS_BASE`, else its
download cache or a download); `vocab_dir` points it at a local copy for offline machines.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import TYPE_CHECKING

from agent_runtime.backends.harmony import HarmonyUnavailableError, load_encoding
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.recording import PromptMessage
from agent_runtime.testing.request import ParsedRequest

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding, Message

__all__ = ["HarmonyUnavailableError", "PromptRenderer", "estimate_prompt_tokens", "load_encoding"]

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
        messages = [self._system(request, profile)]
        developer = self._developer(request, profile)
        if developer is not None:
            messages.append(developer)
        messages.extend(_to_harmony(m) for m in request.messages)
        return messages

    def render(self, request: ParsedRequest, profile: VLLMProfile) -> list[int]:
        """Prompt tokens, ending with `<|start|>assistant` for the model to continue."""
        from openai_harmony import Conversation, Role

        conversation = Conversation.from_messages(self.conversation(request, profile))
        return self.encoding.render_conversation_for_completion(conversation, Role.ASSISTANT)

    def _system(self, request: ParsedRequest, profile: VLLMProfile) -> Message:
        from openai_harmony import Message, ReasoningEffort, Role, SystemContent

        content = SystemContent.new()
        if request.system_identity is not None:
            content = content.with_model_identity(request.system_identity)
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

    def _developer(self, request: ParsedRequest, profile: VLLMProfile) -> Message | None:
        from openai_harmony import DeveloperContent, Message, Role, ToolDescription

        instructions = request.instructions
        if request.api == "chat_completions":
            if not request.tools:
                return None
            instructions = None
        elif not request.tools and profile.instructions_need_tools:
            return None
        content = DeveloperContent.new()
        if instructions is not None:
            content = content.with_instructions(instructions)
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
        elif instructions is None:
            return None
        return Message.from_role_and_content(Role.DEVELOPER, content)


def _to_harmony(message: PromptMessage) -> Message:
    from openai_harmony import Author, Message, Role, TextContent

    role = Role(message.role)
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
