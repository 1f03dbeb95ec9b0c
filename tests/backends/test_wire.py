"""What the runtime sends equals what the Agents SDK sends with the official client, on the wire.

Random transcripts, settings and tools go through the SDK's own models (`OpenAIResponsesModel`,
`OpenAIChatCompletionsModel` on an `AsyncOpenAI`) and through the runtime's, streaming and not,
to the mock server, which records each request as it arrived. The two bodies are JSON-equal and
as long; the headers are equal apart from those that must differ:

- `x-stainless-raw-response`: the SDK streams Responses through the official client's
  `with_streaming_response`, which says so in this header; the runtime streams with
  `create(stream=True)` (its client has no `with_streaming_response`, see `client.py`).

and, by design, one difference in the body:

- Chat Completions: an assistant message that carries reasoning and `content: null` is sent with
  `content: ""`, since vLLM drops the reasoning of a message whose content is null.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

import openai
import pytest
from agents import FunctionTool, ModelSettings, OpenAIChatCompletionsModel, OpenAIResponsesModel
from agents.models.interface import ModelTracing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI
from openai.types.responses import ResponseReasoningItem
from openai.types.shared import Reasoning

from agent_runtime.backends import chat_model_class, responses_model_class
from agent_runtime.testing import MockVLLM, RecordedRequest, Reply

MODEL = "openai/gpt-oss-20b"
MUST_DIFFER = {"x-stainless-raw-response"}
FAKE_ID = "__fake_id__"
LARGE = "東京 ☃ \u2028" * 20_000

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
ids = st.integers(min_value=0, max_value=2**32)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def items(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A transcript as the SDK's run loop keeps it: user, reasoning, calls, outputs, answers."""
    found: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(["user", "parts", "reasoning", "call", "assistant"]))
        n = draw(ids)
        if kind == "user":
            item: dict[str, Any] = {"role": "user", "content": draw(text)}
        elif kind == "parts":
            parts = draw(st.lists(text, min_size=1, max_size=3))
            item = {"role": "user", "content": [{"type": "input_text", "text": t} for t in parts]}
        elif kind == "reasoning":
            item = {
                "id": draw(st.sampled_from([f"rs_{n:016x}", FAKE_ID])),
                "summary": [],
                "type": "reasoning",
                "content": [{"type": "reasoning_text", "text": draw(text)}],
                "encrypted_content": None,
            }
        elif kind == "assistant":
            item = {
                "id": f"msg_{n:016x}",
                "content": [
                    {"annotations": [], "text": draw(text), "type": "output_text", "logprobs": []}
                ],
                "role": "assistant",
                "status": "completed",
                "type": "message",
            }
        else:
            arguments = json.dumps(draw(st.dictionaries(text, json_scalars, max_size=3)))
            found.append(
                {
                    "arguments": draw(st.sampled_from([arguments, draw(text)])),
                    "call_id": f"call_{n:016x}",
                    "name": draw(st.sampled_from(["get_weather", "add"])),
                    "type": "function_call",
                    "id": draw(st.sampled_from([f"fc_{n:016x}", FAKE_ID])),
                    "status": "completed",
                }
            )
            item = {
                "call_id": f"call_{n:016x}",
                "output": draw(text),
                "type": "function_call_output",
            }
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            item["provider_data"] = draw(st.sampled_from([{}, {"model": "other"}]))
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            item[draw(st.sampled_from(["x_note", "metadata"]))] = draw(json_values)
        found.append(item)
    return found


model_settings = st.builds(
    ModelSettings,
    temperature=_maybe(st.floats(min_value=0, max_value=2)),
    top_p=_maybe(st.floats(min_value=0, max_value=1)),
    max_tokens=_maybe(st.integers(min_value=1, max_value=4096)),
    reasoning=_maybe(st.builds(Reasoning, effort=st.sampled_from(["low", "medium", "high"]))),
    parallel_tool_calls=_maybe(st.booleans()),
    truncation=_maybe(st.sampled_from(["auto", "disabled"])),
    include_usage=_maybe(st.booleans()),
    extra_body=_maybe(st.dictionaries(st.sampled_from(["top_k", "min_p", "x"]), json_values)),
    extra_headers=_maybe(
        st.dictionaries(
            st.sampled_from(["X-Trace", "X-Team"]), st.text("abcdefgh0123456789-", max_size=8)
        )
    ),
)


