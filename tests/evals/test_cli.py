"""`agent-runtime eval` through its real entry point: the table, JSON, JUnit XML, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agent_runtime.cli import cli
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers
from tests.evals.test_run import HAIKU, TOKYO_CASSETTE

PROJECT = helpers.PROJECT / "agents.yaml"

CASES = """\
agent: weather-haiku
cases:
  - name: tokyo
    input: "What's the weather in Tokyo?"
    mock: tokyo.yaml
    expect: {tool_calls: [{name: get_weather, arguments: {city: Tokyo}}]}
  - name: paris
    input: "What's the weather in Tokyo?"
    mock: tokyo.yaml
    expect: {output_contains: Paris}
"""


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    (tmp_path / "tokyo.yaml").write_text(TOKYO_CASSETTE)
    path = tmp_path / "cases.yaml"
    path.write_text(CASES)
    return path


def invoke(*args: str, state: Path, mock: MockVLLM | None = None) -> Result:
    env = {"STATE_DIR": str(state), "MOCK_URL": mock.url if mock else "http://127.0.0.1:9/v1"}
    return CliRunner().invoke(cli, ["eval", "-c", str(PROJECT), *args], env=env)


def test_the_example_eval_file_passes_offline(tmp_path: Path) -> None:
    for name in ("agents.yaml", "tools", "evals"):
        source = helpers.ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    # A process of its own: the copied `tools` package is not the one this process imported.
    result = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "eval", "evals/weather.yaml"],
        cwd=tmp_path,
        env={**os.environ, "VLLM_BASE_URL": "http://127.0.0.1:9/v1"},  # never called: replays
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 0 failed" in result.stdout


def test_a_failed_case_exits_1_with_the_reason_in_the_table(cases: Path, tmp_path: Path) -> None:
    result = invoke(str(cases), "-k", "paris", state=tmp_path)
    assert (result.exit_code, result.stderr) == (1, "")
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "case",
        "┃",
        "result",
        "┃",
        "why",
        "┃",
        "turns",
        "┃",
        "tokens",
        "┃",
        "time",
    ]
    assert lines[2].startswith("paris │ FAIL   │ output_contains: 'Paris' not in the ")
    assert lines[-1].startswith("0 passed, 1 failed in ")


def test_json_on_stdout_and_junit_xml_to_a_file(cases: Path, tmp_path: Path) -> None:
    junit = tmp_path / "out" / "eval.xml"
    junit.parent.mkdir()
    result = invoke(str(cases), "--json", "--junit", str(junit), state=tmp_path)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(case["name"], case["passed"]) for case in report["cases"]] == [
        ("tokyo", True),
        ("paris", False),
    ]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert [case.get("name") for case in suite] == ["tokyo", "paris"]
    failure = suite.find("testcase[@name='paris']/failure")
    assert failure is not None
    assert failure.get("message") == report["cases"][1]["why"]


def test_every_case_passing_exits_0(cases: Path, tmp_path: Path) -> None:
    result = invoke(str(cases), "-k", "tok*", "--json", state=tmp_path)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["cases_passed"] == 1


def test_mock_runs_cases_without_a_cassette_offline(tmp_path: Path) -> None:
    path = tmp_path / "auto.yaml"
    path.write_text(
        "cases:\n"
        "  - name: haiku\n"
        "    agent: weather-haiku\n"
        "    input: Hi\n"
        "    expect: {tool_calls: [{name: get_weather}]}\n"
        "  - {name: json, agent: extractor, input: Hi, expect: {output_schema: true}}\n"
    )
    result = invoke(str(path), "--mock", "--json", state=tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cases_passed"] == 2


def test_base_url_sends_the_cases_to_another_server(tmp_path: Path) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(
        "agent: weather-haiku\ncases: [{name: live, input: Hi, expect: {output_contains: Tokyo}}]\n"
    )
    with MockVLLM([Reply(reasoning="Answer.", final=HAIKU)]) as server:
        result = invoke(str(path), "--base-url", server.url, "--json", state=tmp_path)
    assert result.exit_code == 0, result.output
    assert server.model_requests[0].user_texts == ["Hi"]


def test_record_then_replay(tmp_path: Path) -> None:
    path = tmp_path / "rec.yaml"
    path.write_text(
        "agent: weather-haiku\n"
        'cases: [{name: tokyo, input: "What\'s the weather in Tokyo?", mock: rec/tokyo.yaml}]\n'
    )
    # Without the cassette, the file cannot be replayed.
    missing = invoke(str(path), state=tmp_path)
    assert missing.exit_code == 2
    assert missing.stderr.startswith(f"Error: {path}:2:68: cases[0].mock: no cassette at ")
    script = [
        Reply(reasoning="Call get_weather.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Write it.", final=HAIKU),
    ]
    with MockVLLM(script) as server:
        recorded = invoke(str(path), "--record", "--base-url", server.url, state=tmp_path)
    assert recorded.exit_code == 0, recorded.output
    assert (tmp_path / "rec" / "tokyo.yaml").is_file()
    replayed = invoke(str(path), state=tmp_path)
    assert replayed.exit_code == 0, replayed.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--mock", "--record"],
            "Error: --mock and --record do not go together: --record calls the model server to"
            " write cassettes, --mock keeps every case offline\n",
            id="mock-and-record",
        ),
        pytest.param(
            ["-k", "berlin"],
            "Error: no case matches -k 'berlin' (the cases: 'tokyo', 'paris')\n",
            id="no-case",
        ),
    ],
)
def test_usage_errors_exit_2(cases: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(str(cases), *args, state=tmp_path)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_bad_eval_files_exit_2_with_every_problem(cases: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: weather-haiku\ncases:\n  - {name: x, input: Hi, expct: {}}\n")
    worse = tmp_path / "worse.yaml"
    worse.write_text("agent: haiku\ncases: [{name: y, input: Hi}]\n")
    result = invoke(str(cases), str(bad), str(worse), state=tmp_path)
    assert (result.exit_code, result.stdout) == (2, "")
    width = len(f"{worse}:1:8")
    assert result.stderr == (
        f"Error: {bad} has 2 problems:\n"
        f"  {f'{bad}:3:26':<{width}}  cases[0].expct: unknown field. Did you mean `expect`?\n"
        f"  {f'{worse}:1:8':<{width}}  agent: unknown agent 'haiku'. Did you mean"
        " 'chat-haiku'?\n"
    )


def test_a_missing_agents_yaml_exits_2(cases: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", "-c", str(tmp_path / "none.yaml"), str(cases)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no agents.yaml at ")


def test_eval_help_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from agent_runtime.cli import cli\n"
        "assert CliRunner().invoke(cli, ['eval', '--help']).exit_code == 0\n"
        "heavy = ('agents', 'openai', 'agent_runtime.evals')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_junit_file_that_cannot_be_written_exits_1(cases: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "eval.xml"
    result = invoke(str(cases), "-k", "tokyo", "--json", "--junit", str(target), state=tmp_path)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["passed"] is True
    assert result.stderr == (
        f"Error: cannot write the JUnit report to {target}: No such file or directory\n"
    )
