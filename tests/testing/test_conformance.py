"""Conformance: the mock vLLM server against OpenAI's reference gpt-oss Responses server.

Both servers get the same requests through the official `openai` client and parse the same
scripted harmony completions (the mock from `Reply(harmony=...)`, the reference server token by
token from `ScriptedTokens`). The tests compare the output items, the SSE events and the harmony
prompt of every turn.

Where the two differ, vLLM is right: the mock imitates vLLM, the reference server is only a second
implementation of the same harmony conversions. Every difference is normalised on its own, on the
reference side, into vLLM's form, next to a comment that names it and cites
`shared/reference/vllm-gpt-oss-wire.md` ("doc §…"); the reference server's own value is asserted
first, so a new `gpt-oss` release that changes it fails here instead of passing silently.
Sources for the reference server: `gpt_oss/responses_api/{api_server,types}.py` of `gpt-oss`
0.0.9 and the lab notes on it ("notes §…").

Differences handled below (the reference server's value first, then vLLM 0.33's):
- ids: `<prefix>_<32 hex>`, messages `item_`, separate hex for `fc_` and `call_`; vLLM
  `<prefix>_<16 hex>`, messages `msg_`, one hex for `fc_`/`call_` (doc §1.1; notes §2.4).
- fields vLLM sends as null, because it dumps openai-python's models without `exclude_none`
  (reasoning `encrypted_content`/`status`, output_text `logprobs`, ...): absent (doc §1.2).
- output_text parts: an extra `status: "completed"`; none in vLLM (doc §1.3).
- replayed function calls: no content type, rendered
  `<|start|>assistant<|channel|>commentary to=functions.f<|message|>`; vLLM gives them content
  type `json`, `<|start|>assistant to=functions.f<|channel|>commentary json<|message|>` (doc §3.2).
- streaming (doc §2.1, §2.2; notes §2.5): a function call only as `response.output_item.done`,
  without vLLM's `output_item.added` and `function_call_arguments.*`; `output_index` of
  `.added`/`.delta` events one behind; the items of `output_item.done` events (vLLM's done
  function call has stray `output_index` and `sequence_number: -1` keys).
- preambles, the default reasoning effort, `role: "system"` input: `test_known_difference_*`.

The same in both, and asserted as such: function call `status: "completed"`, reasoning parts
streamed as `response.content_part.*`, `content_index` 0, the ids of `response.completed` equal
to the streamed ones (vLLM 0.33; vLLM 0.21 differed in each, doc §1.2, §2.1, §2.2.1, §2.2.4).

Known, not exercised here (notes §5): the reference keeps replayed reasoning only before a
trailing `function_call_output`; error statuses and shapes (422 vs vLLM's 400/404/501);
`max_output_tokens` truncation (`completed` vs vLLM's `incomplete`, streamed as
`response.incomplete`); response-level fields (`model`, `tools`, `temperature`,
`parallel_tool_calls`, ... echoed differently); usage details; built-in tools.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic
import pytest
from openai import OpenAI, omit
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
)

from agent_runtime.testing import VLLM_0_33, MockVLLM, Reply, load_encoding
from tests.testing.reference_server import ReferenceServer

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

START_DATE = "2026-01-02"
MODEL = "openai/gpt-oss-20b"
INSTRUCTIONS = "You are a terse weather bot."
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Get current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]
# Sent explicitly: without `reasoning`, vLLM uses harmony's default (medium) and the reference
# server `low` (see test_known_difference_default_reasoning_effort).
REASONING: Any = {"effort": "low"}
# The vLLM the mock imitates here: the newest release it imitates.
PROFILE = VLLM_0_33

VLLM_HEX = "[0-9a-f]{16}"  # vLLM's random_uuid() (doc §1.1)
REFERENCE_HEX = "[0-9a-f]{32}"  # uuid4().hex (notes §2.4)

Item = dict[str, Any]
Event = dict[str, Any]


def _analysis(text: str) -> str:
    return f"<|channel|>analysis<|message|>{text}<|end|>"


def _tool_call(city: str) -> str:
    # As gpt-oss writes a call: recipient after the channel, `<|constrain|>json`, `<|call|>`.
    return (
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
        f'<|message|>{{"city":"{city}"}}<|call|>'
    )


def _answer(text: str) -> str:
    return f"<|start|>assistant<|channel|>final<|message|>{text}<|return|>"


@dataclass(frozen=True, slots=True)
class Turn:
    """One model call: the raw harmony completion, the output types it gives, and the tool
    result the client sends back for its function call (if it makes one)."""

    completion: str
    output_types: tuple[str, ...]
    tool_output: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    user: str
    turns: tuple[Turn, ...]


CALL_TOKYO = Turn(
    _analysis("User wants weather. Call tool.") + _tool_call("Tokyo"),
    ("reasoning", "function_call"),
    tool_output='{"temp_c":21,"sky":"sunny"}',
)
SCENARIOS = [
    pytest.param(Scenario("What's the weather in Tokyo?", (CALL_TOKYO,)), id="reasoning-call"),
    pytest.param(
        Scenario(
            "What's the weather in Tokyo?",
            (
                CALL_TOKYO,
                Turn(
                    _analysis("Tool says sunny, 21C. Answer.")
                    + _answer("It is sunny and 21 °C in Tokyo."),
                    ("reasoning", "message"),
                ),
            ),
        ),
        id="follow-up-answer",
    ),
    pytest.param(
        Scenario(
            "Weather in Tokyo and then Osaka?",
            (
                CALL_TOKYO,
                Turn(
                    _analysis("Now Osaka.") + _tool_call("Osaka"),
                    ("reasoning", "function_call"),
                    tool_output='{"temp_c":18,"sky":"rain"}',
                ),
                Turn(
                    _analysis("Both known. Answer.")
                    + _answer("Tokyo: sunny 21 °C. Osaka: rain 18 °C."),
                    ("reasoning", "message"),
                ),
            ),
        ),
        id="two-calls-in-sequence",
    ),
]


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoding() -> HarmonyEncoding:
    return load_encoding()


@pytest.fixture(scope="module")
def reference_server(encoding: HarmonyEncoding) -> Iterator[ReferenceServer]:
    server = ReferenceServer(encoding, start_date=START_DATE).start()
    yield server
    server.stop()


@pytest.fixture
def reference(reference_server: ReferenceServer) -> ReferenceServer:
    """The module's reference server with no scripted completions and no recorded prompts."""
    reference_server.tokens.reset()
    return reference_server


