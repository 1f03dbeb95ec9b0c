"""agents.yaml as YAML: positions, duplicate keys, tags, anchors and aliases, and `${VAR}` /
`${VAR:-default}` interpolation (`agent_runtime.config.document`)."""

from __future__ import annotations

from typing import Literal

import pytest

from agent_runtime.config.document import Document, Loc, Position, compose, format_loc, interpolate
from agent_runtime.errors import ConfigProblem
from tests.config.helpers import BACKEND, PROJECT, error, parse


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        pytest.param("${NAME}", {"NAME": "x y"}, "x y", id="set"),
        pytest.param("${NAME}", {"NAME": ""}, "", id="set-empty"),
        pytest.param("${NAME:-dflt}", {}, "dflt", id="default-unset"),
        pytest.param("${NAME:-dflt}", {"NAME": ""}, "dflt", id="default-empty"),
        pytest.param("${NAME:-dflt}", {"NAME": "v"}, "v", id="default-set"),
        pytest.param("${NAME:-}", {}, "", id="empty-default"),
        pytest.param("${NAME:-a:-b}", {}, "a:-b", id="default-with-colon-dash"),
        pytest.param("http://${H}:${P:-8000}/v1", {"H": "gpu"}, "http://gpu:8000/v1", id="inside"),
        pytest.param("$${NAME}", {"NAME": "v"}, "${NAME}", id="escaped"),
        pytest.param("$$${NAME}", {"NAME": "v"}, "$${NAME}", id="dollar-then-escape"),
        pytest.param("costs $5 or $NAME", {}, "costs $5 or $NAME", id="plain-dollars"),
        pytest.param("'${NAME}'", {"NAME": "v"}, "v", id="quoted-scalar"),
    ],
)
def test_interpolation(value: str, environ: dict[str, str], expected: str) -> None:
    config = parse(
        f"""\
        version: 1
        backends: {{local: {{base_url: "http://x/v1", model: m}}}}
        agents:
          a:
            description: {value}
        """,
        environ=environ,
    )
    assert config.spec.agents["a"].description == expected


def test_interpolated_values_are_typed_by_their_field() -> None:
    config = parse(
        """\
        version: 1
        defaults: {max_turns: "${TURNS}", tool_timeout_s: "${T:-2.5}"}
        backends:
          local: {base_url: "http://x/v1", model: m, max_retries: "${RETRIES:-5}"}
        agents:
          a: {model_settings: {parallel_tool_calls: "${PAR}", extra_body: {n: "${N:-3}"}}}
        """,
        environ={"TURNS": "7", "PAR": "false"},
    )
    assert config.spec.defaults.max_turns == 7
    assert config.spec.defaults.tool_timeout_s == 2.5
    assert config.spec.backends["local"].max_retries == 5
    assert config.spec.agents["a"].model_settings.parallel_tool_calls is False
    # Pass-through settings have no type to convert to: interpolated text stays text.
    assert config.spec.agents["a"].model_settings.extra_body == {"n": "3"}


