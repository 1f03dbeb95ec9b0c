"""The embedded backend against vLLM 0.33's own code: the prompts it renders and the output items
it parses equal what vLLM 0.33.0's server rendered and returned for the same requests and the
same generated tokens (tests/fixtures/vllm/0.33.0, captured by scripts/vllm_oracle)."""

from __future__ import annotations

from typing import Any

import pytest
from agents import ModelSettings
from agents.models.interface import ModelTracing

from agent_runtime.backends.client import EmptyResponseError
from agent_runtime.backends.embedded import embedded_model
from agent_runtime.backends.embedded.parse import TurnParser
from agent_runtime.backends.embedded.prompt import ToolSpec, conversation
from agent_runtime.testing import FakeEngine, Reply, load_encoding
from tests.vllm_fixtures import load, normalise

VERSION = "0.33.0"
DATE = "2026-01-01"  # VLLM_SYSTEM_START_DATE of the captures


def cases(kind: str, *, api: str = "responses") -> list[Any]:
    return [
        pytest.param(case, id=case_id)
        for case_id, case in load(VERSION, kind).items()
        if case["api"] == api and case.get("answer", {"status": 200})["status"] == 200
    ]


def tools_of(request: dict[str, Any]) -> list[ToolSpec]:
    return [
        ToolSpec(tool["name"], tool.get("description") or "", tool.get("parameters"))
        for tool in request.get("tools", [])
        if tool.get("type") == "function"
    ]


@pytest.fixture(scope="module")
def encoding() -> Any:
    return load_encoding()


@pytest.mark.parametrize("case", cases("render"))
def test_prompts_equal_vllms(encoding: Any, case: dict[str, Any]) -> None:
    request = case["request"]
    items = request["input"]
    tokens = conversation(
        encoding,
        instructions=request.get("instructions"),
        items=items if isinstance(items, list) else [{"role": "user", "content": items}],
        tools=tools_of(request),
        effort=(request.get("reasoning") or {}).get("effort"),
        start_date=DATE,
    )
    assert encoding.decode_utf8(tokens) == case["prompt_text"]
    assert tokens == case["prompt_token_ids"]


def test_the_corpus_covers_the_rendering_rules() -> None:
    ids = {param.id for param in cases("render")}
    assert {
        "responses.multi_turn_reasoning",
        "responses.parallel_tool_calls",
        "responses.system_leading",
        "responses.developer_leading",
        "responses.instructions_and_system_leading",
        "responses.system_and_developer_later",
        "responses.replayed_preamble",
        "responses.tool_without_description",
        "responses.unicode",
    } <= ids


@pytest.mark.parametrize("case", cases("responses"))
def test_output_items_equal_vllms(encoding: Any, case: dict[str, Any]) -> None:
    request, generated = case["request"], case["generated"]
    parser = TurnParser(encoding, [tool.name for tool in tools_of(request)])
    for token in generated["token_ids"]:
        parser.feed(token)
    turn = parser.finish(cut=generated["finish_reason"] == "length")
    output = [item.model_dump(mode="json", by_alias=True) for item in turn.output]
    assert normalise(output) == case["non_streaming"]["body"]["output"]


@pytest.mark.parametrize(
    "case_id",
    ["responses.length_in_header", "responses.length_nothing_generated"],
)
async def test_a_cut_without_an_answer_is_asked_again(encoding: Any, case_id: str) -> None:
    """A cut inside a header leaves vLLM's raw header text as a message; that is no answer."""
    case = load(VERSION, "responses")[case_id]
    text = case["generated"]["text"]
    engine = FakeEngine(encoding, [Reply(harmony=text)], stop_token=False)
    model = embedded_model(engine, encoding, model="m", start_date=DATE)
    limit = len(case["generated"]["token_ids"])
    with pytest.raises(EmptyResponseError):  # asked again, as an empty answer is
        await model.get_response(
            None, "x", ModelSettings(max_tokens=max(limit, 1)), [], None, [],
            ModelTracing.DISABLED, previous_response_id=None, conversation_id=None, prompt=None,
        )  # fmt: skip