def start_mock(*completions: str) -> MockVLLM:
    return MockVLLM(
        [Reply(harmony=c) for c in completions],
        harmony=True,
        start_date=START_DATE,
        profile=PROFILE,
    )


# -- driving a conversation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnResult:
    input: list[Item]
    response: dict[str, Any]  # the body, or the `response` of `response.completed`
    events: list[Event]  # SSE events, when streaming


def replay(output: list[Item]) -> list[Item]:
    """Output items as a stateless client sends them back: the payload doc §3.2 recommends.

    Ids and statuses are left out: the reference server refuses vLLM's `"status": null` (422,
    notes §4), and neither server puts ids into the prompt.
    """
    replayed: list[Item] = []
    for item in output:
        if item["type"] == "reasoning":
            replayed.append({"type": "reasoning", "summary": [], "content": item["content"]})
        elif item["type"] == "function_call":
            keys = ("type", "call_id", "name", "arguments")
            replayed.append({key: item[key] for key in keys})
        else:
            text = "".join(part["text"] for part in item["content"])
            replayed.append({"role": "assistant", "content": text})
    return replayed


def create(
    client: OpenAI, input_: str | list[Any], *, stream: bool, reasoning: Any = REASONING
) -> tuple[Item, list[Event]]:
    """One `responses.create` with the scenarios' parameters: the response object (raw JSON, or
    the `response` of `response.completed`) and the SSE events when streaming."""
    if not stream:
        raw = client.responses.with_raw_response.create(
            model=MODEL, instructions=INSTRUCTIONS, tools=TOOLS, reasoning=reasoning, input=input_
        )
        raw.parse()  # the SDK must accept what the server sent
        body: Item = raw.http_response.json()
        return body, []
    with client.responses.create(
        model=MODEL,
        instructions=INSTRUCTIONS,
        tools=TOOLS,
        reasoning=reasoning,
        input=input_,
        stream=True,
    ) as events_stream:
        events: list[Event] = [dict(event.to_dict(mode="json")) for event in events_stream]
    # The client takes its history from `response.completed` alone (doc §8.4).
    response: Item = events[-1]["response"]
    return response, events