ERRORS = [
    pytest.param(
        "version: 1\nbackends: [\n",
        "agents.yaml:3:1: invalid YAML: expected the node content, but found '<stream end>' "
        "(while parsing a flow node).",
        id="yaml-syntax",
    ),
    pytest.param(
        "version: 1\n  backends: {}\n",
        "agents.yaml:2:11: invalid YAML: mapping values are not allowed here.",
        id="yaml-indentation",
    ),
    pytest.param(
        "a: 1\n---\nb: 2\n",
        "agents.yaml:2:1: invalid YAML: expected a single document in the stream, "
        "but found another document.",
        id="two-documents",
    ),
    pytest.param(
        "version: 1\nname: a\x00b\n",
        "agents.yaml:2:8: invalid YAML: special characters are not allowed (character #x0000).",
        id="control-character",
    ),
    pytest.param(
        "version: 1\nbackends:\n  gpu box.1: {base_url: http://x/v1}\nagents: {a: {}}\n",
        "agents.yaml:3:3: backends['gpu box.1']: missing required field `model`.",
        id="odd-name-in-path",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    instructions: one\n"
        "    description: first\n"
        "    instructions: two\n",
        "agents.yaml:7:5: agents.a.instructions: duplicate key 'instructions' (first at line 5).",
        id="duplicate-key",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a: {{}}\n  a: {{}}\n",
        "agents.yaml:5:3: agents.a: duplicate key 'a' (first at line 4).",
        id="duplicate-agent",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  local:\n"
        "    base_url: ${VLLM_BASE_URL}\n"
        "    model: ${MODEL:-m}\n"
        "    timeout_s: ${TIMEOUT}\n"
        "agents:\n"
        "  a: {description: '${unclosed', instructions: '${1X}', model: '${A:-${B}}'}\n",
        "agents.yaml has 5 problems:\n"
        "  agents.yaml:4:15  backends.local.base_url: environment variable `VLLM_BASE_URL` is not "
        "set (use ${VLLM_BASE_URL:-default} for a default).\n"
        "  agents.yaml:6:16  backends.local.timeout_s: environment variable `TIMEOUT` is not set "
        "(use ${TIMEOUT:-default} for a default).\n"
        "  agents.yaml:8:20  agents.a.description: unclosed `${`: write ${NAME} or "
        "${NAME:-default}, or $${ for a literal ${.\n"
        "  agents.yaml:8:48  agents.a.instructions: invalid interpolation '${1X}': write ${NAME} "
        "or ${NAME:-default}, or $${ for a literal ${.\n"
        "  agents.yaml:8:64  agents.a.model: invalid interpolation '${A:-${B}': write ${NAME} or "
        "${NAME:-default}, or $${ for a literal ${.",
        id="interpolation",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a: {description: !custom x, max_turns: !!int ten, tools: &m [*m]}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:4:20  agents.a.description: unsupported YAML tag '!custom'.\n"
        "  agents.yaml:4:42  agents.a.max_turns: this value is not a valid !!int.\n"
        "  agents.yaml:4:60  agents.a.tools[0]: this alias refers to a value that contains it "
        "(a cycle).",
        id="yaml-tags-and-alias-cycles",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a: {description: !pick [x], instructions: <<, max_turns: 2026-11-22}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:4:20  agents.a.description: unsupported YAML tag '!pick'.\n"
        "  agents.yaml:4:60  agents.a.max_turns: expected an integer, got a value of type date.",
        id="collection-tag-and-dates",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a: {{[1]: x, <<: 5}}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:4:7   agents.a: a mapping key must be a plain string, not a list.\n"
        "  agents.yaml:4:19  agents.a: `<<` can only merge mappings (or a list of mappings) into "
        "this one.",
        id="odd-keys",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors(text: str, expected: str) -> None:
    assert error(text) == expected.replace("{base}", str(PROJECT))


def test_yaml_anchors_and_merge_keys() -> None:
    config = parse(
        f"""\
        version: 1
        {BACKEND}
        agents:
          base: &base
            instructions: Shared.
            model_settings: {{temperature: 0.1}}
          a:
            <<: *base
            model_settings: {{temperature: 0.9}}
          b:
            <<: [*base]
            tools: []
        """
    )
    assert config.spec.agents["a"].instructions == "Shared."
    assert config.spec.agents["a"].model_settings.temperature == 0.9
    assert config.spec.agents["b"].model_settings.temperature == 0.1


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    assert error("\n".join(lines)) == (
        "agents.yaml: the document has more than 100000 values once aliases are expanded."
    )


def test_the_first_of_several_merged_mappings_wins() -> None:
    config = parse(
        f"""\
        version: 1
        {BACKEND}
        agents:
          one: &one {{description: One., model: m1}}
          two: &two {{description: Two., model: m2, max_turns: 3}}
          a:
            <<: [*one, *two]
            model: own
        """
    )
    a = config.spec.agents["a"]
    assert (a.description, a.model, a.max_turns) == ("One.", "own", 3)


def test_deep_nesting_is_refused() -> None:
    assert error("a: " + "[" * 1000 + "]" * 1000 + "\n") == (
        "agents.yaml: the document is nested too deeply."
    )


def test_scalar_keys_are_names_as_written() -> None:
    config = parse(
        f"version: 1\n{BACKEND}\nagents: {{1: {{}}, true: {{}}, null: {{}}, 0x1F: {{}}}}\n"
    )
    assert list(config.spec.agents) == ["1", "true", "null", "0x1F"]


def _compose(text: str) -> Document:
    return compose(text, source="s.yaml", environ={}, is_secret=lambda loc: False)


def test_compose_remembers_where_each_key_and_value_is() -> None:
    document = _compose("version: 1\nagents:\n  a: {tools: [x, y]}\n  b:\n    - 1\n")
    assert document.data == {"version": 1, "agents": {"a": {"tools": ["x", "y"]}, "b": [1]}}
    assert document.keys == {
        ("version",): Position(1, 1),
        ("agents",): Position(2, 1),
        ("agents", "a"): Position(3, 3),
        ("agents", "a", "tools"): Position(3, 7),
        ("agents", "b"): Position(4, 3),
    }
    assert document.values == {
        (): Position(1, 1),
        ("version",): Position(1, 10),
        ("agents",): Position(3, 3),
        ("agents", "a"): Position(3, 6),
        ("agents", "a", "tools"): Position(3, 14),
        ("agents", "a", "tools", 0): Position(3, 15),
        ("agents", "a", "tools", 1): Position(3, 18),
        ("agents", "b"): Position(5, 5),
        ("agents", "b", 0): Position(5, 7),
    }
    assert document.problems == []


@pytest.mark.parametrize(
    ("loc", "at", "expected"),
    [
        pytest.param(("agents", "a", "tools"), "value", Position(3, 14), id="value"),
        pytest.param(("agents", "a", "tools"), "key", Position(3, 7), id="key"),
        pytest.param(("agents", "a", "tools", 1), "key", Position(3, 18), id="a-list-item-at-key"),
        pytest.param(("agents", "a", "model", "x"), "value", Position(3, 6), id="nearest-parent"),
        pytest.param(("agents", "c"), "key", Position(2, 1), id="missing-entry-at-parent-key"),
    ],
)
def test_position(loc: Loc, at: Literal["key", "value"], expected: Position) -> None:
    document = _compose("version: 1\nagents:\n  a: {tools: [x, y]}\n")
    assert document.position(loc, at=at) == expected


def test_an_empty_document_has_no_positions() -> None:
    document = _compose("# nothing\n")
    assert (document.data, document.position(()), document.position(("agents",))) == (
        None,
        None,
        None,
    )


def test_report_makes_a_sentence_at_the_place_or_without_one() -> None:
    document = _compose("agents: {a: x}\n")
    document.report(("agents", "a"), "not a mapping")
    empty = Document(source="other.yaml")
    empty.report(("agents", "a"), "no place known.")
    assert document.problems == [
        ConfigProblem(file="s.yaml", line=1, column=13, path="agents.a", message="not a mapping.")
    ]
    assert empty.problems == [
        ConfigProblem(
            file="other.yaml", line=None, column=None, path="agents.a", message="no place known."
        )
    ]


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        pytest.param((), "", id="the-document"),
        pytest.param(("agents", "weather-haiku", "tools", 0), "agents.weather-haiku.tools[0]"),
        pytest.param(("backends", "gpu box.1", "model"), "backends['gpu box.1'].model"),
        pytest.param(("a.b",), "['a.b']", id="odd-first-key"),
        pytest.param(("agents", ""), "agents['']", id="empty-key"),
        pytest.param(("agents", "it's"), 'agents["it\'s"]', id="quote-in-key"),
        pytest.param((0, "x"), "[0].x", id="list-first"),
    ],
)
def test_format_loc(loc: Loc, expected: str) -> None:
    assert format_loc(loc) == expected


def test_interpolate_reports_every_problem_and_keeps_the_text() -> None:
    assert interpolate("${1X} and ${A", {}, quote=True) == (
        "${1X} and ${A",
        [
            "invalid interpolation '${1X}': write ${NAME} or ${NAME:-default}, or $${ for a "
            "literal ${",
            "unclosed `${`: write ${NAME} or ${NAME:-default}, or $${ for a literal ${",
        ],
    )


def test_interpolate_without_quoting_does_not_show_the_text() -> None:
    assert interpolate("sk-secret${1X}", {}, quote=False) == (
        "sk-secret${1X}",
        ["invalid interpolation: write ${NAME} or ${NAME:-default}, or $${ for a literal ${"],
    )


def test_interpolated_values_are_not_interpolated_again() -> None:
    assert interpolate("${A}/${A:-d}", {"A": "${B}"}, quote=True) == ("${B}/${B}", [])
