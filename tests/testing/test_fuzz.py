"""The mock never crashes: random bodies always get a well-formed answer (hypothesis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime.testing import VLLM_0_22, VLLM_0_33, MockVLLM, Reply, call

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
ITEM_TYPES = st.sampled_from(
    [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "item_reference",
        "web_search_call",
    ]
)
ITEM = st.fixed_dictionaries(
    {"type": ITEM_TYPES},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "x"]),
        "content": JSON
        | st.lists(st.fixed_dictionaries({"type": st.text(max_size=12), "text": JSON})),
        "call_id": st.sampled_from(["c1", "c2"]) | JSON,
        "name": st.sampled_from(["get_weather", ""]) | JSON,
        "arguments": st.text(max_size=10) | JSON,
        "output": st.text(max_size=10) | JSON,
        "id": JSON,
        "summary": JSON,
    },
)
TOOL = st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "mcp", "file_search", "code_interpreter", "bogus"])},
    optional={
        "name": st.sampled_from(["get_weather", "f"]) | JSON,
        "description": st.text(max_size=6) | JSON,
        "parameters": JSON,
    },
)
RESPONSES_BODY = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["openai/gpt-oss-20b", "other", ""]) | JSON,
        "input": st.text(max_size=10) | st.lists(ITEM, max_size=5) | JSON,
        "instructions": st.text(max_size=10) | JSON,
        "tools": st.lists(TOOL, max_size=3) | JSON,
        "tool_choice": st.sampled_from(["auto", "none", "required"]) | JSON,
        "reasoning": st.fixed_dictionaries(
            {}, optional={"effort": st.sampled_from(["low", "high", "none", "max"]) | JSON}
        )
        | JSON,
        "stream": st.booleans() | JSON,
        "max_output_tokens": st.integers(min_value=-5, max_value=50) | JSON,
        "include": st.lists(st.sampled_from(["reasoning.encrypted_content", "x"])) | JSON,
        "previous_response_id": st.none() | st.text(max_size=4),
        "background": st.booleans(),
        "store": st.booleans(),
    },
)
CHAT_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "bad"]) | JSON},
    optional={
        "content": JSON,
        "reasoning": JSON,
        "tool_call_id": JSON,
        "tool_calls": st.lists(
            st.fixed_dictionaries({"id": JSON, "type": st.just("function"), "function": JSON}),
            max_size=2,
        )
        | JSON,
    },
)
CHAT_BODY = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["openai/gpt-oss-20b", "other"]) | JSON,
        "messages": st.lists(CHAT_MESSAGE, max_size=4) | JSON,
        "tools": st.lists(
            st.fixed_dictionaries({"type": st.just("function"), "function": JSON}), max_size=2
        )
        | JSON,
        "tool_choice": JSON,
        "reasoning_effort": st.sampled_from(["low", "none", "minimal", "bogus"]) | JSON,
        "stream": st.booleans() | JSON,
        "stream_options": JSON,
        "max_tokens": st.integers(min_value=-5, max_value=50) | JSON,
        "include_reasoning": JSON,
        "parallel_tool_calls": JSON,
    },
)
REPLIES = [
    Reply(reasoning="r", calls=[call("get_weather", city="x")]),
    Reply(reasoning="r", preamble="p", final="f"),
    Reply(harmony="<|channel|>final<|message|>hi<|return|>"),
]
ALLOWED_STATUSES = {200, 400, 404, 500, 501}


@pytest.fixture(scope="module", params=[VLLM_0_33, VLLM_0_22], ids=["0.33", "0.22"])
def mock(request: pytest.FixtureRequest) -> Iterator[MockVLLM]:
    with MockVLLM(
        default=lambda record: REPLIES[record.index % 3], harmony=True, profile=request.param
    ) as server:
        yield server


@pytest.fixture(scope="module")
def client(mock: MockVLLM) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=mock.url, timeout=10) as http:
        yield http


def check(mock: MockVLLM, response: httpx2.Response) -> None:
    assert response.status_code in ALLOWED_STATUSES, response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == response.status_code
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert response.text.startswith(("event: ", "data: "))
    else:
        assert isinstance(response.json(), dict)
    assert mock.internal_errors == []


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=RESPONSES_BODY)
def test_random_responses_bodies(mock: MockVLLM, client: httpx2.Client, body: Any) -> None:
    check(mock, client.post("/responses", json=body))


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=CHAT_BODY)
def test_random_chat_bodies(mock: MockVLLM, client: httpx2.Client, body: Any) -> None:
    check(mock, client.post("/chat/completions", json=body))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()),
    path=st.sampled_from(["/responses", "/chat/completions"]),
    content_type=st.sampled_from(["application/json", "text/plain", "application/json; x=1"]),
)
def test_random_bytes(
    mock: MockVLLM, client: httpx2.Client, raw: bytes, path: str, content_type: str
) -> None:
    check(mock, client.post(path, content=raw, headers={"content-type": content_type}))