def create_once(base_url: str, input_: str | list[Any], *, reasoning: Any = REASONING) -> Item:
    """A non-streaming `responses.create` on a new client; the response object."""
    with OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=10) as client:
        response, _ = create(client, input_, stream=False, reasoning=reasoning)
    return response


def without_call_ids(items: list[Item]) -> list[Item]:
    return [{key: value for key, value in item.items() if key != "call_id"} for item in items]


def converse(base_url: str, scenario: Scenario, *, stream: bool) -> list[TurnResult]:
    """Run the scenario's turns, sending back each turn's output and tool results."""
    history: list[Any] = [{"role": "user", "content": scenario.user}]
    results: list[TurnResult] = []
    with OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=10) as client:
        for turn in scenario.turns:
            sent = copy.deepcopy(history)
            response, events = create(client, sent, stream=stream)
            results.append(TurnResult(sent, response, events))
            output = response["output"]
            history.extend(replay(output))
            for item in output:
                if item["type"] == "function_call":
                    assert turn.tool_output is not None, "the scenario gives no tool result"
                    history.append(
                        {
                            "type": "function_call_output",
                            "call_id": item["call_id"],
                            "output": turn.tool_output,
                        }
                    )
    return results


# -- normalising ids and known differences ------------------------------------------------------


def _placeholder(
    item: Item, key: str, prefix: str, hex_pattern: str, *, as_prefix: str = ""
) -> str:
    """Check `item[key]` is `<prefix>_<hex>` and replace it by `<as_prefix or prefix>_<id>`."""
    value = item[key]
    assert isinstance(value, str)
    assert re.fullmatch(f"{prefix}_{hex_pattern}", value), f"{key}={value!r}"
    item[key] = f"{as_prefix or prefix}_<id>"
    return value.removeprefix(f"{prefix}_")


def vllm_item(raw: Item) -> Item:
    """A mock item (of the output or of an `output_item.done` event) with its ids checked
    against vLLM's formats and replaced by placeholders."""
    item = copy.deepcopy(raw)
    kind = item["type"]
    if kind == "reasoning":
        _placeholder(item, "id", "rs", VLLM_HEX)
    elif kind == "message":
        _placeholder(item, "id", "msg", VLLM_HEX)
    elif kind == "function_call":
        fc_hex = _placeholder(item, "id", "fc", VLLM_HEX)
        call_hex = _placeholder(item, "call_id", "call", VLLM_HEX)
        assert call_hex == fc_hex  # one random draw for both (doc §1.1)
    return item


def reference_item_as_vllm(raw: Item, *, streamed_at: int | None = None) -> Item:
    """A reference server item in vLLM's form, each known difference normalised on its own.

    Fields only vLLM sends as null are left to `with_vllm_nulls`. `streamed_at`: the output
    index of the `response.output_item.done` event carrying the item; None for an item of the
    final output.
    """
    item = copy.deepcopy(raw)
    streamed = streamed_at is not None
    kind = item["type"]
    if kind == "reasoning":
        # Reasoning ids: `rs_<32 hex>` in the reference, `rs_<16 hex>` in vLLM 0.33 (doc §1.1,
        # §2.2.2).
        _placeholder(item, "id", "rs", REFERENCE_HEX)
        if streamed:
            # The reference's ReasoningItem has no `status`; vLLM's streamed done item says
            # "completed" (doc §2.1).
            assert "status" not in item
            item["status"] = "completed"
    elif kind == "message":
        # Message ids: reference `item_<32 hex>`, vLLM `msg_<16 hex>` (doc §1.1).
        _placeholder(item, "id", "item", REFERENCE_HEX, as_prefix="msg")
        # output_text parts: the reference adds `status: "completed"`, vLLM's part has no
        # status (doc §1.3: {annotations, text, type, logprobs}).
        for part in item["content"]:
            assert part.pop("status") == "completed"
        if streamed:
            # The reference's streamed done message has `status` null (its `Item` default);
            # vLLM's is "completed" (doc §2.1: `output_item.done(message, status completed)`).
            assert item["status"] is None
            item["status"] = "completed"
    elif kind == "function_call":
        # fc_ and call_ ids: 32 hex, two random draws in the reference (doc §1.1: vLLM uses 16
        # hex, one draw).
        _placeholder(item, "id", "fc", REFERENCE_HEX)
        _placeholder(item, "call_id", "call", REFERENCE_HEX)
        # `status`: "completed" in the reference, as in vLLM 0.33's output and streamed done
        # item (doc §2.1).
        assert item["status"] == "completed"
        if streamed:
            # vLLM's streamed done function_call has stray `output_index` and
            # `sequence_number: -1` keys (doc §2.2.3; 0.33 keeps its `id`, vllm#44608).
            item.update(output_index=streamed_at, sequence_number=-1)
    return item