async def _ignore(context: Any, arguments: str) -> str:
    return ""


tools = st.lists(
    st.builds(
        FunctionTool,
        name=st.sampled_from(["get_weather", "add", "lookup"]),
        description=text,
        params_json_schema=st.just(
            {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "東京 or Zürich"}},
                "required": ["city"],
                "additionalProperties": False,
            }
        ),
        on_invoke_tool=st.just(_ignore),
        strict_json_schema=st.booleans(),
    ),
    max_size=2,
    unique_by=lambda tool: tool.name,
)


@pytest.fixture(scope="module")
def mock() -> Iterator[MockVLLM]:
    with MockVLLM(default=Reply(reasoning="r", final="ok")) as server:
        yield server


async def _send(mock: MockVLLM, model: Any, arguments: dict[str, Any], stream: bool) -> Any:
    """The request `model` made (None if it raised before sending), and what it raised (the
    runtime judges some answers differently, e.g. retries an empty one: only errors raised
    before sending are compared)."""
    before = len(mock.requests)
    raised: str | None = None
    try:
        if stream:
            async for _ in model.stream_response(**arguments):
                pass
        else:
            await model.get_response(**arguments)
    except openai.APIStatusError:
        pass  # refused by the mock, as by vLLM: the request was recorded all the same
    except Exception as exc:
        raised = f"{type(exc).__name__}: {exc}"
    sent = list(mock.requests)[before:]
    assert len(sent) <= 1
    return (sent[0] if sent else None), raised


def _headers(request: RecordedRequest) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k not in MUST_DIFFER}


async def _compare(
    mock: MockVLLM, sdk: Any, ours: Any, arguments: dict[str, Any], stream: bool
) -> tuple[Any, Any]:
    expected, expected_error = await _send(mock, sdk, arguments, stream)
    got, error = await _send(mock, ours, arguments, stream)
    assert (got is None) == (expected is None)
    if got is None:  # refused before sending: for the same reason
        assert error == expected_error
        return None, None
    assert _headers(got) == _headers(expected)
    return got, expected


def _arguments(data: st.DataObject, transcript: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "system_instructions": data.draw(_maybe(text)),
        "input": data.draw(st.sampled_from([transcript, "What's the weather in Tokyo?"])),
        "model_settings": data.draw(model_settings),
        "tools": data.draw(tools),
        "output_schema": None,
        "handoffs": [],
        "tracing": ModelTracing.DISABLED,
    }


PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(transcript=items(), stream=st.booleans(), data=st.data())
async def test_responses_requests_equal_the_sdks(
    mock: MockVLLM, transcript: list[dict[str, Any]], stream: bool, data: st.DataObject
) -> None:
    async with AsyncOpenAI(base_url=mock.url, api_key="sk-test", max_retries=0) as client:
        sdk = OpenAIResponsesModel(model=MODEL, openai_client=client)
        ours = responses_model_class()(model=MODEL, openai_client=client)
        arguments = _arguments(data, transcript)
        got, expected = await _compare(mock, sdk, ours, arguments, stream)
    if got is not None:
        assert got.json == expected.json
        assert len(got.body) == len(expected.body)


