"""`list`, `validate` and `schema`: the fast commands, through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_runtime.cli import cli
from tests import helpers

ROOT = helpers.ROOT
PROJECT = helpers.PROJECT / "agents.yaml"


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> object:
    runner = CliRunner()
    return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def test_list(tmp_path: Path) -> None:
    result = invoke("list", "-c", str(ROOT / "agents.yaml"))
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert result.output == (  # type: ignore[attr-defined]
        "AGENT            BACKEND  MODEL               TOOLS\n"
        "weather-haiku    local    openai/gpt-oss-20b  get_weather\n"
        "weather-compare  local    openai/gpt-oss-20b  geocode, current_weather\n"
        "concierge        local    openai/gpt-oss-20b  → weather-haiku, → weather-compare\n"
    )


def test_list_json_and_config_from_the_environment(tmp_path: Path) -> None:
    result = invoke("list", "--json", env={"AGENT_RUNTIME_CONFIG": str(PROJECT)})
    rows = json.loads(result.output)  # type: ignore[attr-defined]
    assert [row["name"] for row in rows] == [
        "weather-haiku",
        "toolbox",
        "chat-haiku",
        "triage",
        "planner",
        "extractor",
        "patient",
    ]
    assert rows[2]["api"] == "chat_completions"
    assert rows[4]["agent_tools"] == ["weather_haiku"]
    assert rows[3]["handoffs"] == ["weather-haiku", "toolbox"]


def test_validate_ok_and_json() -> None:
    result = invoke("validate", "-c", str(PROJECT))
    assert result.output == f"{PROJECT}: OK (7 agents, 9 tools, 2 backends)\n"  # type: ignore[attr-defined]
    result = invoke("validate", "-c", str(PROJECT), "--json")
    assert json.loads(result.output) == {  # type: ignore[attr-defined]
        "ok": True,
        "file": str(PROJECT),
        "agents": 7,
        "tools": 9,
        "backends": 2,
        "warnings": [],
    }


@pytest.mark.parametrize(
    ("url", "fixed"),
    [
        pytest.param("http://localhost:8000", "http://localhost:8000/v1", id="root"),
        pytest.param("http://localhost:8000/", "http://localhost:8000/v1", id="root-slash"),
        pytest.param("http://gpu:8000/vllm", "http://gpu:8000/vllm/v1", id="prefix"),
    ],
)
def test_validate_warns_about_a_vllm_base_url_without_v1(
    tmp_path: Path, url: str, fixed: str
) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\nbackends:\n"
        f"  local: {{base_url: '{url}', model: m}}\n"
        "  other: {kind: openai, base_url: 'https://api.example.com', model: m}\n"
        "  fine: {base_url: 'http://localhost:8000/v1/', model: m}\n"
        "agents:\n  a: {instructions: hi, backend: local}\n"
    )
    result = CliRunner().invoke(cli, ["validate", "-c", str(path)])
    assert result.exit_code == 0
    assert result.stdout == f"{path}: OK (1 agent, 0 tools, 3 backends)\n"
    message = f"{url!r} does not end in /v1, where vLLM serves its API; set it to {fixed}."
    assert result.stderr == f"Warning: {path}: backends.local.base_url: {message}\n"
    result = CliRunner().invoke(cli, ["validate", "-c", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["warnings"] == [
        {
            "file": str(path),
            "line": None,
            "column": None,
            "path": "backends.local.base_url",
            "message": message,
        }
    ]


BROKEN = """\
version: 1
backends:
  local: {base_url: "http://localhost:8000/v1"}
agents:
  a:
    tools: [nope]
"""


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(BROKEN)
    result = CliRunner().invoke(cli, ["validate", "-c", str(path)])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {path} has 2 problems:\n"
        f"  {path}:3:3   backends.local: missing required field `model`.\n"
        f"  {path}:6:13  agents.a.tools[0]: unknown tool 'nope' (no tools are declared).\n"
    )
    result = CliRunner().invoke(cli, ["validate", "-c", str(path), "--json"])
    assert result.exit_code == 2
    problems = json.loads(result.output)["problems"]
    assert [(p["line"], p["path"]) for p in problems] == [
        (3, "backends.local"),
        (6, "agents.a.tools[0]"),
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "agents.yaml"
    for command in (["list"], ["validate"], ["run", "a", "hi"]):
        result = CliRunner().invoke(cli, [*command, "-c", str(missing)])
        assert result.exit_code == 2
        assert result.output == (
            f"Error: no agents.yaml at {missing}. Create one, pass -c/--config PATH, or set "
            "AGENT_RUNTIME_CONFIG.\n"
        )


def test_schema(tmp_path: Path) -> None:
    result = invoke("schema")
    schema = json.loads(result.output)  # type: ignore[attr-defined]
    assert schema["properties"]["version"]["const"] == 1 or "version" in schema["properties"]
    target = tmp_path / "agents.schema.json"
    CliRunner().invoke(cli, ["schema", "-o", str(target)])
    assert json.loads(target.read_text()) == schema


def test_schema_of_eval_files_checks_them() -> None:
    import jsonschema
    import yaml

    schema = json.loads(invoke("schema", "--eval").output)  # type: ignore[attr-defined]
    assert schema["title"] == "agent-runtime eval file"
    validator = jsonschema.Draft202012Validator(schema)
    example = yaml.safe_load((ROOT / "evals" / "weather.yaml").read_text())
    assert list(validator.iter_errors(example)) == []
    assert list(validator.iter_errors({**example, "repeat": "${REPEATS}"})) == []
    typo = {"cases": [{"name": "a", "inptu": "hi"}]}
    messages = sorted(error.message for error in validator.iter_errors(typo))
    assert messages == [
        "'input' is a required property",
        "Additional properties are not allowed ('inptu' was unexpected)",
    ]


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "agents.schema.json").read_text())
    assert committed == json.loads(invoke("schema").output)  # type: ignore[attr-defined]


def test_fast_commands_do_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from agent_runtime.cli import cli\n"
        "for args in (['--help'], ['list', '-c', sys.argv[1]], ['validate', '-c', sys.argv[1]],"
        " ['schema']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "print(sorted(m for m in ('agents', 'openai', 'mcp') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "agents.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
