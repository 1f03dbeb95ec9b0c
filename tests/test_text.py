"""The words messages share (`agent_runtime.text`): hints, kinds, quoted values, full stops."""

from __future__ import annotations

import pytest
import yaml

from agent_runtime.text import did_you_mean, kind_of, like_escaped, sentence, show, unknown

# --- sentence -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param("unknown field", "unknown field.", id="adds-a-full-stop"),
        pytest.param("unknown field.", "unknown field.", id="keeps-its-full-stop"),
        pytest.param(
            "unknown field. Did you mean `x`?", "unknown field. Did you mean `x`?", id="?"
        ),
        pytest.param("not now!", "not now!", id="!"),
        pytest.param("e.g. http://localhost:8000/v1", "e.g. http://localhost:8000/v1.", id="url"),
        pytest.param("(see above)", "(see above).", id="after-a-parenthesis"),
        pytest.param("", ".", id="empty"),
    ],
)
def test_sentence_ends_a_message_with_one_stop(message: str, expected: str) -> None:
    assert sentence(message) == expected


# --- did_you_mean -------------------------------------------------------------------------------


def test_did_you_mean_names_a_close_match_in_backticks() -> None:
    assert did_you_mean("temprature", ["top_p", "temperature"]) == ". Did you mean `temperature`?"


def test_did_you_mean_quotes_with_the_quote_given() -> None:
    assert did_you_mean("get_wether", ["get_weather"], quote="'") == ". Did you mean 'get_weather'?"


def test_did_you_mean_names_only_the_closest_of_several() -> None:
    choices = ["openai", "vllm-embedded", "vllm"]
    assert did_you_mean("vlm", choices, quote="'") == ". Did you mean 'vllm'?"


@pytest.mark.parametrize(
    ("value", "names"),
    [
        pytest.param("colour", ["description", "instructions", "tools"], id="far"),
        pytest.param("get_wether", [], id="no-names"),
        pytest.param(5, ["5", "15"], id="an-integer"),
        pytest.param(None, ["null", "none"], id="null"),
        pytest.param(["vllm"], ["vllm"], id="a-list"),
    ],
)
def test_did_you_mean_says_nothing_without_a_close_string(value: object, names: list[str]) -> None:
    assert did_you_mean(value, names) == ""


# --- kind_of ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        pytest.param("~", "null", id="null-tilde"),
        pytest.param("null", "null", id="null"),
        pytest.param("true", "a boolean", id="true"),
        pytest.param("off", "a boolean", id="off"),
        pytest.param("0", "an integer", id="zero"),
        pytest.param("-3", "an integer", id="negative"),
        pytest.param("0x1F", "an integer", id="hex"),
        pytest.param("1_000", "an integer", id="underscores"),
        pytest.param("1.5", "a number", id="float"),
        pytest.param("1.5e+3", "a number", id="exponent"),
        pytest.param(".inf", "a number", id="infinity"),
        pytest.param(".nan", "a number", id="nan"),
        pytest.param("1e3", "a string", id="exponent-without-a-dot-is-text-in-yaml-1.1"),
        pytest.param("text", "a string", id="plain-text"),
        pytest.param("'5'", "a string", id="quoted-number"),
        pytest.param('""', "a string", id="empty-string"),
        pytest.param("{a: 1}", "a mapping", id="mapping"),
        pytest.param("{}", "a mapping", id="empty-mapping"),
        pytest.param("[1]", "a list", id="list"),
        pytest.param("!!omap [a: 1]", "a list", id="omap"),
        pytest.param("!!pairs [a: 1]", "a list", id="pairs"),
        pytest.param("2026-11-22", "a value of type date", id="date"),
        pytest.param("2026-11-22 12:30:00", "a value of type datetime", id="timestamp"),
        pytest.param("!!binary aGk=", "a value of type bytes", id="binary"),
        pytest.param("!!set {a}", "a value of type set", id="set"),
    ],
)
def test_kind_of_every_yaml_type(yaml_text: str, expected: str) -> None:
    assert kind_of(yaml.safe_load(yaml_text)) == expected


