"""agents.yaml: loading, interpolation, tool imports and every error, with whole messages pinned."""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent_runtime.config import (
    AgentSpec,
    AgentToolSpec,
    BackendSpec,
    Config,
    ModelSettingsSpec,
    RuntimeConfig,
    config_json_schema,
    import_function,
    load_config,
    parse_config,
)
from agent_runtime.errors import ConfigError, ToolResolutionError
from tests import helpers

PROJECT = Path(__file__).parent / "project"
SECRET = "sk-very-secret-0123456789"

EXAMPLE = """\
version: 1
backends:
  local:
    kind: vllm
    api: responses
    base_url: ${VLLM_BASE_URL:-http://localhost:8000/v1}
    api_key: ${VLLM_API_KEY:-EMPTY}
    model: openai/gpt-oss-20b
    timeout_s: 120
    max_retries: 2
tools:
  get_weather:
    function: tools.weather:get_weather
    timeout_s: 10
agents:
  weather-haiku:
    instructions: You only respond in haikus.
    backend: local
    model_settings: {reasoning_effort: low}
    tools: [get_weather]
    max_turns: 10
"""

# Top-level packages the tests import from fixture folders; each test starts and ends without them.
_FIXTURE_PACKAGES = {"mytools", "tools", "nstools", "boom", "solo"}


@pytest.fixture(autouse=True)
def _fixture_modules() -> Iterator[None]:
    def ours(name: str) -> bool:
        return name.partition(".")[0] in _FIXTURE_PACKAGES

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    yield
    for name in [name for name in sys.modules if ours(name)]:
        del sys.modules[name]
    sys.modules.update(saved)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def _parse(text: str, *, environ: dict[str, str] | None = None, base: Path = PROJECT) -> Config:
    return parse_config(
        textwrap.dedent(text), source="agents.yaml", base_dir=base, environ=environ or {}
    )


def _error(text: str, *, environ: dict[str, str] | None = None, base: Path = PROJECT) -> str:
    with pytest.raises(ConfigError) as caught:
        _parse(text, environ=environ, base=base)
    return str(caught.value)


# --- loading ------------------------------------------------------------------------------------


