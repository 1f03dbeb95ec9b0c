"""Loading agents.yaml: `load_config` and `parse_config` end to end, the `version` field, the
file's own errors, `Config`'s methods, and secrets kept out of messages and logs
(`agent_runtime.config.load`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from agent_runtime.config import AgentToolSpec, ModelSettingsSpec, load_config, parse_config
from agent_runtime.errors import ConfigError
from tests.config.helpers import BACKEND, EXAMPLE, PROJECT, error, parse, write

SECRET = "sk-very-secret-0123456789"


def test_the_example_document_loads(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "agents.yaml": EXAMPLE,
            "tools/__init__.py": "",
            "tools/weather.py": "def get_weather(city):\n    return 'Sunny in ' + city\n",
        },
    )

    config = load_config(tmp_path / "agents.yaml", environ={"VLLM_API_KEY": SECRET})

    backend = config.spec.backends["local"]
    assert (backend.kind, backend.api, backend.model) == ("vllm", "responses", "openai/gpt-oss-20b")
    assert backend.base_url == "http://localhost:8000/v1"
    assert backend.api_key.get_secret_value() == SECRET
    assert (backend.timeout_s, backend.max_retries, backend.reasoning_field) == (
        120,
        2,
        "reasoning",
    )
    assert backend.headers == {}
    agent = config.spec.agents["weather-haiku"]
    assert agent.model_settings == ModelSettingsSpec(reasoning_effort="low")
    assert (agent.tools, agent.handoffs, agent.agent_tools, agent.max_turns) == (
        ["get_weather"],
        [],
        [],
        10,
    )
    assert config.spec.tools["get_weather"].timeout_s == 10
    assert config.spec.tools["get_weather"].strict is True
    assert config.functions["get_weather"]("Tokyo") == "Sunny in Tokyo"
    assert config.tool_names == {"get_weather": "get_weather"}
    assert config.instructions == {"weather-haiku": "You only respond in haikus."}
    assert (config.source, config.base_dir) == (str(tmp_path / "agents.yaml"), tmp_path)
    defaults = config.spec.defaults
    assert (defaults.backend, defaults.max_turns, defaults.tool_timeout_s) == (None, 10, 30)
    assert defaults.tool_max_output_chars == 20000
    assert (config.spec.sessions.path, config.spec.sessions.keep_days) == (
        ".agent-runtime/sessions.sqlite3",
        None,
    )
    tracing = config.spec.tracing.model_dump()
    assert {key: tracing[key] for key in list(tracing)[:5]} == {
        "enabled": True,
        "path": ".agent-runtime/runs.sqlite3",
        "include_sensitive_data": False,
        "max_field_chars": 100_000,
        "keep_days": 30,
    }


def test_a_fuller_document_loads_with_defaults_and_interpolation() -> None:
    config = load_config(PROJECT / "agents.yaml", environ={"BIG_PORT": "9000", "BIG_HOST": ""})

    big = config.spec.backends["big"]
    assert big.base_url == "http://gpu-1:9000/v1"  # empty BIG_HOST falls back to its default
    assert big.timeout_s == 300.0  # "${BIG_TIMEOUT_S:-300}" validated as a number
    assert big.api_key.get_secret_value() == "EMPTY"
    assert config.instructions["weather-haiku"] == "You only respond in haikus.\n"
    assert config.tool_names == {"get_weather": "get_weather", "geocode": "find_place"}
    assert config.model_settings_of("weather-haiku") == ModelSettingsSpec(
        temperature=0.7, reasoning_effort="low"
    )
    assert config.max_turns_of("weather-haiku") == 8
    assert config.max_turns_of("planner") == 20
    assert config.agent_tools_of("planner") == (
        AgentToolSpec(agent="weather-haiku", name="weather_haiku"),
        AgentToolSpec(agent="weather-haiku", name="poet", description="Writes poems."),
    )
    assert config.resolve_path(config.spec.sessions.path) == PROJECT / "state/sessions.sqlite3"
    assert config.spec.agents["planner"].output_schema == {
        "type": "object",
        "properties": {"summary": {"type": "string"}},
        "required": ["summary"],
    }


def test_interpolation_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_TEST_MODEL", "from-env")
    config = parse_config(
        "version: 1\n"
        "backends: {local: {base_url: 'http://x/v1', model: '${AGENT_RUNTIME_TEST_MODEL}'}}\n"
        "agents: {a: {}}\n"
    )
    assert config.spec.backends["local"].model == "from-env"
    assert config.base_dir == Path.cwd()


@pytest.mark.parametrize(
    ("text", "agent", "expected"),
    [
        pytest.param(
            "backends: {one: {base_url: 'http://x/v1', model: m}}\nagents: {a: {}}",
            "a",
            "one",
            id="the-only-backend",
        ),
        pytest.param(
            "defaults: {backend: two}\n"
            "backends: {one: {base_url: 'http://x/v1', model: m}, "
            "two: {base_url: 'http://y/v1', model: m}}\n"
            "agents: {a: {}}",
            "a",
            "two",
            id="defaults-backend",
        ),
        pytest.param(
            "defaults: {backend: two}\n"
            "backends: {one: {base_url: 'http://x/v1', model: m}, "
            "two: {base_url: 'http://y/v1', model: m}}\n"
            "agents: {a: {backend: one}}",
            "a",
            "one",
            id="agent-backend",
        ),
    ],
)
def test_backend_of(text: str, agent: str, expected: str) -> None:
    config = parse("version: 1\n" + text)
    name, spec = config.backend_of(agent)
    assert name == expected
    assert spec is config.spec.backends[expected]


def test_backend_of_an_unknown_agent_names_the_agents() -> None:
    config = parse(
        "version: 1\nbackends: {b: {base_url: 'http://x/v1', model: m}}\nagents: {a: {}}"
    )
    with pytest.raises(KeyError) as caught:
        config.backend_of("b")
    assert caught.value.args == ("unknown agent 'b' (declared: 'a')",)


def test_run_limits_and_guards_come_from_the_agent_else_the_defaults() -> None:
    config = parse(
        f"""\
        version: 1
        defaults: {{run_timeout_s: 60, max_repeated_calls: 4, max_invalid_calls: 0}}
        {BACKEND}
        agents:
          a: {{}}
          b: {{run_timeout_s: 5, max_repeated_calls: 0, max_invalid_calls: 2}}
        """
    )
    assert (config.run_timeout_of("a"), config.guard_limits_of("a")) == (60, (4, 0))
    assert (config.run_timeout_of("b"), config.guard_limits_of("b")) == (5, (0, 2))
    plain = parse(f"version: 1\n{BACKEND}\nagents: {{a: {{}}}}\n")
    assert (plain.run_timeout_of("a"), plain.guard_limits_of("a")) == (None, (3, 5))


@pytest.mark.parametrize(
    "method", ["model_settings_of", "max_turns_of", "run_timeout_of", "guard_limits_of"]
)
def test_every_agent_method_names_the_agents_on_an_unknown_one(method: str) -> None:
    config = parse(f"version: 1\n{BACKEND}\nagents: {{a: {{}}, b: {{}}}}\n")
    with pytest.raises(KeyError) as caught:
        getattr(config, method)("c")
    assert caught.value.args == ("unknown agent 'c' (declared: 'a', 'b')",)


def test_resolve_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = parse(f"version: 1\n{BACKEND}\nagents: {{a: {{}}}}\n", base=tmp_path / "project")
    assert config.resolve_path("state/s.sqlite3") == tmp_path / "project/state/s.sqlite3"
    assert config.resolve_path("/var/traces.jsonl") == Path("/var/traces.jsonl")
    assert config.resolve_path("~/traces.jsonl") == tmp_path / "home/traces.jsonl"
    # `~user` for a user that does not exist stays as written, under the project.
    assert (
        config.resolve_path("~no-such-user/t.jsonl") == tmp_path / "project/~no-such-user/t.jsonl"
    )


def test_a_problem_found_after_loading_names_the_file_and_the_path() -> None:
    config = parse(f"version: 1\n{BACKEND}\nagents: {{a: {{}}}}\n")
    exc = config.error("backends.local.base_url", "nothing can be started there.")
    assert str(exc) == "agents.yaml: backends.local.base_url: nothing can be started there."
    (problem,) = exc.problems
    assert (problem.line, problem.column) == (None, None)


def test_paths_are_relative_to_the_yaml_file_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write(
        tmp_path / "project",
        {
            "agents.yaml": """\
            version: 1
            backends: {local: {base_url: "http://x/v1", model: m}}
            tools:
              hello: {function: "mytools.greet:hello"}
            agents:
              a: {instructions_file: prompts/a.md, tools: [hello]}
            """,
            "prompts/a.md": "Be brief.",
            "mytools/__init__.py": "",
            "mytools/greet.py": "def hello(name: str) -> str:\n    return 'hello ' + name\n",
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path_before = list(sys.path)

    config = load_config("../project/agents.yaml", environ={})

    assert config.base_dir == project
    assert config.source == "../project/agents.yaml"
    assert config.instructions == {"a": "Be brief."}
    assert config.functions["hello"]("you") == "hello you"
    assert sys.modules["mytools"].__file__ == str(project / "mytools" / "__init__.py")
    assert sys.path == path_before


def test_the_fixture_project_loads_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = load_config(PROJECT / "agents.yaml", environ={})
    again = load_config(PROJECT / "agents.yaml", environ={})  # reuses the module imported above
    assert first.functions["get_weather"]("Oslo") == "Sunny in Oslo"
    assert again.functions["get_weather"] is first.functions["get_weather"]


# --- the document as a whole -------------------------------------------------------------------

ERRORS = [
    pytest.param(
        "",
        "agents.yaml: the file is empty; expected a mapping with `version: 1`, `backends` and "
        "`agents`.",
        id="empty",
    ),
    pytest.param(
        "# only a comment\n",
        "agents.yaml: the file is empty; expected a mapping with `version: 1`, `backends` and "
        "`agents`.",
        id="only-comments",
    ),
    pytest.param(
        "- a\n- b\n",
        "agents.yaml:1:1: expected a mapping with `version`, `backends` and `agents`, got a list.",
        id="not-a-mapping",
    ),
    pytest.param(
        f"{BACKEND}\nagents: {{a: {{}}}}\n",
        "agents.yaml:1:1: missing required field `version`; add `version: 1`.",
        id="version-missing",
    ),
    pytest.param(
        f"version: 2\n{BACKEND}\nagents: {{a: {{bad: 1}}}}\n",
        "agents.yaml:1:10: version: unsupported version 2; this agent-runtime reads `version: 1`.",
        id="version-2-stops-there",
    ),
    pytest.param(
        f"version: '1'\n{BACKEND}\nagents: {{a: {{}}}}\n",
        "agents.yaml:1:10: version: unsupported version '1'; this agent-runtime reads "
        "`version: 1`.",
        id="version-string",
    ),
    pytest.param(
        f"version: true\n{BACKEND}\nagents: {{a: {{}}}}\n",
        "agents.yaml:1:10: version: unsupported version true; this agent-runtime reads "
        "`version: 1`.",
        id="version-true-is-not-1",
    ),
    pytest.param(
        f"version: 1.0\n{BACKEND}\nagents: {{a: {{}}}}\n",
        "agents.yaml:1:10: version: unsupported version 1.0; this agent-runtime reads "
        "`version: 1`.",
        id="version-float",
    ),
    pytest.param(
        f"version: ${{VERSION}}\n{BACKEND}\nagents: {{a: {{bad: 1}}}}\n",
        "agents.yaml:1:10: version: environment variable `VERSION` is not set (use "
        "${VERSION:-default} for a default).",
        id="version-from-an-unset-variable",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors(text: str, expected: str) -> None:
    assert error(text) == expected.replace("{base}", str(PROJECT))


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    message = error(
        """\
        version: 1
        backends:
          local:
            base_url: ${VLLM_BASE_URL:-http://localhost:8000/v1}
            api_key: ${VLLM_API_KEY}
        tools:
          get_weather:
            function: mytools.weather:get_weathr
        agents:
          weather-haiku:
            instructions: You only respond in haikus.
            temprature: 0.2
            model_settings: {reasoning_effort: minimal}
            tools: [get_wether]
            handoffs: [weather-haiku]
            max_turns: many
        """
    )
    assert message == (
        "agents.yaml has 8 problems:\n"
        "  agents.yaml:3:3    backends.local: missing required field `model`.\n"
        "  agents.yaml:5:14   backends.local.api_key: environment variable `VLLM_API_KEY` is not "
        "set (use ${VLLM_API_KEY:-default} for a default).\n"
        "  agents.yaml:8:15   tools.get_weather.function: module `mytools.weather` has no "
        "attribute `get_weathr`. Did you mean `get_weather`?\n"
        "  agents.yaml:12:5   agents.weather-haiku.temprature: unknown field. Did you mean "
        "`model_settings.temperature`?\n"
        "  agents.yaml:13:40  agents.weather-haiku.model_settings.reasoning_effort: "
        "reasoning_effort 'minimal' is not supported: vLLM's gpt-oss accepts only 'low', 'medium' "
        "or 'high'.\n"
        "  agents.yaml:14:13  agents.weather-haiku.tools[0]: unknown tool 'get_wether'. Did you "
        "mean 'get_weather'?\n"
        "  agents.yaml:15:16  agents.weather-haiku.handoffs[0]: an agent cannot hand off to "
        "itself.\n"
        "  agents.yaml:16:16  agents.weather-haiku.max_turns: expected an integer, got 'many'."
    )


def test_load_config_on_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config("agents.yaml")
    assert str(caught.value) == ("agents.yaml: cannot read agents.yaml: No such file or directory")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.column, problem.path) == (
        "agents.yaml",
        None,
        None,
        "",
    )


def test_load_config_on_a_folder_and_on_binary_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path}: cannot read {tmp_path}: Is a directory"
    (tmp_path / "agents.yaml").write_bytes(b"version: 1\n\xff\xfe")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "agents.yaml")
    assert str(caught.value) == (
        f"{tmp_path}/agents.yaml: cannot read {tmp_path}/agents.yaml: not UTF-8 text "
        "(invalid start byte at byte 11)"
    )


# --- secrets ------------------------------------------------------------------------------------

SECRET_LEAKS = [
    pytest.param(f"api_key: [{SECRET}]", id="wrong-type"),
    pytest.param(f"api_key: {{key: {SECRET}}}", id="mapping"),
    pytest.param(f"api_key: {SECRET}${{", id="unclosed-interpolation"),
    pytest.param(f"api_key: {SECRET}${{1}}", id="invalid-interpolation"),
    pytest.param(f"api_key: ${{KEY}}\n    apikey: {SECRET}", id="unknown-field"),
    pytest.param(f"api_key: {SECRET}\n    api_key: {SECRET}2", id="duplicate"),
    pytest.param(f"api_key: {SECRET}\n    headers: {{Authorization: [{SECRET}]}}", id="header"),
    pytest.param(f"api_key: {SECRET}\n    headers: [Bearer {SECRET}]", id="headers-list"),
    pytest.param(f"api_key: '{SECRET}", id="yaml-syntax"),
    pytest.param(f"api_key: !secret {SECRET}", id="unknown-tag"),
]


@pytest.mark.parametrize("line", SECRET_LEAKS)
def test_secrets_never_appear_in_errors(line: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    text = f"version: 1\nbackends:\n  local:\n    base_url: http://x/v1\n    {line}\nagents: {{}}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={"KEY": SECRET}, base_dir=PROJECT)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.problems)
    assert SECRET not in caplog.text


def test_secrets_never_appear_in_the_config_repr_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agent_runtime")
    config = parse(
        """\
        version: 1
        backends:
          local:
            base_url: http://x/v1
            model: m
            api_key: ${KEY}
            headers: {Authorization: "Bearer ${KEY}"}
        agents:
          a: {model_settings: {extra_headers: {X-Key: "${KEY}"}}}
        """,
        environ={"KEY": SECRET},
    )
    assert config.spec.backends["local"].api_key.get_secret_value() == SECRET
    assert config.spec.backends["local"].headers == {"Authorization": f"Bearer {SECRET}"}
    assert SECRET not in repr(config)
    assert SECRET not in str(config.spec)
    assert "loaded agents.yaml: 1 backends, 0 tools, 1 agents" in caplog.text
    assert SECRET not in caplog.text