def test_kind_of_a_boolean_is_not_an_integer() -> None:
    # bool is a subclass of int in Python; YAML's words keep them apart.
    assert [kind_of(True), kind_of(False), kind_of(1)] == ["a boolean", "a boolean", "an integer"]


# --- show ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("local", "'local'", id="string"),
        pytest.param("", "''", id="empty-string"),
        pytest.param("it's", '"it\'s"', id="string-with-an-apostrophe"),
        pytest.param("a\nb\x1b[31m", "'a\\nb\\x1b[31m'", id="control-characters-escaped"),
        pytest.param(-1, "-1", id="integer"),
        pytest.param(2.5, "2.5", id="float"),
        pytest.param(float("inf"), "inf", id="infinity"),
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param(None, "null", id="null"),
        pytest.param(["a", "b"], "a list", id="list"),
        pytest.param({"key": "value"}, "a mapping", id="mapping"),
    ],
)
def test_show_quotes_scalars_and_names_the_kind_of_the_rest(value: object, expected: str) -> None:
    assert show(value, secret=False) == expected


SECRET = "sk-very-secret-0123456789"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(SECRET, "a string", id="string"),
        pytest.param(1234567890, "an integer", id="integer"),
        pytest.param(12.5, "a number", id="float"),
        pytest.param(True, "a boolean", id="boolean"),
        pytest.param([SECRET], "a list", id="list"),
        pytest.param({"Authorization": SECRET}, "a mapping", id="mapping"),
        pytest.param(None, "null", id="null"),
    ],
)
def test_show_never_shows_a_secret(value: object, expected: str) -> None:
    assert show(value, secret=True) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("x" * 58, "'" + "x" * 58 + "'", id="60-characters-as-they-are"),
        pytest.param("x" * 59, "'" + "x" * 55 + "...'", id="61-characters-cut-to-60"),
        pytest.param("it's " + "x" * 60, "\"it's " + "x" * 50 + '..."', id="double-quoted"),
        pytest.param(10**70, "1" + "0" * 56 + "...", id="integer"),
    ],
)
def test_show_cuts_long_values_to_60_characters(value: object, expected: str) -> None:
    shown = show(value, secret=False)
    assert shown == expected
    assert len(shown) <= 60


# --- unknown ------------------------------------------------------------------------------------


def test_unknown_when_no_names_are_declared() -> None:
    assert (
        unknown("tool", "get_weather", {}) == "unknown tool 'get_weather' (no tools are declared)"
    )


def test_unknown_suggests_a_close_name() -> None:
    names = {"get_weather": 1, "geocode": 2}
    assert unknown("tool", "get_wether", names) == (
        "unknown tool 'get_wether'. Did you mean 'get_weather'?"
    )


def test_unknown_lists_the_declared_names_when_none_is_close() -> None:
    names = {"planner": 1, "weather-haiku": 2, "triage": 3}
    assert unknown("agent", "billing", names) == (
        "unknown agent 'billing' (declared: 'planner', 'weather-haiku', 'triage')"
    )


def test_unknown_quotes_the_value_as_python_would() -> None:
    assert unknown("backend", "it's", {"local": 1}) == (
        "unknown backend \"it's\" (declared: 'local')"
    )


# --- like_escaped -------------------------------------------------------------------------------


def test_like_escaped_matches_its_text_to_the_letter() -> None:
    import sqlite3

    names = ["run-a", "run_a", "run%a", "runXa", "run\\a", "run\\%a"]
    with sqlite3.connect(":memory:") as connection:
        connection.execute("CREATE TABLE t (name TEXT)")
        connection.executemany("INSERT INTO t VALUES (?)", [(name,) for name in names])
        for name in names:
            found = connection.execute(
                "SELECT name FROM t WHERE name LIKE ? ESCAPE '\\'", (like_escaped(name),)
            ).fetchall()
            assert found == [(name,)]