# The openai-python models vLLM builds output items from (doc §1.2).
_OPENAI_ITEM_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "reasoning": ResponseReasoningItem,
    "message": ResponseOutputMessage,
    "function_call": ResponseFunctionToolCall,
}


def _null_filled(reference: Item, vllm: Item, model: type[pydantic.BaseModel]) -> Item:
    fields = {field.alias or name for name, field in model.model_fields.items()}
    unset = (vllm.keys() - reference.keys()) & fields
    return {**dict.fromkeys(unset), **reference}


def with_vllm_nulls(reference: Item, vllm: Item) -> Item:
    """`reference` with a null for each openai-python field that `vllm` has and it lacks.

    vLLM dumps the openai-python models it builds items from without `exclude_none`, so every
    optional field it leaves unset is on the wire as null (doc §1.2: reasoning
    `encrypted_content`/`status`, output_text `logprobs`, ...); the reference server's own
    pydantic models do not have these fields. Only fields of the openai-python model are
    filled, and only with null: anything else vLLM sends must be named in
    `reference_item_as_vllm`, or the comparison fails.
    """
    filled = _null_filled(reference, vllm, _OPENAI_ITEM_MODELS[reference["type"]])
    if reference["type"] == "message" and len(reference["content"]) == len(vllm["content"]):
        filled["content"] = [
            _null_filled(part, vllm_part, ResponseOutputText)
            for part, vllm_part in zip(reference["content"], vllm["content"], strict=True)
        ]
    return filled


def assert_same_items(
    mock_items: list[Item], reference_items: list[Item], *, streamed_at: list[int] | None = None
) -> None:
    """Same items after normalising ids and the known differences (`streamed_at`: the output
    indices of the reference's `output_item.done` events, when comparing those)."""
    ours = [vllm_item(item) for item in mock_items]
    indices: list[int | None] = list(streamed_at) if streamed_at else [None] * len(reference_items)
    theirs = [
        reference_item_as_vllm(item, streamed_at=index)
        for item, index in zip(reference_items, indices, strict=True)
    ]
    if [item["type"] for item in ours] == [item["type"] for item in theirs]:
        theirs = [with_vllm_nulls(t, o) for t, o in zip(theirs, ours, strict=True)]
    assert ours == theirs


_REPLAYED_CALL = re.compile(
    r"<\|start\|>assistant<\|channel\|>commentary to=(functions\.\w+)<\|message\|>"
)


def reference_prompt_as_vllm(prompt: str, *, replayed_calls: int) -> str:
    """The reference server's prompt, with its one known difference from vLLM's normalised.

    A replayed `function_call` item gets content type `json` in vLLM (`parse_response_input`:
    `msg.with_content_type("json")`, doc §3.2) and renders as
    `<|start|>assistant to=functions.f<|channel|>commentary json<|message|>`; the reference
    server sets no content type and, through oss-harmony's renderer, writes the recipient after
    the channel: `<|start|>assistant<|channel|>commentary to=functions.f<|message|>`.
    """
    normalised, count = _REPLAYED_CALL.subn(
        r"<|start|>assistant to=\1<|channel|>commentary json<|message|>", prompt
    )
    assert count == replayed_calls
    return normalised


# -- streams ----------------------------------------------------------------------------------


def _is_delta(event: Event) -> bool:
    return str(event["type"]).endswith(".delta")


