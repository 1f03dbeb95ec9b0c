"""Cassettes: the `request:` key of script entries, divergences on replay, the YAML files, and
cassettes made from a run's trace records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai import BadRequestError, OpenAI

from agent_runtime import Runtime
from agent_runtime.testing import (
    Call,
    ExpectedRequest,
    MockVLLM,
    Reply,
    ScriptError,
    call,
    load_script,
    parse_script,
    save_cassette,
    script_from_records,
)
from agent_runtime.testing.cassette import (
    dump_cassette,
    entry_from_answer,
    entry_from_chat,
    entry_from_output,
    entry_from_stream,
)

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def history(city: str) -> list[dict[str, Any]]:
    """A Responses input: the question, the model's call of get_weather, its result."""
    return [
        {"role": "user", "content": "Weather in Tokyo?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": json.dumps({"city": city}),
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]


EXPECTED = ExpectedRequest(
    user=("Weather in Tokyo?",),
    function_calls=(Call("get_weather", {"city": "Tokyo"}),),
    tools=("get_weather",),
)


# -- the `request:` key ------------------------------------------------------------------------


def test_a_script_entry_may_say_what_its_call_asks() -> None:
    document = [
        {
            "request": {
                "user": ["Weather in Tokyo?"],
                "function_calls": [{"name": "get_weather", "arguments": {"city": "Tokyo"}}],
                "tools": ["get_weather"],
            },
            "final": "Sunny.",
        },
        {"request": {"tools": []}, "final": "Bye."},
    ]
    first, second = parse_script(document)
    assert first == Reply(final="Sunny.", request=EXPECTED)
    assert second.request == ExpectedRequest(tools=())


def test_a_bad_request_key_is_reported_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- request: {user: Tokyo, tool: [a]}\n  final: x\n")
    with pytest.raises(ScriptError) as error:
        load_script(path)
    assert str(error.value) == (
        f"{path} is not a valid mock script (2 problems):\n"
        f"  {path}: reply[0].request.user: Input should be a valid list\n"
        f"  {path}: reply[0].request.tool: Extra inputs are not permitted"
    )


def test_a_request_that_matches_is_answered() -> None:
    with MockVLLM([Reply(final="Sunny in Tokyo.", request=EXPECTED)]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0)
        # Spacing and key order of the arguments do not matter; ids and outputs are not compared.
        items = history("Tokyo")
        items[1]["arguments"] = '{ "city" :  "Tokyo" }'
        items[2]["output"] = "rainy"
        response = client.responses.create(model=mock.model, input=items, tools=TOOLS)  # type: ignore[arg-type]
    assert response.output_text == "Sunny in Tokyo."
    assert mock.divergences == []
    mock.assert_no_divergence()


def test_a_call_with_other_arguments_fails_with_a_readable_difference() -> None:
    with MockVLLM([Reply(final="Sunny in Tokyo.", request=EXPECTED)]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(BadRequestError) as error:
            client.responses.create(model=mock.model, input=history("Paris"), tools=TOOLS)  # type: ignore[arg-type]
    difference = (
        "model request 0 (script entry 0), POST /v1/responses, differs from the script:\n"
        '  function call 0 `get_weather` in the history has other arguments: `city` is "Paris", '
        'expected "Tokyo"'
    )
    assert mock.divergences == [difference]
    assert error.value.status_code == 400
    assert error.value.body == {
        "message": difference,
        "type": "ScriptDivergenceError",
        "param": None,
        "code": 400,
    }
    with pytest.raises(AssertionError) as failure:
        mock.assert_no_divergence()
    assert (
        str(failure.value) == "mock script: 1 model call differed from the script:\n" + difference
    )


def test_every_difference_is_shown() -> None:
    other_tools = [{**TOOLS[0], "name": "get_forecast"}, {**TOOLS[0], "name": "get_weather"}]
    items = history("Tokyo")
    items[0]["content"] = "Weather in Paris?"
    items[1]["name"] = "get_forecast"
    items += [
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c2", "output": "x"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    with MockVLLM([Reply(final="Sunny.", request=EXPECTED)]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(BadRequestError):
            client.responses.create(model=mock.model, input=items, tools=other_tools)  # type: ignore[arg-type]
    assert mock.divergences == [
        "model request 0 (script entry 0), POST /v1/responses, differs from the script:\n"
        "  user message 0 differs:\n"
        "      expected 'Weather in Tokyo?'\n"
        "      got      'Weather in Paris?'\n"
        "  user message 1 is new: 'And tomorrow?'\n"
        "  function call 0 in the history calls `get_forecast`, expected `get_weather` "
        '(same arguments {"city": "Tokyo"})\n'
        "  function call 1 `get_weather` in the history is new (arguments {})\n"
        "  tools offered differ (new `get_forecast`): expected [get_weather], "
        "got [get_forecast, get_weather]"
    ]


def test_missing_calls_and_tools_are_named() -> None:
    with MockVLLM([Reply(final="Sunny.", request=EXPECTED)]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(BadRequestError):
            client.responses.create(model=mock.model, input="Weather in Tokyo?")
    assert mock.divergences == [
        "model request 0 (script entry 0), POST /v1/responses, differs from the script:\n"
        '  function call 0 `get_weather` is missing from the history (expected arguments {"city": '
        '"Tokyo"})\n'
        "  tools offered differ (missing `get_weather`): expected [get_weather], got []"
    ]


def test_a_long_text_shows_where_it_changed() -> None:
    prompt = "Context. " * 100 + "Weather in Tokyo? " + "More. " * 100
    changed = prompt.replace("Tokyo", "Paris")
    first = prompt.index("Tokyo")
    with MockVLLM([Reply(final="Hi.", request=ExpectedRequest(user=(prompt,)))]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0)
        with pytest.raises(BadRequestError):
            client.responses.create(model=mock.model, input=changed)
    shown = slice(first - 40, first + 110)
    assert mock.divergences == [
        "model request 0 (script entry 0), POST /v1/responses, differs from the script:\n"
        f"  user message 0 differs from character {first}:\n"
        f"      expected …{prompt[shown]!r}…\n"
        f"      got      …{changed[shown]!r}…"
    ]


def test_parts_left_out_are_not_compared() -> None:
    with MockVLLM([Reply(final="Hi.", request=ExpectedRequest(tools=()))]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY", max_retries=0)
        response = client.responses.create(model=mock.model, input="Anything at all")
    assert response.output_text == "Hi."
    mock.assert_no_divergence()


# -- answers into entries ----------------------------------------------------------------------


def test_output_items_become_a_reply() -> None:
    output = [
        {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "Think."}]},
        {"type": "message", "content": [{"type": "output_text", "text": "Let me look."}]},
        {"type": "function_call", "name": "f", "arguments": '{"a": 1}', "call_id": "c"},
        {"type": "function_call", "name": "g", "arguments": '{"broken', "call_id": "d"},
    ]
    assert entry_from_output(output) == {
        "reasoning": "Think.",
        "preamble": "Let me look.",
        "calls": [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": '{"broken'}],
    }
    assert entry_from_output([], incomplete=True) == {"fault": {"empty_incomplete": True}}
    final = [{"type": "message", "content": [{"type": "output_text", "text": "Cut"}]}]
    assert entry_from_output(final, incomplete=True) == {"final": "Cut", "incomplete": True}


def test_chat_answers_become_a_reply() -> None:
    completion = {
        "choices": [
            {
                "finish_reason": "tool_calls",
                "message": {
                    "content": None,
                    "reasoning": "Call it.",
                    "tool_calls": [
                        {"function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
                    ],
                },
            }
        ]
    }
    assert entry_from_chat(completion) == {
        "reasoning": "Call it.",
        "calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
    }
    broken = b'data: {"choices": [{"delta": {"content": "Hal"}, "finish_reason": null}]}\n\n'
    assert entry_from_stream("chat_completions", broken) is None
    assert entry_from_stream("responses", b"event: response.created\ndata: {}\n\n") is None


@pytest.mark.parametrize(
    ("status", "body", "entry"),
    [
        pytest.param(
            503,
            b'{"error": {"message": "engine restarting", "code": 503}}',
            {"fault": {"status": 503, "message": "engine restarting"}},
            id="vllm",
        ),
        pytest.param(
            404,
            b'{"detail": "Not Found"}',
            {"fault": {"status": 404, "message": "Not Found"}},
            id="fastapi",
        ),
        pytest.param(
            502, b"Bad gateway\n", {"fault": {"status": 502, "message": "Bad gateway"}}, id="text"
        ),
        pytest.param(500, b"", {"fault": {"status": 500}}, id="empty"),
    ],
)
def test_error_answers_become_faults(status: int, body: bytes, entry: dict[str, Any]) -> None:
    assert entry_from_answer("responses", status, "application/json", body) == entry


def test_an_answer_that_is_not_json_cannot_be_recorded() -> None:
    with pytest.raises(ValueError, match=r"^the answer is not JSON$"):
        entry_from_answer("responses", 200, "application/json", b"<html>")
    with pytest.raises(ValueError, match=r"^the answer is not a JSON object$"):
        entry_from_answer("chat_completions", 200, "application/json", b"[]")


def test_a_cassette_is_readable_yaml_that_loads_back(tmp_path: Path) -> None:
    entries = [
        {
            "request": {"user": ["Haiku?"], "function_calls": [], "tools": []},
            "reasoning": "Write three lines.\nKeep it short.",
            "final": "Old pond\nfrog jumps in\nsplash",
        }
    ]
    path = save_cassette(entries, tmp_path / "haiku.yaml")
    text = path.read_text()
    assert text.endswith(
        "- request:\n"
        "    user:\n"
        "    - Haiku?\n"
        "    function_calls: []\n"
        "    tools: []\n"
        "  reasoning: |-\n"
        "    Write three lines.\n"
        "    Keep it short.\n"
        "  final: |-\n"
        "    Old pond\n"
        "    frog jumps in\n"
        "    splash\n"
    )
    assert text.startswith("# A cassette of agent-runtime")
    assert yaml.safe_load(text) == entries
    assert load_script(path) == [
        Reply(
            reasoning="Write three lines.\nKeep it short.",
            final="Old pond\nfrog jumps in\nsplash",
            request=ExpectedRequest(user=("Haiku?",), function_calls=(), tools=()),
        )
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["haiku.yaml"]  # no temporary file left


def test_texts_that_cannot_be_block_scalars_stay_exact() -> None:
    texts = ["trailing space \nnext", "\ttab first\n", "", "colon: and # hash", "line\n\n\n"]
    document = yaml.safe_load(dump_cassette([{"final": t} for t in texts]))
    assert [entry["final"] for entry in document] == texts


def test_short_lists_and_mappings_are_written_on_one_line_and_read_back_the_same() -> None:
    arguments = {"city": "Tokyo", "days": 3, "metric": True, "note": None}
    tricky = ["3", "true", "null", "a, b", "x: y", "", " padded", "it's", "[1]", "~"]
    entries = [
        {"calls": [{"name": "f", "arguments": arguments}], "request": {"tools": ["f", "g"]}},
        {"calls": [{"name": "g", "arguments": {"values": tricky}}]},
        {"fault": {"status": 503, "message": "engine restarting"}},
    ]
    text = dump_cassette(entries)
    assert "    arguments: {city: Tokyo, days: 3, metric: true, note: null}\n" in text
    assert "    tools: [f, g]\n" in text
    assert "- fault: {status: 503, message: engine restarting}\n" in text
    assert yaml.safe_load(text) == entries


# -- cassettes from a run's trace ----------------------------------------------------------------

WEATHER_TOOL = '''
def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return f"sunny in {city}"


def get_time(city: str) -> str:
    """The local time in a city.

    Args:
        city: The city name.
    """
    return "noon"
'''


def write_project(tmp_path: Path, *, api: str = "responses", tools: str = WEATHER_TOOL) -> Path:
    """agents.yaml with a `weather` agent; its `tools` in a module named after the folder (a
    module name is imported once per process)."""
    module = "cassette_tools_" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    (tmp_path / f"{module}.py").write_text(tools)
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends:\n"
        f"  mock: {{base_url: '${{MOCK_URL}}', model: openai/gpt-oss-20b, max_retries: 0, "
        f"api: {api}}}\n"
        "tools:\n"
        f"  get_weather: {{function: '{module}:get_weather'}}\n"
        f"  get_time: {{function: '{module}:get_time'}}\n"
        "agents:\n"
        "  weather: {backend: mock, tools: [get_weather], instructions: Answer in haiku.}\n"
        f"tracing: {{path: {tmp_path}/trace.jsonl, include_sensitive_data: true}}\n"
    )
    return config


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return write_project(tmp_path)


SCRIPT = [
    Reply(reasoning="Look it up.", calls=[call("get_weather", city="Tokyo")]),
    Reply(reasoning="It is sunny.\nWrite the haiku.", final="Sun on Tokyo\nstreets"),
]


async def test_a_script_from_a_runs_trace_replays_the_run(project: Path) -> None:
    records: list[Mapping[str, Any]] = []
    async with (
        MockVLLM(SCRIPT) as mock,
        Runtime.from_yaml(project, environ={"MOCK_URL": mock.url}) as runtime,
    ):
        runtime.observe(records.append)
        first = await runtime.run("weather", "Weather in Tokyo?")
    entries = script_from_records(records)
    lines = (project.parent / "trace.jsonl").read_text().splitlines()
    assert script_from_records(json.loads(line) for line in lines) == entries
    assert entries == [
        {
            "reasoning": "Look it up.",
            "calls": [{"name": "get_weather", "arguments": {"city": "Tokyo"}}],
        },
        {"reasoning": "It is sunny.\nWrite the haiku.", "final": "Sun on Tokyo\nstreets"},
    ]
    path = save_cassette(entries, project.parent / "run.yaml")
    async with (
        MockVLLM(path) as replay,
        Runtime.from_yaml(project, environ={"MOCK_URL": replay.url}) as runtime,
    ):
        again = await runtime.run("weather", "Weather in Tokyo?")
    assert again.final_output == first.final_output == "Sun on Tokyo\nstreets"
    replay.assert_script_consumed()
    assert replay.model_requests[1].function_outputs[0].output == "sunny in Tokyo"


def test_a_trace_without_texts_cannot_make_a_script() -> None:
    records = [{"type": "run_start"}, {"type": "model_call", "agent": "weather", "output": None}]
    with pytest.raises(ValueError) as error:
        script_from_records(records)
    assert str(error.value) == (
        "trace record 1 (model_call of agent 'weather') has no `output`: the run was traced "
        "without its texts. Set `tracing: {include_sensitive_data: true}` in agents.yaml and run "
        "it again."
    )