@PROPERTY
@given(transcript=items(), stream=st.booleans(), data=st.data())
async def test_chat_requests_equal_the_sdks(
    mock: MockVLLM, transcript: list[dict[str, Any]], stream: bool, data: st.DataObject
) -> None:
    replay = data.draw(st.sampled_from([None, lambda _context: True]))
    async with AsyncOpenAI(base_url=mock.url, api_key="sk-test", max_retries=0) as client:
        sdk = OpenAIChatCompletionsModel(
            model=MODEL, openai_client=client, should_replay_reasoning_content=replay
        )
        ours = chat_model_class()(
            model=MODEL, openai_client=client, should_replay_reasoning_content=replay
        )
        arguments = _arguments(data, transcript)
        got, expected = await _compare(mock, sdk, ours, arguments, stream)
    if got is None:
        return
    wanted = dict(expected.json)
    wanted["messages"] = [
        {**message, "content": ""}
        if message.get("role") == "assistant"
        and message.get("content", "") is None
        and (message.get("reasoning") or message.get("reasoning_content"))
        else message
        for message in expected.json["messages"]
    ]
    assert got.json == wanted
    if wanted == expected.json:
        assert len(got.body) == len(expected.body)


class ItemsMapping(Mapping[str, Any]):
    """A read-only mapping that is not a dict (the SDK converts it; it is not plain JSON)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


EXAMPLES = [
    pytest.param("What's the weather in Tokyo?", id="string"),
    pytest.param(
        [
            {"role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": LARGE},
        ],
        id="large-unicode-output",
    ),
    pytest.param(
        [
            {"role": "user", "content": "hi"},
            {"id": FAKE_ID, "type": "reasoning", "summary": [], "content": []},
            {"type": "reasoning", "summary": [], "provider_data": {"model": "other"}},
            {
                "id": "fc_1",
                "type": "function_call",
                "call_id": "c1",
                "name": "f",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "c1", "output": "x", "provider_data": {}},
        ],
        id="provider-data-and-placeholder-ids",
    ),
    pytest.param(
        [{"role": "user", "content": "hi", "provider_data": None}, {"id": "m", "role": "user"}],
        id="falsy-provider-data",
    ),
    pytest.param(
        [{"role": "user", "content": ({"type": "input_text", "text": "a tuple"},)}],
        id="nested-tuple",
    ),
    pytest.param(
        [ItemsMapping({"role": "user", "content": "a mapping"})],
        id="mapping-item",
    ),
    pytest.param(
        [{"role": "user", "content": [ItemsMapping({"type": "input_text", "text": "nested"})]}],
        id="nested-mapping",
    ),
    pytest.param(
        [
            {"role": "user", "content": "hi"},
            ResponseReasoningItem(id="rs_1", summary=[], type="reasoning"),
        ],
        id="typed-item",
    ),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("transcript", EXAMPLES)
async def test_responses_examples_equal_the_sdks(
    mock: MockVLLM, transcript: list[Any], stream: bool
) -> None:
    """Inputs the property above does not make: values that are not plain JSON, typed items,
    large outputs."""
    async with AsyncOpenAI(base_url=mock.url, api_key="sk-test", max_retries=0) as client:
        sdk = OpenAIResponsesModel(model=MODEL, openai_client=client)
        ours = responses_model_class()(model=MODEL, openai_client=client)
        arguments = {
            "system_instructions": "You only respond in haikus.",
            "input": copy.deepcopy(transcript),
            "model_settings": ModelSettings(reasoning=Reasoning(effort="low")),
            "tools": [],
            "output_schema": None,
            "handoffs": [],
            "tracing": ModelTracing.DISABLED,
        }
        got, expected = await _compare(mock, sdk, ours, arguments, stream)
    assert got.json == expected.json
    assert len(got.body) == len(expected.body)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_value_json_cannot_hold_fails_alike(mock: MockVLLM, stream: bool) -> None:
    transcript = [{"role": "user", "content": "hi", "score": float("nan")}]
    async with AsyncOpenAI(base_url=mock.url, api_key="sk-test", max_retries=0) as client:
        sdk = OpenAIResponsesModel(model=MODEL, openai_client=client)
        ours = responses_model_class()(model=MODEL, openai_client=client)
        arguments = {
            "system_instructions": None,
            "input": transcript,
            "model_settings": ModelSettings(),
            "tools": [],
            "output_schema": None,
            "handoffs": [],
            "tracing": ModelTracing.DISABLED,
        }
        expected = await _send(mock, sdk, arguments, stream)
        got = await _send(mock, ours, arguments, stream)
    assert got == expected == (None, "ValueError: Out of range float values are not JSON compliant")