def _skeleton_entry(event: Event) -> tuple[str, int | None, str | None]:
    """(type, output_index of `.done` events, item type / part type and text / done text)."""
    kind = str(event["type"])
    detail: str | None
    if "item" in event:
        detail = str(event["item"]["type"])
    elif "part" in event:
        detail = f"{event['part']['type']}: {event['part']['text']}"
    else:
        detail = event.get("text")  # None for events without text
    # `.added` events: the reference's `output_index` lags one behind (-1 for the first item,
    # notes §2.5); vLLM counts from 0 per item (doc §2.2.8). Only `.done` indices are compared.
    # `content_index` is compared by `assert_same_stream`: 0 in both (vLLM 0.33 restarts it
    # for each item, doc §2.2.4).
    index = event.get("output_index") if kind.endswith(".done") else None
    return kind, index, detail


def _opens_or_streams_function_call(event: Event) -> bool:
    # vLLM opens a function call with `output_item.added` and streams its arguments with
    # `function_call_arguments.delta/.done` (doc §2.1); the reference server sends only the
    # call's `output_item.done` (notes §2.5).
    if event["type"] == "response.output_item.added":
        return bool(event["item"]["type"] == "function_call")
    return str(event["type"]).startswith("response.function_call_arguments.")


def vllm_skeleton(events: list[Event]) -> list[tuple[str, int | None, str | None]]:
    """The mock's events without deltas, minus those the reference server never sends."""
    return [
        _skeleton_entry(event)
        for event in events
        if not _is_delta(event) and not _opens_or_streams_function_call(event)
    ]


def reference_skeleton_as_vllm(events: list[Event]) -> list[tuple[str, int | None, str | None]]:
    skeleton = []
    for event in events:
        if _is_delta(event):
            continue
        kind, index, text = _skeleton_entry(event)
        skeleton.append((kind, index, text))
    return skeleton


def delta_texts(events: list[Event]) -> list[tuple[str, str]]:
    """Per streamed item and delta type, the joined deltas (but function call arguments)."""
    joined: dict[tuple[str, str], list[str]] = {}
    for event in events:
        if _is_delta(event) and not _opens_or_streams_function_call(event):
            key = (str(event["item_id"]), str(event["type"]))
            joined.setdefault(key, []).append(str(event["delta"]))
    return [(kind, "".join(parts)) for (_, kind), parts in joined.items()]


def assert_same_stream(mock_events: list[Event], reference_events: list[Event]) -> None:
    for events in (mock_events, reference_events):
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        # `response.created`/`in_progress` snapshots: no output yet.
        for snapshot in events[:2]:
            assert (snapshot["response"]["status"], snapshot["response"]["output"]) == (
                "in_progress",
                [],
            )
        assert {e["content_index"] for e in events if "content_index" in e} <= {0}
    assert vllm_skeleton(mock_events) == reference_skeleton_as_vllm(reference_events)
    assert delta_texts(mock_events) == delta_texts(reference_events)
    done = "response.output_item.done"
    for events in (mock_events, reference_events):
        # The final response carries the streamed item ids (vLLM 0.33, doc §2.2.1).
        final_ids = [item["id"] for item in events[-1]["response"]["output"]]
        assert [e["item"]["id"] for e in events if e["type"] == done] == final_ids
    reference_done = [e for e in reference_events if e["type"] == done]
    assert_same_items(
        [e["item"] for e in mock_events if e["type"] == done],
        [e["item"] for e in reference_done],
        streamed_at=[e["output_index"] for e in reference_done],
    )


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_output_and_prompts(
    scenario: Scenario, stream: bool, reference: ReferenceServer
) -> None:
    completions = [turn.completion for turn in scenario.turns]
    with start_mock(*completions) as mock:
        mock_turns = converse(mock.url, scenario, stream=stream)
        mock.assert_script_consumed()
    reference.tokens.add(*completions)
    reference_turns = converse(reference.url, scenario, stream=stream)
    assert reference.tokens.remaining == 0

    records = mock.model_requests
    reference_prompts = reference.prompts
    assert len(records) == len(reference_prompts) == len(scenario.turns)
    for index, (turn, ours, theirs) in enumerate(
        zip(scenario.turns, mock_turns, reference_turns, strict=True)
    ):
        # The same request went to both servers, but for the call ids each server made.
        assert without_call_ids(ours.input) == without_call_ids(theirs.input)
        for result, hex_pattern in ((ours, VLLM_HEX), (theirs, REFERENCE_HEX)):
            response = result.response
            assert re.fullmatch(f"resp_{hex_pattern}", response["id"])
            assert response["object"] == "response"
            assert response["status"] == "completed"
            assert response["incomplete_details"] is None
            assert tuple(item["type"] for item in response["output"]) == turn.output_types

        assert_same_items(ours.response["output"], theirs.response["output"])

        record = records[index]
        replayed_calls = sum(1 for item in ours.input if item.get("type") == "function_call")
        assert record.prompt == reference_prompt_as_vllm(
            reference_prompts[index], replayed_calls=replayed_calls
        )
        # usage.input_tokens is the prompt length in both.
        assert record.prompt_token_ids is not None
        assert ours.response["usage"]["input_tokens"] == len(record.prompt_token_ids)
        reference_tokens = reference.tokens.prompts[index]
        assert theirs.response["usage"]["input_tokens"] == len(reference_tokens)
        if replayed_calls == 0:
            assert list(record.prompt_token_ids) == reference_tokens

        if stream:
            assert_same_stream(ours.events, theirs.events)


