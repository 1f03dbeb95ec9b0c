"""Eval files: defaults filled in, and every problem reported at once with `file:line:col`."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.config import Config, load_config
from agent_runtime.errors import ConfigError
from agent_runtime.evals import load_eval_file, parse_eval_file
from tests import helpers

CASSETTE = """\
- reasoning: Answer.
  final: Sunny in Tokyo.
"""


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(helpers.PROJECT / "agents.yaml")


def problems(text: str, config: Config | None = None, **options: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_eval_file(text, source="cases.yaml", config=config, **options)  # type: ignore[arg-type]
    return str(caught.value)


def test_defaults_come_from_the_top_of_the_file(tmp_path: Path, config: Config) -> None:
    (tmp_path / "tokyo.yaml").write_text(CASSETTE)
    path = tmp_path / "cases.yaml"
    path.write_text(
        "agent: weather-haiku\n"
        "repeat: 3\n"
        "pass_rate: 0.5\n"
        "cases:\n"
        "  - {name: a, input: hi, mock: tokyo.yaml}\n"
        "  - {name: b, input: hi, agent: toolbox, repeat: 1, pass_rate: 1,\n"
        "     expect: {output_contains: Tokyo, tool_calls: [{name: add}]}}\n"
    )
    loaded = load_eval_file(path, config=config)
    a, b = loaded.cases
    assert (a.id, a.agent, a.repeat, a.pass_rate) == (f"{path}::a", "weather-haiku", 3, 0.5)
    assert a.cassette == tmp_path / "tokyo.yaml"
    assert len(a.script) == 1
    assert (b.agent, b.repeat, b.pass_rate, b.cassette, b.script) == ("toolbox", 1, 1.0, None, ())
    assert b.expect.output_contains == ["Tokyo"]
    assert b.expect.tool_calls is not None
    assert b.expect.tool_calls[0].arguments is None


def test_schema_problems_are_placed_on_the_file() -> None:
    text = (
        "agent: weather-haiku\n"
        "repeats: 2\n"
        "cases:\n"
        "  - name: tokyo\n"
        "    input: 42\n"
        "    expect:\n"
        "      tool_call: []\n"
        "      output_matches: '(unclosed'\n"
        "      max_turns: 0\n"
        "  - input: hi\n"
        "    pass_rate: 2\n"
    )
    assert problems(text) == (
        "cases.yaml has 7 problems:\n"
        "  cases.yaml:2:1    repeats: unknown field. Did you mean `repeat`?\n"
        "  cases.yaml:5:12   cases[0].input: expected a string, got an integer"
        " (quote the value to keep it as text).\n"
        "  cases.yaml:7:7    cases[0].expect.tool_call: unknown field. Did you mean `tool_calls`?\n"
        "  cases.yaml:8:23   cases[0].expect.output_matches: not a valid regular expression:"
        " missing ), unterminated subpattern at position 0.\n"
        "  cases.yaml:9:18   cases[0].expect.max_turns: must be greater than 0, got 0.\n"
        "  cases.yaml:10:5   cases[1]: missing required field `name`.\n"
        "  cases.yaml:11:16  cases[1].pass_rate: must be at most 1, got 2.\n"
    ).rstrip("\n")


def test_agents_are_checked_against_agents_yaml(config: Config) -> None:
    text = (
        "cases:\n"
        "  - name: a\n"
        "    input: hi\n"
        "  - name: b\n"
        "    agent: wether-haiku\n"
        "    input: hi\n"
        "  - name: a\n"
        "    agent: triage\n"
        "    input: hi\n"
        "    expect: {handoffs: [toolbx], agent: nobody, output_schema: true}\n"
    )
    assert problems(text, config) == (
        "cases.yaml has 6 problems:\n"
        "  cases.yaml:2:5    cases[0]: no agent to run: give the case an `agent`, or the file"
        " one at its top (`agent: NAME`).\n"
        "  cases.yaml:5:12   cases[1].agent: unknown agent 'wether-haiku'."
        " Did you mean 'weather-haiku'?\n"
        "  cases.yaml:7:11   cases[2].name: duplicate case name 'a' (first at line 2).\n"
        "  cases.yaml:10:25  cases[2].expect.handoffs[0]: unknown agent 'toolbx'."
        " Did you mean 'toolbox'?\n"
        "  cases.yaml:10:41  cases[2].expect.agent: unknown agent 'nobody' (declared: "
        "'weather-haiku', 'toolbox', 'chat-haiku', 'triage', 'planner', 'extractor', 'patient').\n"
        "  cases.yaml:10:64  cases[2].expect.output_schema: the agent 'triage' declares no"
        " `output_schema`; give the JSON Schema the answer must fit here instead of `true`."
    )


def test_a_json_schema_given_must_be_valid() -> None:
    text = (
        "agent: extractor\n"
        "cases:\n"
        "  - name: a\n"
        "    input: hi\n"
        "    expect: {output_schema: {type: objekt}}\n"
    )
    assert problems(text).startswith(
        "cases.yaml:5:29: cases[0].expect.output_schema: not a valid JSON Schema: 'objekt' is not"
    )


def test_cassettes_must_exist_and_be_scripts(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("- {reasoning: x, final: y, colour: red}\n")
    text = (
        "agent: weather-haiku\n"
        "cases:\n"
        "  - {name: a, input: hi, mock: missing.yaml}\n"
        "  - {name: b, input: hi, mock: broken.yaml}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_eval_file(text, source="cases.yaml", base_dir=tmp_path)
    first, second = caught.value.problems
    assert str(first) == (
        f"cases.yaml:3:32: cases[0].mock: no cassette at {tmp_path / 'missing.yaml'}: record it"
        " with `agent-runtime eval --record` against a model server, or fix the path (it starts"
        " at the eval file's folder)."
    )
    assert str(second).startswith(
        "cases.yaml:4:32: cases[1].mock: cannot replay the cassette: "
        f"{tmp_path / 'broken.yaml'} is not a valid mock script"
    )
    assert "colour" in str(second)
    # Recording writes them: then they need not exist.
    loaded = parse_eval_file(text.replace("broken", "later"), base_dir=tmp_path, record=True)
    assert [case.cassette for case in loaded.cases] == [
        tmp_path / "missing.yaml",
        tmp_path / "later.yaml",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "",
            "cases.yaml: the file is empty; expected a mapping with `cases` (and `agent`).",
            id="empty",
        ),
        pytest.param(
            "- a\n",
            "cases.yaml:1:1: expected a mapping with `cases` (and `agent`), got a list.",
            id="list",
        ),
        pytest.param(
            "agent: x\n", "cases.yaml:1:1: missing required field `cases`.", id="no-cases"
        ),
        pytest.param(
            "cases: []\n",
            "cases.yaml:1:8: cases: List should have at least 1 item after validation, not 0.",
            id="no-case",
        ),
        pytest.param(
            "cases: {a: 1}\n",
            "cases.yaml:1:8: cases: expected a list of cases, got a mapping.",
            id="cases-mapping",
        ),
        pytest.param(
            "cases:\n  - tokyo\n",
            "cases.yaml:2:5: cases[0]: expected a mapping, got a string.",
            id="case-string",
        ),
        pytest.param(
            "cases: [\n",
            "cases.yaml:2:1: invalid YAML: expected the node content,"
            " but found '<stream end>' (while parsing a flow node).",
            id="yaml",
        ),
    ],
)
def test_documents_that_are_not_eval_files(text: str, message: str) -> None:
    assert problems(text) == message


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_eval_file(tmp_path / "nope.yaml")
    assert (
        str(caught.value) == f"{tmp_path / 'nope.yaml'}: cannot read {tmp_path / 'nope.yaml'}:"
        " No such file or directory"
    )
