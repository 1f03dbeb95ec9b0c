"""Which vLLM the mock imitates: the behaviours that changed between versions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "LATEST",
    "RELEASES",
    "VLLM_0_22",
    "VLLM_0_33",
    "Latency",
    "VLLMProfile",
    "release_profile",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class VLLMProfile:
    """Version-dependent vLLM behaviour. The defaults are vLLM 0.33.0's; `VLLM_0_33` and
    `VLLM_0_22` are checked against what those releases answer (tests/fixtures/vllm/).

    Attributes:
        version: what `GET /version` reports.
        streamed_reasoning_id_prefix: `msg` (0.22) or `rs` (0.33) for streamed
            reasoning ids.
        function_call_done_id_null: 0.22 send `id: null` plus a stray `item_id` key
            in a function call's `output_item.done` (and draw its `call_id` apart).
        content_index_continues: 0.22 count `content_index` across items instead of
            restarting at 0 for each item.
        instructions_need_tools: 0.22 drops `instructions` when the request has no function
            tools (and `VLLM_GPT_OSS_HARMONY_SYSTEM_INSTRUCTIONS` is unset).
        function_call_status: `status` of function calls in a Responses object: `None` in
            0.22, `"completed"` in 0.33.
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
            stray `output_index` and `sequence_number: -1` keys (0.22, 0.33).
        reasoning_part_events: reasoning parts stream as `response.reasoning_part.*` (0.22) or
            `response.content_part.*` (0.33).
        final_reuses_stream_ids: the terminal response of a stream carries the streamed item
            ids (0.33); before, its output is built again with fresh ids.
        cut_call_status: `status` of a function call cut short by `length` in a Responses
            object: `in_progress` (0.22) or `incomplete` (0.33).
        usage_cache_write_tokens: usage has `input_tokens_details.cache_write_tokens` (0.33).
        response_cache_fields: the response object has `prompt_cache_key`,
            `prompt_cache_options`, `prompt_cache_retention`, `safety_identifier` and
            `ec_transfer_params` (0.33; null).
        reasoning_counts_message_token: `reasoning_tokens` also counts the `<|message|>` token
            opening each reasoning message (0.22); 0.33 counts content tokens only.
        stream_closes_cut_item: a stream cut short by `length` still closes its open item with
            the done events (0.33); before, the item's events just stop.
        stream_reports_length: a stream cut short by `length` ends with status `incomplete`;
            0.22 reports `completed` (`incomplete` only when no item was parsed).
        incomplete_event: an incomplete stream ends with `response.incomplete` (0.33) instead
            of `response.completed`.
        header_cut_message: a generation cut short inside a message header (or before any
            token) outputs the header's raw text as an incomplete message (0.33; Chat appends
            it to `content`); before, the unfinished header is dropped.
        empty_generation_breaks_stream: a stream whose generation has no token stops after
            `response.in_progress`, a Chat stream after its role chunk (0.22: its streaming
            context fails on an empty engine step).
        validation_errors: how a request failing vLLM's pydantic request model is worded:
            `listed` (0.22: FastAPI's text of the errors with the endpoint's file and
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
            (harmony's `ToolDescription`; 0.22); since 0.29 it renders as "".
        responses_forced_tool_choice: the Responses API honours `tool_choice` `required` and
            named functions (0.33); before, 501 with harmony.
        chat_metadata_keys: Chat answers carry vLLM 0.33's extra keys: `weight_versions` on
            each choice, `ec_transfer_params` and `metrics` on the object,
            `kv_transfer_params` on every chunk after the first, and
            `usage.completion_tokens_details.reasoning_tokens`.
        chat_omits_empty_tool_calls: a Chat message or delta without tool calls leaves the
            `tool_calls` key out (0.33); 0.22 writes `[]`.
        chat_unified_parser: Chat answers come from the harmony parser vLLM 0.33 shares with
            the Responses API: `content` joins every final and preamble text in order with
            newlines (0.22: the last final answer, else the last preamble), a call cut short is
            kept (0.22 drops it), a call written on the analysis channel is not reasoning too,
            a streamed message starts without an empty `content: ""` delta, and with
            `include_reasoning: false` every delta says `reasoning: null`.
        chat_applies_tool_choice: Chat answers follow the request's tool settings (0.33):
            `tool_choice: "none"` drops the model's calls, a named tool choice finishes with
            `stop`, `required` and named choices answer `content: ""` rather than null,
            `parallel_tool_calls: false` keeps only the first call in a whole answer too, and a
            cut stays `length` (0.22 streams `tool_calls` once a call was streamed).
    """

    version: str = "0.33.0"
    streamed_reasoning_id_prefix: Literal["msg", "rs"] = "rs"
    function_call_done_id_null: bool = False
    content_index_continues: bool = False
    instructions_need_tools: bool = False
    function_call_status: Literal["completed"] | None = "completed"
    chat_reasoning_field: Literal["reasoning", "reasoning_content", "both"] = "reasoning"
    chat_tool_parser: bool = True
    system_items_as_instructions: bool = True
    legacy_tool_results: bool = False
    harmony_drops_analysis: bool = False
    function_call_done_stray_keys: bool = True
    reasoning_part_events: Literal["reasoning_part", "content_part"] = "content_part"
    final_reuses_stream_ids: bool = True
    cut_call_status: Literal["in_progress", "incomplete"] = "incomplete"
    usage_cache_write_tokens: bool = True
    response_cache_fields: bool = True
    reasoning_counts_message_token: bool = False
    stream_closes_cut_item: bool = True
    stream_reports_length: bool = True
    incomplete_event: bool = True
    header_cut_message: bool = True
    empty_generation_breaks_stream: bool = False
    validation_errors: Literal["listed", "summarised"] = "summarised"
    error_parameters: bool = True
    unknown_model_aliases: bool = True
    tool_description_required: bool = False
    responses_forced_tool_choice: bool = True
    chat_metadata_keys: bool = True
    chat_omits_empty_tool_calls: bool = True
    chat_unified_parser: bool = True
    chat_applies_tool_choice: bool = True

    def but(self, **changes: Any) -> VLLMProfile:
        """A copy with some behaviours changed: `VLLM_0_33.but(chat_tool_parser=False)`."""
        return replace(self, **changes)


VLLM_0_33 = VLLMProfile()
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
    chat_metadata_keys=False,
    chat_omits_empty_tool_calls=False,
    chat_unified_parser=False,
    chat_applies_tool_choice=False,
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