PREAMBLE_CALL = (
    _analysis("Call tool.")
    + "<|start|>assistant<|channel|>commentary<|message|>Checking the weather...<|end|>"
    + _tool_call("Tokyo")
)


def test_known_difference_preamble(reference: ReferenceServer) -> None:
    """A preamble (commentary text without recipient) before a call is a `message` item in
    vLLM since vllm#32114 (doc §1.3); the reference server drops it (notes §2.4)."""
    with start_mock(PREAMBLE_CALL) as mock:
        ours = create_once(mock.url, "What's the weather in Tokyo?")["output"]
    reference.tokens.add(PREAMBLE_CALL)
    theirs = create_once(reference.url, "What's the weather in Tokyo?")["output"]

    assert [item["type"] for item in ours] == ["reasoning", "message", "function_call"]
    assert ours[1]["content"][0]["text"] == "Checking the weather..."
    assert_same_items([ours[0], ours[2]], theirs)


def test_known_difference_default_reasoning_effort(reference: ReferenceServer) -> None:
    """Without `reasoning`, vLLM renders harmony's default `Reasoning: medium` (doc §3.3);
    the reference server's request model defaults to `low` (notes §2.2)."""
    completion = CALL_TOKYO.completion
    with start_mock(completion) as mock:
        create_once(mock.url, "What's the weather in Tokyo?", reasoning=omit)
    reference.tokens.add(completion)
    create_once(reference.url, "What's the weather in Tokyo?", reasoning=omit)

    (theirs,) = reference.prompts
    assert "\nReasoning: low\n" in theirs
    assert mock.model_requests[0].prompt == theirs.replace(
        "\nReasoning: low\n", "\nReasoning: medium\n"
    )


def test_known_difference_system_role_input(reference: ReferenceServer) -> None:
    """A `role: "system"` input message after `instructions` is a developer message of its own
    in vLLM 0.33, with the `# Instructions` header (`VLLMProfile.system_items_as_instructions`;
    vLLM 0.21 made it the model identity, doc §3.1, §3.2); the reference server adds it as a
    second system message (notes §2.3). Both keep the default model identity."""
    input_: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What's the weather in Tokyo?"},
    ]
    completion = CALL_TOKYO.completion
    with start_mock(completion) as mock:
        create_once(mock.url, input_)
    reference.tokens.add(completion)
    create_once(reference.url, input_)

    (theirs,) = reference.prompts
    extra = "<|start|>system<|message|>Be brief.<|end|>"
    default_identity = "You are ChatGPT, a large language model trained by OpenAI."
    assert theirs.count(extra) == 1
    assert theirs.startswith(f"<|start|>system<|message|>{default_identity}\n")
    as_developer = "<|start|>developer<|message|># Instructions\n\nBe brief.<|end|>"
    assert mock.model_requests[0].prompt == theirs.replace(extra, as_developer)