def test_the_example_document_loads(tmp_path: Path) -> None:
    _write(
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
    assert config.spec.sessions.path == ".agent-runtime/sessions.sqlite3"
    assert config.spec.tracing.model_dump() == {
        "enabled": True,
        "path": ".agent-runtime/traces.jsonl",
        "include_sensitive_data": True,
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
    config = _parse(
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
    config = _parse(
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
    config = _parse("version: 1\n" + text)
    name, spec = config.backend_of(agent)
    assert name == expected
    assert spec is config.spec.backends[expected]


def test_backend_of_an_unknown_agent_names_the_agents() -> None:
    config = _parse(
        "version: 1\nbackends: {b: {base_url: 'http://x/v1', model: m}}\nagents: {a: {}}"
    )
    with pytest.raises(KeyError) as caught:
        config.backend_of("b")
    assert caught.value.args == ("unknown agent 'b' (declared: 'a')",)


def test_paths_are_relative_to_the_yaml_file_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _write(
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


def test_a_namespace_package_next_to_the_yaml_file(tmp_path: Path) -> None:
    _write(tmp_path, {"nstools/tool.py": "def run() -> int:\n    return 7\n"})
    assert import_function("nstools.tool:run", tmp_path)() == 7
    assert sys.modules["nstools"].__path__ == [str(tmp_path / "nstools")]


def test_a_module_file_next_to_the_yaml_file(tmp_path: Path) -> None:
    _write(tmp_path, {"solo.py": "def run() -> str:\n    return 'solo'\n"})
    assert import_function("solo:run", tmp_path)() == "solo"


def test_modules_on_sys_path_are_imported_as_usual(tmp_path: Path) -> None:
    import json

    assert import_function("json:dumps", tmp_path) is json.dumps


def test_a_package_of_the_same_name_imported_from_elsewhere_is_a_conflict(tmp_path: Path) -> None:
    _write(tmp_path / "one", {"mytools/__init__.py": "", "mytools/a.py": "def f() -> None: ..."})
    _write(tmp_path / "two", {"mytools/__init__.py": "", "mytools/a.py": "def f() -> None: ..."})
    import_function("mytools.a:f", tmp_path / "one")
    with pytest.raises(ToolResolutionError) as caught:
        import_function("mytools.a:f", tmp_path / "two")
    assert str(caught.value) == (
        f"cannot import `mytools.a` from {tmp_path}/two/mytools/__init__.py: another module "
        f"`mytools` is already imported (from {tmp_path}/one/mytools/__init__.py); "
        "rename one of them"
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        pytest.param("nope", "expected 'package.module:function', got 'nope'", id="no-colon"),
        pytest.param(
            "mytools.weather.get_weather",
            "expected 'package.module:function', got 'mytools.weather.get_weather'",
            id="dots-only",
        ),
        pytest.param(
            "mytools/weather:get_weather",
            "expected 'package.module:function', got 'mytools/weather:get_weather'",
            id="slash",
        ),
        pytest.param(
            "mytools.weathr:get_weather",
            "cannot import `mytools.weathr` (looked in {base} and on sys.path): "
            "ModuleNotFoundError: No module named 'mytools.weathr'",
            id="missing-module",
        ),
        pytest.param(
            "notapackage_xyz.mod:f",
            "cannot import `notapackage_xyz.mod` (looked in {base} and on sys.path): "
            "ModuleNotFoundError: No module named 'notapackage_xyz'",
            id="missing-package",
        ),
        pytest.param(
            "mytools.weather:get_wether",
            "module `mytools.weather` has no attribute `get_wether`. Did you mean `get_weather`?",
            id="missing-attribute",
        ),
        pytest.param(
            "mytools.weather:nothing_like_it",
            "module `mytools.weather` has no attribute `nothing_like_it`",
            id="missing-attribute-no-suggestion",
        ),
        pytest.param(
            "mytools.weather:UNITS", "`mytools.weather:UNITS` is not callable", id="not-callable"
        ),
    ],
)
def test_import_function_errors(reference: str, expected: str) -> None:
    with pytest.raises(ToolResolutionError) as caught:
        import_function(reference, PROJECT)
    assert str(caught.value) == expected.format(base=PROJECT)


def test_an_exception_while_importing_the_module_shows_its_type_and_message(tmp_path: Path) -> None:
    _write(tmp_path, {"boom/__init__.py": "", "boom/bad.py": "RATE = 1 / 0\n"})
    with pytest.raises(ToolResolutionError) as caught:
        import_function("boom.bad:f", tmp_path)
    assert str(caught.value) == (
        f"cannot import `boom.bad` (looked in {tmp_path} and on sys.path): "
        "ZeroDivisionError: division by zero"
    )
    assert "boom.bad" not in sys.modules


def test_a_module_getattr_that_fails(tmp_path: Path) -> None:
    _write(
        tmp_path, {"solo.py": "def __getattr__(name: str) -> object:\n    raise KeyError(name)\n"}
    )
    with pytest.raises(ToolResolutionError) as caught:
        import_function("solo:tool", tmp_path)
    assert str(caught.value) == "getting `tool` from module `solo` failed: KeyError: 'tool'"


def test_a_failing_top_package_is_not_left_half_imported(tmp_path: Path) -> None:
    _write(tmp_path, {"boom/__init__.py": "raise RuntimeError('no config for boom')\n"})
    with pytest.raises(ToolResolutionError) as caught:
        import_function("boom:f", tmp_path)
    assert str(caught.value) == (
        f"cannot import `boom` (looked in {tmp_path} and on sys.path): "
        "RuntimeError: no config for boom"
    )
    assert "boom" not in sys.modules


# --- errors -------------------------------------------------------------------------------------

_BACKEND = "backends: {local: {base_url: 'http://x/v1', model: m}}"

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
        f"{_BACKEND}\nagents: {{a: {{}}}}\n",
        "agents.yaml:1:1: missing required field `version`; add `version: 1`.",
        id="version-missing",
    ),
    pytest.param(
        f"version: 2\n{_BACKEND}\nagents: {{a: {{bad: 1}}}}\n",
        "agents.yaml:1:10: version: unsupported version 2; this agent-runtime reads `version: 1`.",
        id="version-2-stops-there",
    ),
    pytest.param(
        f"version: '1'\n{_BACKEND}\nagents: {{a: {{}}}}\n",
        "agents.yaml:1:10: version: unsupported version '1'; this agent-runtime reads "
        "`version: 1`.",
        id="version-string",
    ),
    pytest.param(
        "version: 1\nbackends: {}\nagents: {}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:2:11  backends: declare at least one entry under `backends`.\n"
        "  agents.yaml:3:9   agents: declare at least one entry under `agents`.",
        id="empty-sections",
    ),
    pytest.param(
        "version: 1\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:1:1  missing required field `backends`.\n"
        "  agents.yaml:1:1  missing required field `agents`.",
        id="missing-sections",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagent:\n  a: {{}}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:1:1  missing required field `agents`.\n"
        "  agents.yaml:3:1  agent: unknown field. Did you mean `agents`?",
        id="unknown-root-key",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a:\n    temprature: 0.3\n",
        "agents.yaml:5:5: agents.a.temprature: unknown field. Did you mean "
        "`model_settings.temperature`?",
        id="model-setting-on-the-agent",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a:\n    model_settings: {{temprature: 0.3}}\n",
        "agents.yaml:5:22: agents.a.model_settings.temprature: unknown field. "
        "Did you mean `temperature`?",
        id="misspelt-model-setting",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a:\n    colour: red\n",
        "agents.yaml:5:5: agents.a.colour: unknown field (allowed: `description`, `instructions`, "
        "`instructions_file`, `backend`, `model`, `model_settings`, `tools`, `agent_tools`, "
        "`handoffs`, `output_schema`, `max_turns`, `run_timeout_s`, `max_repeated_calls`, "
        "`max_invalid_calls`).",
        id="unknown-field-lists-the-allowed",
    ),
    pytest.param(
        "version: 1\nbackends:\n  local:\n    base_url: http://x/v1\nagents: {a: {}}\n",
        "agents.yaml:3:3: backends.local: missing required field `model`.",
        id="missing-field",
    ),
    pytest.param(
        "version: 1\nbackends:\n  gpu box.1: {base_url: http://x/v1}\nagents: {a: {}}\n",
        "agents.yaml:3:3: backends['gpu box.1']: missing required field `model`.",
        id="odd-name-in-path",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  local:\n"
        "    base_url: localhost:8000/v1\n"
        "    model: [m]\n"
        "    kind: vlm\n"
        "    timeout_s: soon\n"
        "    max_retries: -1\n"
        "    headers: {X-Id: 7}\n"
        "agents: {a: {}}\n",
        "agents.yaml has 6 problems:\n"
        "  agents.yaml:4:15  backends.local.base_url: expected an http:// or https:// URL, "
        "e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:5:12  backends.local.model: expected a string, got a list.\n"
        "  agents.yaml:6:11  backends.local.kind: expected 'vllm', 'openai' or 'vllm-embedded', "
        "got 'vlm'. Did you mean 'vllm'?\n"
        "  agents.yaml:7:16  backends.local.timeout_s: expected a number, got 'soon'.\n"
        "  agents.yaml:8:18  backends.local.max_retries: must be at least 0, got -1.\n"
        "  agents.yaml:9:21  backends.local.headers.X-Id: expected a string, got an integer "
        "(quote the value to keep it as text).",
        id="backend-values",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  gpu:\n"
        "    kind: vllm-embedded\n"
        "    model: m\n"
        "    base_url: http://localhost:8000/v1\n"
        "    launch: auto\n"
        "  gpu2: {kind: vllm-embedded, model: m, launch: auto}\n"
        "  tuned:\n"
        "    kind: vllm-embedded\n"
        "    model: m\n"
        "    engine: {tensor_parallel_size: 0, prefix_reuse: fast, gpu: 1}\n"
        "  server:\n"
        "    model: m\n"
        "    engine: {}\n"
        "agents: {a: {backend: gpu}}\n",
        "agents.yaml has 6 problems:\n"
        "  agents.yaml:4:5    backends.gpu: `base_url` and `launch` cannot be used with kind "
        "vllm-embedded, which runs vLLM in this process: remove them, or use kind vllm for a "
        "server.\n"
        "  agents.yaml:8:9    backends.gpu2: `launch` cannot be used with kind vllm-embedded, "
        "which runs vLLM in this process: remove it, or use kind vllm for a server.\n"
        "  agents.yaml:12:36  backends.tuned.engine.tensor_parallel_size: must be at least 1, "
        "got 0.\n"
        "  agents.yaml:12:53  backends.tuned.engine.prefix_reuse: expected 'exact' or "
        "'rerender', got 'fast'.\n"
        "  agents.yaml:12:59  backends.tuned.engine.gpu: unknown field (allowed: "
        "`tensor_parallel_size`, `gpu_memory_utilization`, `max_model_len`, `prefix_reuse`).\n"
        "  agents.yaml:14:5   backends.server: missing required field `base_url` (only kind "
        "vllm-embedded needs no server).",
        id="embedded-backend",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    model_settings: {reasoning_effort: max, tool_choice: required, top_p: 2}\n"
        "    max_turns: 0\n"
        "    tools: get_weather\n"
        "    agent_tools: [3]\n"
        "    output_schema: [1]\n",
        "agents.yaml has 7 problems:\n"
        "  agents.yaml:5:40  agents.a.model_settings.reasoning_effort: reasoning_effort 'max' is "
        "not supported: vLLM's gpt-oss accepts only 'low', 'medium' or 'high'.\n"
        "  agents.yaml:5:58  agents.a.model_settings.tool_choice: tool_choice 'required' is not "
        "supported: vLLM's gpt-oss Responses API answers anything but 'auto' or 'none' with 501 "
        "Not Implemented.\n"
        "  agents.yaml:5:75  agents.a.model_settings.top_p: must be at most 1, got 2.\n"
        "  agents.yaml:6:16  agents.a.max_turns: must be greater than 0, got 0.\n"
        "  agents.yaml:7:12  agents.a.tools: expected a list, got a string "
        "(write [get_weather] for a single item).\n"
        "  agents.yaml:8:19  agents.a.agent_tools[0]: expected an agent name or a mapping with "
        "`agent:`, got an integer.\n"
        "  agents.yaml:9:20  agents.a.output_schema: expected a mapping, got a list.",
        id="agent-values",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a:\n    agent_tools: [{{agnet: b}}]\n  b: {{}}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:5:19  agents.a.agent_tools[0]: missing required field `agent`.\n"
        "  agents.yaml:5:20  agents.a.agent_tools[0].agnet: unknown field. Did you mean `agent`?",
        id="agent-tool-mapping",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    instructions: one\n"
        "    description: first\n"
        "    instructions: two\n",
        "agents.yaml:7:5: agents.a.instructions: duplicate key 'instructions' (first at line 5).",
        id="duplicate-key",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a: {{}}\n  a: {{}}\n",
        "agents.yaml:5:3: agents.a: duplicate key 'a' (first at line 4).",
        id="duplicate-agent",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "tools:\n"
        "  get_weather: {function: 'mytools.weather:get_weather'}\n"
        "agents:\n"
        "  a:\n"
        "    tools: [get_weather, get_weather]\n"
        "    handoffs: [b, b]\n"
        "    agent_tools: [b, {agent: b}, {agent: b, name: b_again}]\n"
        "  b: {}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:7:26  agents.a.tools[1]: duplicate tool 'get_weather' (already at "
        "tools[0]).\n"
        "  agents.yaml:8:19  agents.a.handoffs[1]: duplicate handoff 'b' (already at "
        "handoffs[0]).\n"
        "  agents.yaml:9:22  agents.a.agent_tools[1]: duplicate agent tool 'b' (already at "
        "agent_tools[0]).",
        id="duplicate-entries",
    ),
    pytest.param(
        "version: 1\n"
        "defaults: {backend: lcoal}\n"
        f"{_BACKEND}\n"
        "tools:\n"
        "  get_weather: {function: 'mytools.weather:get_weather'}\n"
        "agents:\n"
        "  a:\n"
        "    backend: remote\n"
        "    tools: [get_wether]\n"
        "    handoffs: [bb]\n"
        "    agent_tools: [{agent: c}]\n"
        "  b: {}\n",
        "agents.yaml has 5 problems:\n"
        "  agents.yaml:2:21   defaults.backend: unknown backend 'lcoal'. Did you mean 'local'?\n"
        "  agents.yaml:8:14   agents.a.backend: unknown backend 'remote' (declared: 'local').\n"
        "  agents.yaml:9:13   agents.a.tools[0]: unknown tool 'get_wether'. Did you mean "
        "'get_weather'?\n"
        "  agents.yaml:10:16  agents.a.handoffs[0]: unknown agent 'bb'. Did you mean 'b'?\n"
        "  agents.yaml:11:27  agents.a.agent_tools[0].agent: unknown agent 'c' (declared: 'a', "
        "'b').",
        id="unknown-names",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  one: {base_url: 'http://x/v1', model: m}\n"
        "  two: {base_url: 'http://y/v1', model: m}\n"
        "agents:\n"
        "  a: {}\n"
        "  b: {backend: two}\n",
        "agents.yaml:6:3: agents.a: no backend for this agent: set `backend:` on the agent or "
        "`defaults.backend` (declared: 'one', 'two').",
        id="no-backend",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    instructions: Be brief.\n"
        "    instructions_file: prompts/haiku.md\n"
        "  b:\n"
        "    instructions_file: prompts/missing.md\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:6:5   agents.a.instructions_file: `instructions` and `instructions_file` "
        "are both set; keep one.\n"
        "  agents.yaml:8:24  agents.b.instructions_file: cannot read instructions file "
        "{base}/prompts/missing.md: No such file or directory.",
        id="instructions",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a: {{instructions_file: prompts}}\n",
        "agents.yaml:4:26: agents.a.instructions_file: cannot read instructions file "
        "{base}/prompts: Is a directory.",
        id="instructions-file-is-a-directory",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a: {{instructions_file: ~no-such-user/a.md}}\n",
        "agents.yaml:4:26: agents.a.instructions_file: cannot read instructions file "
        "~no-such-user/a.md: Could not determine home directory.",
        id="instructions-file-of-an-unknown-user",
    ),
    pytest.param(
        f'version: 1\n{_BACKEND}\nagents:\n  a: {{instructions_file: "x\\0y"}}\n',
        "agents.yaml:4:26: agents.a.instructions_file: cannot read instructions file 'x\\x00y': "
        "embedded null byte.",
        id="instructions-file-with-a-nul",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  a: {base_url: 'http://h:port/v1', model: m}\n"
        "  b: {base_url: 'http://[::1/v1', model: m}\n"
        "  c: {base_url: 'http:///v1', model: m}\n"
        "  d: {base_url: 'http://h:${PORT:-x}/v1', model: m}\n"
        "agents: {x: {backend: a}}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:3:17  backends.a.base_url: 'http://h:port/v1' is not a valid URL (Port "
        "could not be cast to integer value as 'port'); e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:4:17  backends.b.base_url: 'http://[::1/v1' is not a valid URL (Invalid "
        "IPv6 URL); e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:5:17  backends.c.base_url: 'http:///v1' has no host; e.g. "
        "http://localhost:8000/v1.\n"
        "  agents.yaml:6:17  backends.d.base_url: 'http://h:x/v1' is not a valid URL (Port "
        "could not be cast to integer value as 'x'); e.g. http://localhost:8000/v1.",
        id="unusable-urls",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "tools:\n"
        "  a: {function: 'builtins:dict'}\n"
        "  b: {function: 'math:hypot'}\n"
        "  c: {function: 'json:dumps'}\n"
        "  d: {function: 'json:dumps', strict: false}\n"
        "agents: {x: {tools: [a, b, c, d]}}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:4:17  tools.a.function: `builtins:dict` is a class; a tool is a function "
        "(write one that uses the class).\n"
        "  agents.yaml:5:17  tools.b.function: `math:hypot` has no Python signature to describe "
        "to the model (a built-in?); wrap it in a function with typed parameters.\n"
        "  agents.yaml:6:17  tools.c.function: `json:dumps` takes **kwargs, which a strict schema "
        "cannot describe; name its parameters, or set `strict: false` on the tool.",
        id="tool-signatures",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "tools:\n"
        "  t: {function: 'json:loads', name: transfer_to_w, strict: false}\n"
        "agents:\n"
        "  x: {tools: [t], handoffs: [w, a-b, a_b, Writer, writer]}\n"
        "  w: {}\n"
        "  a-b: {}\n"
        "  a_b: {}\n"
        "  Writer: {}\n"
        "  writer: {}\n"
        "  y: {backend: !!binary aGk=}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:6:30   agents.x.handoffs[0]: the handoff to 'w' reaches the model as tool "
        "'transfer_to_w', which is already used by tools[0]; rename one of them.\n"
        "  agents.yaml:6:38   agents.x.handoffs[2]: the handoff to 'a_b' reaches the model as "
        "tool 'transfer_to_a_b', which is already used by handoffs[1]; rename one of them.\n"
        "  agents.yaml:6:51   agents.x.handoffs[4]: the handoff to 'writer' reaches the model as "
        "tool 'transfer_to_writer', which is already used by handoffs[3]; rename one of them.\n"
        "  agents.yaml:12:16  agents.y.backend: binary values (!!binary) are not supported; write "
        "the text itself.",
        id="handoff-tool-names-and-binary-values",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "tools:\n"
        "  weather: {function: 'mytools.weather:get_weather'}\n"
        "  other_weather: {function: 'mytools.other:get_weather'}\n"
        "  place: {function: 'mytools.weather:geocode', name: get_weather}\n"
        "agents:\n"
        "  a:\n"
        "    tools: [weather, other_weather, place]\n"
        "    agent_tools: [{agent: b, name: weather}, {agent: b-c}, {agent: b_c}]\n"
        "  b: {}\n"
        "  b-c: {}\n"
        "  b_c: {}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:9:22   agents.a.tools[1]: tool name 'get_weather' is already used by "
        "tools[0]; give one of them another `name:`.\n"
        "  agents.yaml:9:37   agents.a.tools[2]: tool name 'get_weather' is already used by "
        "tools[0]; give one of them another `name:`.\n"
        "  agents.yaml:10:60  agents.a.agent_tools[2]: tool name 'b_c' is already used by "
        "agent_tools[1]; give one of them another `name:`.",
        id="same-tool-name-twice",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "tools:\n"
        "  search: {function: 'mytools.weather:get_weather', name: web-search}\n"
        "  shout: {function: 'mytools.other:shout'}\n"
        "agents:\n"
        "  a:\n"
        "    agent_tools: [b.c, {agent: b.c, name: 'ask b'}]\n"
        "  b.c: {}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:4:59  tools.search.name: tool name 'web-search' is not valid for gpt-oss: "
        "use letters, digits and _ only, e.g. 'web_search' (other characters break vLLM's "
        "harmony parser, vllm#23567).\n"
        "  agents.yaml:5:21  tools.shout.function: tool name '<lambda>' (the function's name) is "
        "not valid for gpt-oss: set `name:` to letters, digits and _ only, e.g. 'lambda' (other "
        "characters break vLLM's harmony parser, vllm#23567).\n"
        "  agents.yaml:8:19  agents.a.agent_tools[0]: tool name 'b.c' (from the agent's name) is "
        "not valid for gpt-oss: set `name:` to letters, digits and _ only, e.g. 'b_c' (other "
        "characters break vLLM's harmony parser, vllm#23567).\n"
        "  agents.yaml:8:43  agents.a.agent_tools[1].name: tool name 'ask b' is not valid for "
        "gpt-oss: use letters, digits and _ only, e.g. 'ask_b' (other characters break vLLM's "
        "harmony parser, vllm#23567).",
        id="tool-names-harmony-rejects",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    output_schema:\n"
        "      type: object\n"
        "      properties: {n: {type: integr}}\n",
        "agents.yaml:7:30: agents.a.output_schema.properties.n.type: invalid JSON Schema: "
        "'integr' is not valid under any of the given schemas.",
        id="output-schema",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "agents:\n"
        "  a: {output_schema: {type: object, required: yes}}\n",
        "agents.yaml:4:47: agents.a.output_schema.required: invalid JSON Schema: True is not of "
        "type 'array'.",
        id="output-schema-required",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a: {{handoffs: [a, b]}}\n  b: {{handoffs: [a]}}\n",
        "agents.yaml:4:18: agents.a.handoffs[0]: an agent cannot hand off to itself.",
        id="self-handoff",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\n"
        "agents:\n"
        "  a: {agent_tools: [b]}\n"
        "  b: {agent_tools: [c]}\n"
        "  c: {agent_tools: [{agent: a, name: back}]}\n"
        "  d: {agent_tools: [d]}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:6:21  agents.c.agent_tools[0]: agents used as tools form a cycle that can "
        "never finish: a -> b -> c -> a; remove one of these `agent_tools` entries.\n"
        "  agents.yaml:7:21  agents.d.agent_tools[0]: agents used as tools form a cycle that can "
        "never finish: d -> d; remove one of these `agent_tools` entries.",
        id="agent-tool-cycles",
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
        f"version: 1\n{_BACKEND}\n"
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
        f"version: 1\n{_BACKEND}\n"
        "agents:\n"
        "  a: {description: !pick [x], instructions: <<, max_turns: 2026-11-22}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:4:20  agents.a.description: unsupported YAML tag '!pick'.\n"
        "  agents.yaml:4:60  agents.a.max_turns: expected an integer, got a value of type date.",
        id="collection-tag-and-dates",
    ),
    pytest.param(
        f"version: 1\n{_BACKEND}\nagents:\n  a: {{[1]: x, <<: 5}}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:4:7   agents.a: a mapping key must be a plain string, not a list.\n"
        "  agents.yaml:4:19  agents.a: `<<` can only merge mappings (or a list of mappings) into "
        "this one.",
        id="odd-keys",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors(text: str, expected: str) -> None:
    assert _error(text) == expected.replace("{base}", str(PROJECT))


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    message = _error(
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


def test_tool_import_failures_are_placed_at_the_function_value(tmp_path: Path) -> None:
    _write(tmp_path, {"boom/__init__.py": "", "boom/bad.py": "import not_a_module_xyz\n"})
    message = _error(
        f"""\
        version: 1
        {_BACKEND}
        tools:
          bad: {{function: boom.bad:f}}
          typo: {{function: "boom.badd:f"}}
          malformed: {{function: "boom.bad"}}
        agents: {{a: {{tools: [bad, typo, malformed]}}}}
        """,
        base=tmp_path,
    )
    assert message == (
        "agents.yaml has 3 problems:\n"
        f"  agents.yaml:4:19  tools.bad.function: cannot import `boom.bad` (looked in {tmp_path} "
        "and on sys.path): ModuleNotFoundError: No module named 'not_a_module_xyz'.\n"
        f"  agents.yaml:5:20  tools.typo.function: cannot import `boom.badd` (looked in "
        f"{tmp_path} and on sys.path): ModuleNotFoundError: No module named 'boom.badd'.\n"
        "  agents.yaml:6:25  tools.malformed.function: expected 'package.module:function', "
        "got 'boom.bad'."
    )


def test_an_instructions_file_that_is_not_text(tmp_path: Path) -> None:
    (tmp_path / "prompt.md").write_bytes(b"\xff\xfe\x00")
    message = _error(
        f"version: 1\n{_BACKEND}\nagents: {{a: {{instructions_file: prompt.md}}}}\n", base=tmp_path
    )
    assert message == (
        f"agents.yaml:3:33: agents.a.instructions_file: instructions file {tmp_path}/prompt.md "
        "is not UTF-8 text."
    )


def test_handoff_cycles_between_agents_are_allowed() -> None:
    config = _parse(
        f"""\
        version: 1
        {_BACKEND}
        agents:
          triage: {{handoffs: [billing, support]}}
          billing: {{handoffs: [triage]}}
          support: {{handoffs: [billing, triage]}}
        """
    )
    assert config.spec.agents["billing"].handoffs == ["triage"]


def test_yaml_anchors_and_merge_keys() -> None:
    config = _parse(
        f"""\
        version: 1
        {_BACKEND}
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
    assert _error("\n".join(lines)) == (
        "agents.yaml: the document has more than 100000 values once aliases are expanded."
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
    config = _parse(
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


# --- schema -------------------------------------------------------------------------------------


def test_the_json_schema_is_valid_and_accepts_the_example() -> None:
    schema = config_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(EXAMPLE))) == []
    assert list(validator.iter_errors(yaml.safe_load(EXAMPLE.replace("tools:\n", "tool:\n"))))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "agents.yaml"
    backend = schema["$defs"]["BackendSpec"]["properties"]
    assert backend["api_key"]["default"] == "EMPTY"
    assert backend["base_url"]["pattern"] == r"^(https?://|\$\{)"
    assert backend["timeout_s"] == {
        "title": "Timeout S",
        "default": 120,
        "description": "Time limit of one model call (one attempt), in seconds, streaming "
        "included.",
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "string", "pattern": r"\$\{"},
        ],
    }


def test_every_field_in_the_json_schema_has_a_description() -> None:
    schema = config_json_schema()
    models = {"RuntimeConfig": schema, **schema["$defs"]}
    missing = [
        f"{model}.{name}"
        for model, definition in models.items()
        for name, prop in definition["properties"].items()
        if not prop.get("description")
    ]
    assert missing == []
    assert all(definition.get("additionalProperties") is False for definition in models.values())
    assert set(schema["$defs"]) == {
        "AgentSpec",
        "AgentToolSpec",
        "BackendSpec",
        "DefaultsSpec",
        "EngineSpec",
        "ModelSettingsSpec",
        "SessionsSpec",
        "ToolSpec",
        "TracingSpec",
    }


@pytest.mark.parametrize(
    ("model", "data"),
    [
        pytest.param(
            BackendSpec, {"base_url": "http://x", "model": "m", "modle": "x"}, id="backend"
        ),
        pytest.param(AgentSpec, {"instructions": "x", "tool": []}, id="agent"),
        pytest.param(ModelSettingsSpec, {"temprature": 1}, id="model-settings"),
        pytest.param(AgentSpec, {"instructions": "a", "instructions_file": "b"}, id="both"),
    ],
)
def test_the_models_reject_unknown_keys_and_conflicts(
    model: type[Any], data: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_the_models_are_frozen() -> None:
    spec = ModelSettingsSpec(temperature=0.5)
    with pytest.raises(ValidationError):
        spec.temperature = 1.0
    assert RuntimeConfig.model_config.get("extra") == "forbid"


# --- property: mutations end in a Config or a ConfigError ----------------------------------------

_VALID = yaml.safe_load((PROJECT / "agents.yaml").read_text(encoding="utf-8"))

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    # No ':' in random text: a tool reference must never name a real module by accident.
    st.text(alphabet="abcxyz_-.$ {}/ 0", max_size=12),
    st.sampled_from(
        [
            "local",
            "big",
            "get_weather",
            "geocode",
            "weather-haiku",
            "planner",
            "triage",
            "low",
            "auto",
            "required",
            "${HOME_XYZ}",
            "${X:-1}",
            "$${Y}",
            "${",
            "http://h/v1",
            "mytools.weather:get_weather",
            "mytools.weather:UNITS",
            "mytools.nope:f",
            "prompts/haiku.md",
            "prompts/nope.md",
        ]
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "agent", "name", "x", "tools"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)


@st.composite
def _mutated_documents(draw: st.DrawFn) -> str:
    document = yaml.safe_load(yaml.safe_dump(_VALID))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(helpers.paths(document)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if action == "replace":
            parent[path[-1]] = draw(_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            key = draw(st.sampled_from(["extra", "name", "tools", "backend", "temprature"]))
            parent[path[-1]][key] = draw(_values)
    text = yaml.safe_dump(document, sort_keys=False)
    if draw(st.booleans()):  # and sometimes break the text itself
        at = draw(st.integers(min_value=0, max_value=len(text)))
        insert = draw(st.sampled_from(["\n", ":", "- ", "{", "]", "'", "\t", "&a ", "*a"]))
        text = text[:at] + insert + text[at:]
    return text


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(_mutated_documents())
def test_mutated_documents_end_in_a_config_or_a_config_error(text: str) -> None:
    try:
        config = parse_config(text, base_dir=PROJECT, environ={"X": "1"})
    except ConfigError as exc:
        assert exc.problems
        assert all(problem.message for problem in exc.problems)
    else:
        assert isinstance(config, Config)
