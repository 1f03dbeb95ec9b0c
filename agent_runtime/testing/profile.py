"""Which vLLM the mock imitates: the behaviours that changed between versions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["LATEST", "VLLM_0_21", "Latency", "VLLMProfile"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VLLMProfile:
    """Version-dependent vLLM behaviour (reference: vllm-gpt-oss-wire.md §2.2, §3.1, §8).

    Attributes:
        version: what `GET /version` reports.
        streamed_reasoning_id_prefix: `msg` (v0.21) or `rs` (later) for streamed reasoning ids.
        function_call_done_id_null: v0.21 sends `id: null` plus stray `item_id`,
            `output_index`, `sequence_number: -1` keys in a function call's `output_item.done`.
        content_index_continues: v0.21 counts `content_index` across items instead of
            restarting at 0 for each item.
        instructions_need_tools: v0.21 drops `instructions` when the request has no function
            tools (and `VLLM_GPT_OSS_HARMONY_SYSTEM_INSTRUCTIONS` is unset).
        normalize_arguments: re-serialise valid JSON arguments with `json.dumps` in Responses
            output (later versions); v0.21 passes the model's text through.
        function_call_status: `status` of function calls in a Responses object: `None` in
            v0.21, `"completed"` later.
        chat_reasoning_field: the Chat Completions field carrying reasoning: `reasoning`
            (v0.16+), or `reasoning_content` (before v0.11.1), or both (v0.11.1 to v0.15).
        chat_tool_parser: whether the server runs with `--tool-call-parser openai
            --enable-auto-tool-choice`; without it non-streaming Chat answers carry no
            `tool_calls` (a misconfigured server).
    """

    version: str = "0.21.0"
    streamed_reasoning_id_prefix: Literal["msg", "rs"] = "msg"
    function_call_done_id_null: bool = True
    content_index_continues: bool = True
    instructions_need_tools: bool = True
    normalize_arguments: bool = False
    function_call_status: Literal["completed"] | None = None
    chat_reasoning_field: Literal["reasoning", "reasoning_content", "both"] = "reasoning"
    chat_tool_parser: bool = True

    def but(self, **changes: Any) -> VLLMProfile:
        """A copy with some behaviours changed: `VLLM_0_21.but(chat_tool_parser=False)`."""
        return replace(self, **changes)


VLLM_0_21 = VLLMProfile()
"""vLLM v0.21.0 (May 2026), the baseline of the wire reference."""

LATEST = VLLMProfile(
    version="0.29.0",
    streamed_reasoning_id_prefix="rs",
    function_call_done_id_null=False,
    content_index_continues=False,
    instructions_need_tools=False,
    normalize_arguments=True,
    function_call_status="completed",
)
"""vLLM after the June 2026 streaming and instruction fixes (#44330, #44608)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """A simple latency model: a delay before the first token, then a delay per token.

    Streaming answers are paced token by token; non-streaming answers arrive after the whole
    generation time.
    """

    first_token_s: float = 0.0
    per_token_s: float = 0.0

    def total(self, tokens: int) -> float:
        """Seconds to generate `tokens` tokens."""
        return self.first_token_s + self.per_token_s * tokens
