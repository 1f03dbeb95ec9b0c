"""Harmony mode: exact prompts as vLLM renders them, real token counts, raw harmony replies."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI

from agent_runtime.testing import LATEST, MockVLLM, Reply, call, load_encoding

DATE = "2026-11-22"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
SYSTEM = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n"
    f"Current date: {DATE}\n\n"
    "Reasoning: {effort}\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message."
)
TOOL_LINE = "\nCalls to these tools must go to the commentary channel: 'functions'."
DEVELOPER = (
    "<|start|>developer<|message|># Instructions\n\nBe brief.\n\n# Tools\n\n## functions\n\n"
    "namespace functions {\n\n// Weather.\ntype get_weather = (_: {\ncity: string,\n}) => any;"
    "\n\n} // namespace functions<|end|>"
)


def system(effort: str = "medium", tools: bool = True) -> str:
    return SYSTEM.replace("{effort}", effort) + (TOOL_LINE if tools else "") + "<|end|>"


def post(mock: MockVLLM, body: dict[str, Any], path: str = "/responses") -> httpx2.Response:
    return httpx2.post(f"{mock.url}{path}", json=body, timeout=10)


def test_two_turn_prompts_are_exact() -> None:
    script = [
        Reply(reasoning="Call tool.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Sunny.", final="Done"),
    ]
    with MockVLLM(script, harmony=True, start_date=DATE) as mock:
        first = post(
            mock,
            {
                "input": "Weather?",
                "instructions": "Be brief.",
                "tools": TOOLS,
                "reasoning": {"effort": "low"},
            },
        ).json()
        history = [
            {"role": "user", "content": "Weather?"},
            *first["output"],
            {
                "type": "function_call_output",
                "call_id": first["output"][1]["call_id"],
                "output": "sunny",
            },
        ]
        post(mock, {"input": history, "instructions": "Be brief.", "tools": TOOLS})
    turn1, turn2 = mock.model_requests
    assert turn1.prompt == (
        system("low") + DEVELOPER + "<|start|>user<|message|>Weather?<|end|><|start|>assistant"
    )
    assert turn2.prompt == (
        system("medium")
        + DEVELOPER
        + "<|start|>user<|message|>Weather?<|end|>"
        + "<|start|>assistant<|channel|>analysis<|message|>Call tool.<|end|>"
        + "<|start|>assistant to=functions.get_weather<|channel|>commentary json"
        + '<|message|>{"city":"Tokyo"}<|call|>'
        + "<|start|>functions.get_weather<|channel|>commentary to=assistant<|message|>sunny<|end|>"
        + "<|start|>assistant"
    )
    encoding = load_encoding()
    assert turn2.prompt_token_ids is not None
    assert first["usage"]["input_tokens"] == len(turn1.prompt_token_ids or ())
    assert encoding.decode_utf8(list(turn2.prompt_token_ids)) == turn2.prompt


@pytest.mark.parametrize(("version", "openings"), [("0.33", 0), ("0.22", 2)])
def test_output_token_counts_are_exact(version: str, openings: int) -> None:
    reply = Reply(reasoning="Call tool.", calls=[call("get_weather", city="Tokyo")])
    with MockVLLM([reply], harmony=True, vllm_version=version) as mock:
        usage = post(mock, {"input": "x", "tools": TOOLS}).json()["usage"]
    encoding = load_encoding()
    completion = (
        "<|channel|>analysis<|message|>Call tool.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"city":"Tokyo"}<|call|>'
    )
    tokens = encoding.encode(completion, allowed_special="all")
    assert usage["output_tokens"] == len(tokens)
    # the content tokens of the reasoning and tool-call messages; 0.22 adds the <|message|>
    # token opening each
    reasoning = len(encoding.encode("Call tool.")) + len(encoding.encode('{"city":"Tokyo"}'))
    assert usage["output_tokens_details"]["reasoning_tokens"] == reasoning + openings


def test_instructions_without_tools_are_dropped_on_0_22_and_kept_on_0_33() -> None:
    body = {"input": "Hi", "instructions": "Be brief."}
    with MockVLLM([Reply(final="a")], harmony=True, start_date=DATE, vllm_version="0.22") as old:
        post(old, body)
    with MockVLLM([Reply(final="a")], harmony=True, start_date=DATE, profile=LATEST) as new:
        post(new, body)
    assert "Be brief." not in (old.model_requests[0].prompt or "")
    assert "# Instructions\n\nBe brief." in (new.model_requests[0].prompt or "")
    assert old.model_requests[0].prompt == (
        system(tools=False) + "<|start|>user<|message|>Hi<|end|><|start|>assistant"
    )


PIRATE = {
    "input": [
        {"role": "system", "content": "You are a pirate."},
        {"role": "developer", "content": "Say arr."},
        {"role": "user", "content": "Hi"},
    ]
}


def test_system_and_developer_input_messages_become_instructions_on_0_33() -> None:
    with MockVLLM([Reply(final="Arr")], harmony=True, start_date=DATE) as mock:
        post(mock, PIRATE)
    assert mock.model_requests[0].prompt == (
        system(tools=False)
        + "<|start|>developer<|message|># Instructions\n\nYou are a pirate.<|end|>"
        + "<|start|>developer<|message|># Instructions\n\nSay arr.<|end|>"
        + "<|start|>user<|message|>Hi<|end|><|start|>assistant"
    )


def test_system_input_message_becomes_the_model_identity_on_0_22() -> None:
    with MockVLLM([Reply(final="Arr")], harmony=True, start_date=DATE, vllm_version="0.22") as mock:
        post(mock, PIRATE)
    prompt = mock.model_requests[0].prompt or ""
    assert prompt.startswith("<|start|>system<|message|>You are a pirate.\nKnowledge cutoff:")
    assert "<|start|>developer<|message|>Instructions:\nSay arr.<|end|>" in prompt
    assert "<|start|>system<|message|>You are a pirate.<|end|>" not in prompt


def test_summary_only_reasoning_is_dropped_from_the_prompt() -> None:
    history = [
        {"role": "user", "content": "x"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "S"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "1"},
    ]
    with MockVLLM([Reply(final="ok")], harmony=True) as mock:
        post(mock, {"input": history, "tools": TOOLS})
    assert "<|channel|>analysis" not in (mock.model_requests[0].prompt or "")
    assert mock.model_requests[0].reasoning_texts == []


@pytest.mark.parametrize("version", ["0.33", "0.22"])
def test_chat_prompt_keeps_reasoning_of_the_running_tool_loop_only(version: str) -> None:
    tool = {"type": "function", "function": TOOLS[0] | {}}
    tool["function"] = {k: v for k, v in TOOLS[0].items() if k != "type"}
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1", "reasoning": "old thoughts"},
        {"role": "user", "content": "q2"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
            "reasoning": "new thoughts",
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    with MockVLLM([Reply(final="ok")], harmony=True, start_date=DATE, vllm_version=version) as mock:
        post(mock, {"messages": messages, "tools": [tool]}, "/chat/completions")
    prompt = mock.model_requests[0].prompt or ""
    assert "old thoughts" not in prompt
    assert "<|start|>assistant<|channel|>analysis<|message|>new thoughts<|end|>" in prompt
    assert "<|start|>assistant<|channel|>final<|message|>a1<|end|>" in prompt
    assert mock.model_requests[0].reasoning_texts == ["new thoughts"]
    if version == "0.33":  # the system message becomes the developer message's instructions
        assert "<|start|>developer<|message|># Instructions\n\nBe brief.\n\n# Tools" in prompt
        assert (
            "<|start|>functions.get_weather<|channel|>commentary to=assistant<|message|>sunny"
            in (prompt)
        )
    else:  # a second, raw system message
        assert "<|start|>system<|message|>Be brief.<|end|>" in prompt
        assert "# Instructions" not in prompt
        assert (
            "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>sunny"
            in (prompt)
        )


def test_raw_harmony_reply_with_a_call_from_the_analysis_channel() -> None:
    raw = (
        "<|channel|>analysis<|message|>Need weather.<|end|>"
        "<|start|>assistant<|channel|>analysis to=functions.get_weather <|constrain|>json"
        '<|message|>{"city":"Rome"}<|call|>'
    )
    with MockVLLM([Reply(harmony=raw)], harmony=True) as mock:
        output = post(mock, {"input": "x", "tools": TOOLS}).json()["output"]
    assert [item["type"] for item in output] == ["reasoning", "function_call"]
    assert output[1]["arguments"] == '{"city":"Rome"}'


def test_raw_harmony_bare_recipient_is_a_call_only_for_declared_tools() -> None:
    raw = '<|channel|>commentary to=get_weather <|constrain|>json<|message|>{"city":"Oslo"}<|call|>'
    other = '<|channel|>commentary to=lookup.search <|constrain|>json<|message|>{"q":1}<|call|>'
    with MockVLLM([Reply(harmony=raw), Reply(harmony=other)], harmony=True) as mock:
        declared = post(mock, {"input": "x", "tools": TOOLS}).json()["output"]
        unknown = post(mock, {"input": "x", "tools": TOOLS}).json()["output"]
    assert declared[0]["type"] == "function_call"
    assert declared[0]["name"] == "get_weather"
    assert unknown[0]["type"] == "mcp_call"
    assert (unknown[0]["server_label"], unknown[0]["name"]) == ("lookup", "search")


def test_malformed_harmony_is_a_500() -> None:
    bad = "<|channel|>analysis<|message|>x<|end|>garbage"
    with MockVLLM([Reply(harmony=bad)], harmony=True) as mock:
        response = post(mock, {"input": "x"})
    assert response.status_code == 500
    assert response.json()["error"]["message"] == (
        "Unexpected token 6802 while expecting start token 200006"
    )


def test_raw_harmony_replies_work_without_harmony_mode() -> None:
    bad = "<|channel|>analysis<|message|>x<|end|>garbage"
    good = "<|channel|>final<|message|>hi<|return|>"
    with MockVLLM([Reply(harmony=bad), Reply(harmony=good)]) as mock:
        failed = post(mock, {"input": "x"})
        answered = post(mock, {"input": "x"})
        assert mock.internal_errors == []
    assert failed.json()["error"]["message"] == (
        "Unexpected token 6802 while expecting start token 200006"
    )
    assert answered.json()["output"][0]["content"][0]["text"] == "hi"


def test_starting_the_mock_leaves_logging_alone(tmp_path: Any) -> None:
    import logging

    handler = logging.FileHandler(tmp_path / "app.log", mode="w")  # closed, it would not reopen
    logger = logging.getLogger("mock-logging-test")
    logger.addHandler(handler)
    try:
        logger.warning("before")
        with MockVLLM():
            logger.warning("while serving")
        logger.warning("after")
        handler.flush()
        assert (tmp_path / "app.log").read_text() == "before\nwhile serving\nafter\n"
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_malformed_harmony_cuts_a_responses_stream() -> None:
    bad = "<|channel|>analysis<|message|>x<|end|>garbage"
    with (
        MockVLLM([Reply(harmony=bad)], harmony=True) as mock,
        OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0) as client,
    ):
        seen = []
        with pytest.raises(openai.APIConnectionError):
            for event in client.responses.create(
                model="openai/gpt-oss-20b", input="x", stream=True
            ):
                seen.append(event.type)
    assert seen == ["response.created", "response.in_progress"]


def test_malformed_harmony_is_reported_in_band_on_a_chat_stream() -> None:
    bad = "<|channel|>analysis<|message|>x<|end|>garbage"
    with (
        MockVLLM([Reply(harmony=bad)], harmony=True) as mock,
        httpx2.stream(
            "POST",
            f"{mock.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "stream": True},
        ) as response,
    ):
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2].removeprefix("data: "))
    assert error["error"]["code"] == 500


@pytest.mark.parametrize("version", ["0.33", "0.22"])
def test_length_cut_keeps_the_partial_message(version: str) -> None:
    with MockVLLM(
        [Reply(reasoning="one two three four five six seven", final="x")],
        harmony=True,
        vllm_version=version,
    ) as mock:
        events = [
            json.loads(line.removeprefix("data: "))
            for line in httpx2.post(
                f"{mock.url}/responses",
                json={"input": "x", "stream": True, "max_output_tokens": 6},
            ).text.splitlines()
            if line.startswith("data: ")
        ]
    types = [e["type"] for e in events]
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "one two three"
    assert final["usage"]["output_tokens"] == 6
    if version == "0.33":  # the cut item is closed, the stream ends incomplete
        assert types[-4:-1] == [
            "response.reasoning_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ]
        assert types[-1] == "response.incomplete"
        assert final["status"] == "incomplete"
    else:  # the item's events just stop, and the stream reports completed
        assert "response.reasoning_text.done" not in types
        assert types[-2:] == ["response.reasoning_text.delta", "response.completed"]
        assert final["status"] == "completed"
