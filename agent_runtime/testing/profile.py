"""Which vLLM the mock imitates: the behaviours that changed between versions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "LATEST",
    "RELEASES",
    "VLLM_0_21",
    "VLLM_0_22",
    "VLLM_0_33",
    "Latency",
    "VLLMProfile",
    "release_profile",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class VLLMProfile:
    """Version-dependent vLLM behaviour (reference: vllm-gpt-oss-wire.md §2.2, §3.1, §8).

    Attributes:
        version: what `GET /version` reports.
        streamed_reasoning_id_prefix: `msg` (v0.21, 0.22) or `rs` (0.33) for streamed
            reasoning ids.
        function_call_done_id_null: v0.21 and 0.22 send `id: null` plus a stray `item_id` key
            in a function call's `output_item.done` (and draw its `call_id` apart).
        content_index_continues: v0.21 and 0.22 count `content_index` across items instead of
            restarting at 0 for each item.
        instructions_need_tools: v0.21 drops `instructions` when the request has no function
            tools (and `VLLM_GPT_OSS_HARMONY_SYSTEM_INSTRUCTIONS` is unset).
        normalize_arguments: re-serialise valid JSON arguments with `json.dumps` in Responses
            output (a June 2026 development version); v0.21, 0.22 and 0.33 pass the model's
            text through.
        function_call_status: `status` of function calls in a Responses object: `None` in
            v0.21 and 0.22, `"completed"` in 0.33.
        chat_reasoning_field: the Chat Completions field carrying reasoning: `reasoning`
            (v0.16+), or `reasoning_content` (before v0.11.1), or both (v0.11.1 to v0.15).
        chat_tool_parser: whether the server runs with `--tool-call-parser openai
            --enable-auto-tool-choice`; without it non-streaming Chat answers carry no
            `tool_calls` (a misconfigured server).
        system_items_as_instructions: vLLM 0.33 writes system and developer messages as
            instructions (a leading one into the developer message when the request has no
            `instructions`, others as developer messages of their own) and drops the analysis
            before the last final answer on both APIs; before, Responses system messages set
            the model identity and Chat keeps them as system messages.
        legacy_tool_results: tool results rendered with the recipient before the channel
            (`<|start|>functions.f to=assistant<|channel|>commentary`), as before vLLM 0.31.
        harmony_drops_analysis: harmony's own rule for dropping analysis applies too (before
            vLLM 0.31).
        function_call_done_stray_keys: a function call's `output_item.done` item carries
            stray `output_index` and `sequence_number: -1` keys (v0.21 to 0.33).
        reasoning_part_events: reasoning parts stream as `response.reasoning_part.*` (v0.21,
            0.22) or `response.content_part.*` (0.33).
        final_reuses_stream_ids: the terminal response of a stream carries the streamed item
            ids (0.33); before, its output is built again with fresh ids.
        cut_call_status: `status` of a function call cut short by `length` in a Responses
            object: `in_progress` (v0.21, 0.22) or `incomplete` (0.33).
        usage_cache_write_tokens: usage has `input_tokens_details.cache_write_tokens` (0.33).
        response_cache_fields: the response object has `prompt_cache_key`,
            `prompt_cache_options`, `prompt_cache_retention`, `safety_identifier` and
            `ec_transfer_params` (0.33; null).
        reasoning_counts_message_token: `reasoning_tokens` also counts the `<|message|>` token
            opening each reasoning message (v0.21, 0.22); 0.33 counts content tokens only.
        stream_closes_cut_item: a stream cut short by `length` still closes its open item with
            the done events (0.33); before, the item's events just stop.
        stream_reports_length: a stream cut short by `length` ends with status `incomplete`;
            0.22 reports `completed` (`incomplete` only when no item was parsed).
        incomplete_event: an incomplete stream ends with `response.incomplete` (0.33) instead
            of `response.completed`.
        header_cut_message: a generation cut short inside a message header (or before any
            token) outputs the header's raw text as an incomplete message (0.33); before,
            the unfinished header is dropped.
        empty_generation_breaks_stream: a stream whose generation has no token stops after
            `response.in_progress` (0.22: its streaming context fails on an empty engine step).
        validation_errors: how a request failing vLLM's pydantic request model is worded:
            `listed` (v0.21, 0.22: FastAPI's text of the errors with the endpoint's file and
            line, then the Python list of errors; `param` only for a `VLLMValidationError`) or
            `summarised` (0.33: at most 10 errors with their `loc` dotted and their inputs
            summarised, `param` the first error's `loc`; a validator's `VLLMValidationError`
            answers as a `BadRequestError` naming its parameter).
        error_parameters: errors name the parameter at fault (0.33): `param` is set and the
            message ends with ` (parameter=...)` (reasoning effort, tools, input items, Chat's
            `tools`/`tool_choice` checks).
        unknown_model_aliases: an unknown model's 404 lists the served names ("Valid aliases:
            a, b."; 0.33).
        tool_description_required: a function tool without `description` is refused
            (harmony's `ToolDescription`; v0.21, 0.22); since 0.29 it renders as "".
        responses_forced_tool_choice: the Responses API honours `tool_choice` `required` and
            named functions (0.33); before, 501 with harmony.
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
    system_items_as_instructions: bool = False
    legacy_tool_results: bool = True
    harmony_drops_analysis: bool = True
    function_call_done_stray_keys: bool = True
    reasoning_part_events: Literal["reasoning_part", "content_part"] = "reasoning_part"
    final_reuses_stream_ids: bool = False
    cut_call_status: Literal["in_progress", "incomplete"] = "in_progress"
    usage_cache_write_tokens: bool = False
    response_cache_fields: bool = False
    reasoning_counts_message_token: bool = True
    stream_closes_cut_item: bool = False
    stream_reports_length: bool = True
    incomplete_event: bool = False
    header_cut_message: bool = False
    empty_generation_breaks_stream: bool = False
    validation_errors: Literal["listed", "summarised"] = "listed"
    error_parameters: bool = False
    unknown_model_aliases: bool = False
    tool_description_required: bool = True
    responses_forced_tool_choice: bool = False

    def but(self, **changes: Any) -> VLLMProfile:
        """A copy with some behaviours changed: `VLLM_0_21.but(chat_tool_parser=False)`."""
        return replace(self, **changes)


VLLM_0_21 = VLLMProfile()
"""vLLM v0.21.0 (May 2026), the baseline of the wire reference."""

VLLM_0_33 = VLLMProfile(
    version="0.33.0",
    streamed_reasoning_id_prefix="rs",
    function_call_done_id_null=False,
    content_index_continues=False,
    instructions_need_tools=False,
    function_call_status="completed",
    system_items_as_instructions=True,
    legacy_tool_results=False,
    harmony_drops_analysis=False,
    reasoning_part_events="content_part",
    final_reuses_stream_ids=True,
    cut_call_status="incomplete",
    usage_cache_write_tokens=True,
    response_cache_fields=True,
    reasoning_counts_message_token=False,
    stream_closes_cut_item=True,
    incomplete_event=True,
    header_cut_message=True,
    validation_errors="summarised",
    error_parameters=True,
    unknown_model_aliases=True,
    tool_description_required=False,
    responses_forced_tool_choice=True,
)
"""vLLM 0.33.0 (2026-11-01)."""

VLLM_0_22 = VLLM_0_33.but(
    version="0.22.1",
    system_items_as_instructions=False,
    legacy_tool_results=True,
    harmony_drops_analysis=True,
    instructions_need_tools=True,
    streamed_reasoning_id_prefix="msg",
    function_call_done_id_null=True,
    content_index_continues=True,
    function_call_status=None,
    reasoning_part_events="reasoning_part",
    final_reuses_stream_ids=False,
    cut_call_status="in_progress",
    usage_cache_write_tokens=False,
    response_cache_fields=False,
    reasoning_counts_message_token=True,
    stream_closes_cut_item=False,
    stream_reports_length=False,
    incomplete_event=False,
    header_cut_message=False,
    empty_generation_breaks_stream=True,
    validation_errors="listed",
    error_parameters=False,
    unknown_model_aliases=False,
    tool_description_required=True,
    responses_forced_tool_choice=False,
)
"""vLLM 0.22.1."""

LATEST = VLLM_0_33
"""The newest release the mock imitates."""

RELEASES: Mapping[str, VLLMProfile] = MappingProxyType({"0.33": VLLM_0_33, "0.22": VLLM_0_22})
"""The vLLM releases the mock imitates, by minor version, newest first."""


def release_profile(version: str) -> VLLMProfile:
    """The profile of a vLLM release: `"0.33"`, `"0.33.0"` or `"v0.22.1"`.

    Raises:
        ValueError: the mock does not imitate that release (the message lists those it does).
    """
    parts = version.strip().removeprefix("v").split(".")
    profile = RELEASES.get(".".join(parts[:2]))
    if profile is None or (len(parts) > 2 and profile.version != ".".join(parts)):
        known = ", ".join(f"{p.version} ({minor})" for minor, p in RELEASES.items())
        raise ValueError(
            f"the mock does not imitate vLLM {version!r}; it imitates {known}: give one of "
            f"{', '.join(RELEASES)}"
        )
    return profile


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
