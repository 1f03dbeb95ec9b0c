"""`run_evals`: cases replayed from cassettes, answered by the automatic test model or a
scripted server, checked, repeated; the report as JSON and JUnit XML."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agent_runtime.config import Config, load_config
from agent_runtime.evals import EvalReport, load_eval_file, run_evals
from agent_runtime.testing import MockVLLM, RecordedRequest, Reply, call, load_script
from tests import helpers

HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."

TOKYO_CASSETTE = f"""\
- request:
    user: ["What's the weather in Tokyo?"]
    function_calls: []
    tools: [get_weather]
  reasoning: Call get_weather.
  calls: [{{name: get_weather, arguments: {{city: Tokyo}}}}]
- request:
    user: ["What's the weather in Tokyo?"]
    function_calls: [{{name: get_weather, arguments: {{city: Tokyo}}}}]
    tools: [get_weather]
  reasoning: Sunny. Write it.
  final: {json.dumps(HAIKU)}
"""


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(helpers.PROJECT / "agents.yaml")


def eval_file(tmp_path: Path, text: str, *, cassette: str | None = TOKYO_CASSETTE) -> Path:
    if cassette is not None:
        (tmp_path / "tokyo.yaml").write_text(cassette)
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return path


async def run(path: Path, config: Config, **options: object) -> EvalReport:
    return await run_evals([path], config, trace_path=False, **options)  # type: ignore[arg-type]


async def test_a_cassette_replays_offline_and_the_case_passes(
    tmp_path: Path, config: Config
) -> None:
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        "cases:\n"
        "  - name: tokyo\n"
        "    input: What's the weather in Tokyo?\n"
        "    mock: tokyo.yaml\n"
        "    expect:\n"
        "      tool_calls: [{name: get_weather, arguments: {city: Tokyo}}]\n"
        "      output_contains: [Tokyo, light]\n"
        "      output_matches: '^Sun over'\n"
        "      max_turns: 2\n"
        "      agent: weather-haiku\n"
        "      handoffs: []\n",
    )
    report = await run(path, config)
    assert report.passed
    (case,) = report.cases
    (sample,) = case.samples
    assert (sample.outcome, sample.why, sample.turns, sample.final_output) == (
        "passed",
        None,
        2,
        HAIKU,
    )
    assert sample.tool_calls == (("get_weather", {"city": "Tokyo"}),)
    assert sample.tokens is not None
    assert sample.tokens > 0


@pytest.mark.parametrize(
    ("expect", "why"),
    [
        pytest.param(
            "{output_contains: [Tokyo, Paris]}",
            "output_contains: 'Paris' not in the answer 'Sun over Tokyo, twenty-one degrees of"
            " light, the city breathes warm.'",
            id="contains",
        ),
        pytest.param(
            "{output_matches: '\\d+ °C'}",
            "output_matches: /\\d+ °C/ does not match the answer 'Sun over Tokyo, twenty-one"
            " degrees of light, the city breathes warm.'",
            id="matches",
        ),
        pytest.param("{max_turns: 1}", "max_turns: the run took 2 turns, more than 1", id="turns"),
        pytest.param(
            "{agent: toolbox}",
            "agent: expected 'toolbox' to answer, but 'weather-haiku' did",
            id="agent",
        ),
        pytest.param(
            "{handoffs: [toolbox]}", "handoffs: expected ['toolbox'], got none", id="handoffs"
        ),
        pytest.param(
            "{tool_calls: [{name: get_weather, arguments: {city: Paris}}]}",
            "tool_calls: tool call 1 of 1, `get_weather`: ",
            id="tool-calls",
        ),
        pytest.param(
            "{output_schema: {type: object}}",
            "output_schema: the answer is not JSON: 'Sun over Tokyo, twenty-one degrees of"
            " light, the city breathes warm.'",
            id="schema",
        ),
    ],
)
async def test_a_failing_expectation_says_why_in_one_line(
    tmp_path: Path, config: Config, expect: str, why: str
) -> None:
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        "cases:\n"
        "  - name: tokyo\n"
        "    input: What's the weather in Tokyo?\n"
        "    mock: tokyo.yaml\n"
        f"    expect: {expect}\n",
    )
    report = await run(path, config)
    assert not report.passed
    (case,) = report.cases
    assert case.samples[0].outcome == "failed"
    assert case.why is not None
    assert case.why.startswith(why)
    assert "\n" not in case.why


async def test_a_run_that_leaves_its_cassette_fails_with_the_difference(
    tmp_path: Path, config: Config
) -> None:
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        "cases:\n"
        "  - name: paris\n"
        "    input: What's the weather in Paris?\n"
        "    mock: tokyo.yaml\n",
    )
    report = await run(path, config)
    (case,) = report.cases
    (sample,) = case.samples
    assert sample.outcome == "diverged"
    assert case.why is not None
    assert case.why.startswith("diverged from tokyo.yaml: ")
    assert "What's the weather in Tokyo?" in case.why
    assert "What's the weather in Paris?" in case.why


async def test_a_run_that_ends_before_its_cassette_does_diverges(
    tmp_path: Path, config: Config
) -> None:
    cassette = TOKYO_CASSETTE + "- reasoning: Never asked.\n  final: Unused.\n"
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        'cases: [{name: tokyo, input: "What\'s the weather in Tokyo?", mock: tokyo.yaml}]\n',
        cassette=cassette,
    )
    report = await run(path, config)
    assert report.cases[0].why == "diverged from tokyo.yaml: the run ended after 2 of its 3 replies"


async def test_mock_answers_cases_without_a_cassette_with_the_auto_model(
    tmp_path: Path, config: Config
) -> None:
    path = eval_file(
        tmp_path,
        "cases:\n"
        "  - name: haiku\n"
        "    agent: weather-haiku\n"
        "    input: What's the weather in Tokyo?\n"
        "    expect: {tool_calls: [{name: get_weather}], max_turns: 2}\n"
        "  - name: structured\n"
        "    agent: extractor\n"
        "    input: Tokyo, 21 degrees.\n"
        "    expect: {output_schema: true}\n"
        "  - name: schema-given\n"
        "    agent: extractor\n"
        "    input: Tokyo, 21 degrees.\n"
        "    expect:\n"
        "      output_schema: {type: object, required: [country]}\n",
        cassette=None,
    )
    report = await run(path, config, mock=True)
    haiku, structured, given = report.cases
    assert (haiku.passed, structured.passed, given.passed) == (True, True, False)
    assert haiku.samples[0].tool_calls[0][0] == "get_weather"
    assert isinstance(structured.samples[0].final_output, dict)
    assert given.why == "output_schema: the answer: 'country' is a required property"


def alternating() -> object:
    """A responder whose answers alternate: one that names Tokyo, one that does not."""
    count = itertools.count()

    def reply(request: RecordedRequest) -> Reply:
        good = next(count) % 2 == 0
        return Reply(reasoning="Answer.", final="Sunny in Tokyo." if good else "Sunny.")

    return reply


@pytest.mark.parametrize(
    ("pass_rate", "passed", "why"),
    [
        pytest.param(0.5, True, None, id="enough"),
        pytest.param(
            0.75,
            False,
            "2/4 runs passed, 75% needed; first failure: output_contains: 'Tokyo' not in the"
            " answer 'Sunny.'",
            id="too-few",
        ),
    ],
)
async def test_repeated_runs_pass_at_the_pass_rate(
    tmp_path: Path, config: Config, pass_rate: float, passed: bool, why: str | None
) -> None:
    path = eval_file(
        tmp_path,
        f"agent: weather-haiku\nrepeat: 4\npass_rate: {pass_rate}\n"
        "cases:\n"
        '  - {name: tokyo, input: "Weather?", expect: {output_contains: Tokyo}}\n',
        cassette=None,
    )
    with MockVLLM(default=alternating()) as server:  # type: ignore[arg-type]
        report = await run(path, config, base_url=server.url, concurrency=2)
    (case,) = report.cases
    assert (len(case.samples), case.passes, case.passed, case.why) == (4, 2, passed, why)
    assert len(server.model_requests) == 4


async def test_a_run_that_fails_is_an_error_and_the_others_go_on(
    tmp_path: Path, config: Config
) -> None:
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        "cases:\n"
        '  - {name: live, input: "Weather?"}\n'
        '  - {name: replayed, input: "What\'s the weather in Tokyo?", mock: tokyo.yaml}\n',
    )
    with MockVLLM() as server:  # an empty script: the model call gets a 501
        report = await run(path, config, base_url=server.url)
    live, replayed = report.cases
    assert live.samples[0].outcome == "error"
    assert live.why is not None
    assert live.why.startswith(f"the model server of backend `mock` at {server.url} answered 501")
    assert "no scripted reply left for model request 0" in live.why
    assert replayed.passed
    assert [case.case.name for case in report.failed] == ["live"]


async def test_select_runs_only_the_matching_cases(tmp_path: Path, config: Config) -> None:
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        "cases:\n"
        '  - {name: tokyo-rain, input: "What\'s the weather in Tokyo?", mock: tokyo.yaml}\n'
        "  - {name: paris, input: x, mock: tokyo.yaml}\n"
        '  - {name: tokyo-sun, input: "What\'s the weather in Tokyo?", mock: tokyo.yaml}\n',
    )
    report = await run(path, config, select="TOKYO")
    assert [case.case.name for case in report.cases] == ["tokyo-rain", "tokyo-sun"]
    report = await run(path, config, select="*-sun")
    assert [case.case.name for case in report.cases] == ["tokyo-sun"]


async def test_record_writes_the_cassette_that_then_replays(tmp_path: Path, config: Config) -> None:
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        "repeat: 3\n"
        "cases:\n"
        "  - name: tokyo\n"
        "    input: What's the weather in Tokyo?\n"
        "    mock: cassettes/tokyo.yaml\n"
        "    expect: {tool_calls: [{name: get_weather, arguments: {city: Tokyo}}]}\n",
        cassette=None,
    )
    upstream = [
        Reply(reasoning="Call get_weather.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Sunny. Write it.", final=HAIKU),
    ]
    with MockVLLM(upstream) as server:
        recorded = await run_evals(
            [load_eval_file(path, config=config, record=True)],
            config,
            base_url=server.url,
            record=True,
            trace_path=False,
        )
    assert recorded.passed
    assert len(recorded.cases[0].samples) == 1  # recorded once, whatever `repeat` says
    replies = load_script(tmp_path / "cassettes" / "tokyo.yaml")
    assert [reply.final for reply in replies] == [None, HAIKU]
    assert replies[1].request is not None
    replayed = await run(path, config)
    assert replayed.passed
    assert len(replayed.cases[0].samples) == 3


async def test_the_report_as_json_and_junit_xml(tmp_path: Path, config: Config) -> None:
    path = eval_file(
        tmp_path,
        "agent: weather-haiku\n"
        "cases:\n"
        '  - {name: good, input: "What\'s the weather in Tokyo?", mock: tokyo.yaml}\n'
        "  - name: bad\n"
        "    input: What's the weather in Tokyo?\n"
        "    mock: tokyo.yaml\n"
        "    expect: {output_contains: Paris}\n",
    )
    report = await run(path, config)
    document = json.loads(json.dumps(report.to_dict()))
    assert (document["passed"], document["cases_passed"], document["cases_failed"]) == (
        False,
        1,
        1,
    )
    good, bad = document["cases"]
    assert (good["name"], good["passed"], good["why"], good["runs"]) == ("good", True, None, 1)
    assert good["samples"][0]["tool_calls"] == [
        {"name": "get_weather", "arguments": {"city": "Tokyo"}}
    ]
    assert good["samples"][0]["final_output"] == HAIKU
    assert bad["why"].startswith("output_contains: 'Paris' not in the answer")

    root = ET.fromstring(report.junit_xml())
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    (suite,) = root
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (str(path), "2", "1")
    first, second = suite
    assert (first.get("name"), first.get("classname"), list(first)) == ("good", str(path), [])
    (failure,) = second
    assert failure.tag == "failure"
    assert failure.get("type") == "failed"
    assert failure.get("message") == bad["why"]
    assert failure.text == f"run 1: failed: {bad['why']}"
