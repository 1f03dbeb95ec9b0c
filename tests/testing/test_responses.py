"""The mock's `/v1/responses`, through the official `openai` client over real HTTP."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import pytest
from openai import AsyncOpenAI, OpenAI

from agent_runtime.testing import LATEST, VLLM_0_22, MockVLLM, Reply, call

MODEL = "openai/gpt-oss-20b"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]
HEX16 = r"[0-9a-f]{16}"


def weather_script() -> list[Reply]:
    return [
        Reply(
            reasoning="User wants Tokyo weather. Call get_weather.",
            calls=[call("get_weather", city="Tokyo")],
        ),
        Reply(reasoning="Sunny. Write the haiku.", final="Tokyo wakes in light"),
    ]


def raw_post(mock: MockVLLM, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(f"{mock.url}/responses", json=body, timeout=10)


def test_reasoning_then_function_call_has_vllm_shape() -> None:
    with MockVLLM(weather_script()) as mock:
        body = raw_post(mock, {"model": MODEL, "input": "Weather in Tokyo?", "tools": TOOLS}).json()
    reasoning, fc = body["output"]
    assert re.fullmatch(f"rs_{HEX16}", reasoning["id"])
    assert reasoning == {
        "id": reasoning["id"],
        "summary": [],
        "type": "reasoning",
        "content": [
            {"text": "User wants Tokyo weather. Call get_weather.", "type": "reasoning_text"}
        ],
        "encrypted_content": None,
        "status": None,
    }
    hex_id = fc["id"].removeprefix("fc_")
    assert re.fullmatch(HEX16, hex_id)
    assert fc == {
        "arguments": '{"city":"Tokyo"}',
        "call_id": f"call_{hex_id}",
        "name": "get_weather",
        "type": "function_call",
        "id": f"fc_{hex_id}",
        "async": None,
        "caller": None,
        "namespace": None,
        "status": "completed",
    }
    assert re.fullmatch(f"resp_{HEX16}", body["id"])
    assert body["status"] == "completed"
    assert body["incomplete_details"] is None
    assert body["object"] == "response"
    assert body["model"] == MODEL
    assert isinstance(body["created_at"], int)
    assert body["tool_choice"] == "auto"
    assert body["previous_response_id"] is None
    for key in ("presence_penalty", "frequency_penalty", "kv_transfer_params", "input_messages"):
        assert key in body
    for key in ("prompt_cache_key", "safety_identifier", "ec_transfer_params"):
        assert body[key] is None
    for key in ("error", "conversation"):
        assert key not in body
    assert body["tools"][0]["output_schema"] is None
    usage = body["usage"]
    assert usage["input_tokens_details"]["cache_write_tokens"] == 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert 0 < usage["output_tokens_details"]["reasoning_tokens"] < usage["output_tokens"]
    assert body["max_output_tokens"] == 131072 - usage["input_tokens"]


def test_final_answer_turn_is_reasoning_then_message() -> None:
    with MockVLLM([Reply(reasoning="Answer now.", final="It is 15 °C in Paris.")]) as mock:
        body = raw_post(mock, {"model": MODEL, "input": "Paris?"}).json()
    reasoning, message = body["output"]
    assert reasoning["type"] == "reasoning"
    assert re.fullmatch(f"msg_{HEX16}", message["id"])
    assert message == {
        "id": message["id"],
        "content": [
            {
                "annotations": [],
                "text": "It is 15 °C in Paris.",
                "type": "output_text",
                "logprobs": None,
            }
        ],
        "role": "assistant",
        "status": "completed",
        "type": "message",
        "phase": None,
    }
    assert body["tool_choice"] == "none"  # no tools: auto is normalised to none


def test_preamble_and_several_calls_in_one_turn() -> None:
    reply = Reply(
        reasoning="Two cities.",
        preamble="Checking both cities.",
        calls=[call("get_weather", city="Oslo"), call("get_weather", city="Rome")],
    )
    with MockVLLM([reply]) as mock:
        body = raw_post(mock, {"model": MODEL, "input": "Oslo and Rome?", "tools": TOOLS}).json()
    assert [item["type"] for item in body["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert body["output"][1]["content"][0]["text"] == "Checking both cities."
    call_ids = [item["call_id"] for item in body["output"][2:]]
    assert len(set(call_ids)) == 2


def test_unknown_tool_name_is_returned_as_a_function_call() -> None:
    with MockVLLM([Reply(calls=[call("no_such_tool", x=1)])]) as mock:
        body = raw_post(mock, {"model": MODEL, "input": "hi", "tools": TOOLS}).json()
    assert body["output"][0]["name"] == "no_such_tool"


def test_max_output_tokens_gives_incomplete_with_partial_output() -> None:
    long_reasoning = " ".join(["thinking"] * 50)
    with MockVLLM([Reply(reasoning=long_reasoning, final="never reached")]) as mock:
        body = raw_post(mock, {"model": MODEL, "input": "x", "max_output_tokens": 10}).json()
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["output_tokens"] == 10
    assert body["max_output_tokens"] == 10
    assert [item["type"] for item in body["output"]] == ["reasoning"]
    assert long_reasoning.startswith(body["output"][0]["content"][0]["text"])


def test_openai_client_parses_output_and_usage() -> None:
    with MockVLLM(weather_script()) as mock, OpenAI(base_url=mock.url, api_key="EMPTY") as client:
        first = client.responses.create(model=MODEL, input="Weather in Tokyo?", tools=TOOLS)
        reasoning, fc = first.output
        assert reasoning.type == "reasoning"
        assert fc.type == "function_call"
        assert json.loads(fc.arguments) == {"city": "Tokyo"}
        history: list[Any] = [
            {"role": "user", "content": "Weather in Tokyo?"},
            *(item.model_dump(exclude_none=True) for item in first.output),
            {"type": "function_call_output", "call_id": fc.call_id, "output": "sunny"},
        ]
        second = client.responses.create(model=MODEL, input=history, tools=TOOLS)
        assert second.output_text == "Tokyo wakes in light"
        assert second.usage is not None
        assert second.usage.output_tokens_details.reasoning_tokens > 0
        mock.assert_reasoning_returned(reply=0, request=1)
        mock.assert_script_consumed()
    request = mock.model_requests[1]
    assert request.function_calls[0].name == "get_weather"
    assert request.function_outputs[0].output == "sunny"
    assert request.function_outputs[0].name == "get_weather"


async def test_streaming_event_sequence() -> None:
    async with (
        MockVLLM(weather_script()) as mock,
        AsyncOpenAI(base_url=mock.url, api_key="EMPTY") as client,
    ):
        stream = await client.responses.create(
            model=MODEL, input="Weather?", tools=TOOLS, stream=True
        )
        events = [event async for event in stream]
    types = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-1] == "response.completed"
    reasoning = "".join(
        e.delta
        for e in events
        if e.type == "response.reasoning_text.delta"  # type: ignore[union-attr]
    )
    assert reasoning == "User wants Tokyo weather. Call get_weather."
    arguments = "".join(
        e.delta  # type: ignore[union-attr]
        for e in events
        if e.type == "response.function_call_arguments.delta"
    )
    assert arguments == '{"city":"Tokyo"}'
    idx = types.index("response.function_call_arguments.done")
    assert types[idx - 1] == "response.function_call_arguments.delta"
    assert types[idx + 1] == "response.output_item.done"
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.status == "completed"
    assert [i.type for i in completed.output] == ["reasoning", "function_call"]


def sse_events(mock: MockVLLM, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a streamed `/v1/responses` answer, checking the wire format on the way."""
    with httpx2.stream("POST", f"{mock.url}/responses", json=body | {"stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    assert "[DONE]" not in text
    events = []
    for block in (b for b in text.split("\n\n") if b):
        event_line, data_line = block.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}"
        events.append(event)
    return events


def test_stream_wire_format_and_0_22_quirks() -> None:
    with MockVLLM(weather_script(), profile=VLLM_0_22) as mock:
        events = sse_events(mock, {"model": MODEL, "input": "x", "tools": TOOLS})
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert added[0]["item"]["id"].startswith("msg_")  # 0.22 streams reasoning ids as msg_
    assert added[0]["item"]["content"] is None
    assert events[3]["type"] == "response.reasoning_part.added"
    done_fc = next(
        e
        for e in events
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "function_call"
    )
    assert done_fc["item"]["id"] is None
    assert done_fc["item"]["item_id"] == added[1]["item"]["id"]
    assert done_fc["item"]["sequence_number"] == -1
    reasoning_delta = next(e for e in events if e["type"] == "response.reasoning_text.delta")
    fc_delta = next(e for e in events if e["type"] == "response.function_call_arguments.delta")
    assert reasoning_delta["content_index"] == 0
    assert "content_index" not in fc_delta
    completed = events[-1]["response"]
    assert [item["status"] for item in completed["output"]] == [None, None]
    streamed_ids = {e["item"]["id"] for e in added}
    assert not streamed_ids & {item["id"] for item in completed["output"]}


def test_stream_latest_profile_fixes() -> None:
    reply = Reply(reasoning="a", preamble="b", calls=[call("get_weather", city="Oslo")])
    with MockVLLM([reply], profile=LATEST) as mock:
        events = sse_events(mock, {"input": "x", "tools": TOOLS})
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert added[0]["item"]["id"].startswith("rs_")
    assert events[3]["type"] == "response.content_part.added"
    deltas = [e for e in events if e["type"].endswith("text.delta")]
    assert {e["content_index"] for e in deltas} == {0}
    done_fc = [e for e in events if e["type"] == "response.output_item.done"][-1]
    assert done_fc["item"]["id"] == added[-1]["item"]["id"]
    assert done_fc["item"]["output_index"] == 2
    assert done_fc["item"]["sequence_number"] == -1
    assert "item_id" not in done_fc["item"]
    completed = events[-1]
    assert completed["type"] == "response.completed"
    final = completed["response"]["output"]
    assert [item["id"] for item in final] == [e["item"]["id"] for e in added]
    assert final[-1]["call_id"] == added[-1]["item"]["call_id"]


def test_stream_content_index_continues_on_0_22() -> None:
    with MockVLLM([Reply(reasoning="a", final="c")], profile=VLLM_0_22) as mock:
        events = sse_events(mock, {"input": "x"})
    text_delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert text_delta["content_index"] == 1
    assert text_delta["logprobs"] == []


def test_arguments_pass_through_as_the_model_wrote_them() -> None:
    raw = (
        "<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"city":  "Zürich"}<|call|>'
    )
    with MockVLLM([Reply(harmony=raw)] * 2) as mock:
        body = raw_post(mock, {"input": "x", "tools": TOOLS}).json()
        events = sse_events(mock, {"input": "x", "tools": TOOLS})
    assert body["output"][0]["arguments"] == '{"city":  "Zürich"}'
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == '{"city":  "Zürich"}'


CUT = Reply(reasoning="one two three four five six seven", final="never", cut_at=5)


def test_stream_cut_short_closes_its_item_and_ends_incomplete() -> None:
    with MockVLLM([CUT]) as mock:
        events = sse_events(mock, {"input": "x"})
    types = [e["type"] for e in events]
    assert types[-4:] == [
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    done = events[-2]["item"]
    assert done["status"] == "completed"
    final = events[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["id"] == done["id"]
    assert final["output"][0]["content"] == done["content"]
    assert final["usage"]["output_tokens"] == 5


def test_stream_cut_short_on_0_22_stops_mid_item_and_reports_completed() -> None:
    with MockVLLM([CUT], profile=VLLM_0_22) as mock:
        events = sse_events(mock, {"input": "x"})
    assert [e["type"] for e in events[-2:]] == [
        "response.reasoning_text.delta",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["incomplete_details"] is None
    assert [item["type"] for item in final["output"]] == ["reasoning"]


def message_id(events: list[dict[str, Any]]) -> str:
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    return str(next(item["id"] for item in added if item["type"] == "message"))


def test_cut_inside_a_header_answers_its_raw_text_as_a_message() -> None:
    raw = "<|channel|>analysis<|message|>Look.<|end|><|start|>assistant<|channel|>fin"
    with MockVLLM([Reply(harmony=raw, incomplete=True)] * 2) as mock:
        body = raw_post(mock, {"input": "x"}).json()
        events = sse_events(mock, {"input": "x"})
    reasoning, message = body["output"]
    assert reasoning["content"][0]["text"] == "Look."
    assert message["status"] == "incomplete"
    assert message["content"][0]["text"] == "<|start|>assistant<|channel|>fin"
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["<|start|>assistant<|channel|>fin"]
    assert events[-1]["response"]["output"][1]["id"] == message_id(events)


def test_cut_inside_a_header_is_dropped_on_0_22() -> None:
    raw = "<|channel|>analysis<|message|>Look.<|end|><|start|>assistant<|channel|>fin"
    with MockVLLM([Reply(harmony=raw, incomplete=True)], profile=VLLM_0_22) as mock:
        body = raw_post(mock, {"input": "x"}).json()
    assert [item["type"] for item in body["output"]] == ["reasoning"]
    assert body["status"] == "incomplete"


def test_nothing_generated_breaks_the_0_22_stream() -> None:
    empty = Reply(harmony="", incomplete=True)
    with MockVLLM([empty], profile=VLLM_0_22) as old, MockVLLM([empty]) as new:
        broken = sse_events(old, {"input": "x"})
        whole = sse_events(new, {"input": "x"})
    assert [e["type"] for e in broken] == ["response.created", "response.in_progress"]
    assert [e["type"] for e in whole] == [
        "response.created",
        "response.in_progress",
        "response.incomplete",
    ]
    (message,) = whole[-1]["response"]["output"]
    assert message["content"][0]["text"] == ""
    assert message["status"] == "incomplete"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_request_id_becomes_response_id(stream: bool) -> None:
    with MockVLLM([Reply(final="hi")]) as mock:
        response = raw_post(mock, {"input": "x", "request_id": "resp_custom", "stream": stream})
    text = response.text
    assert '"id": "resp_custom"' in text
