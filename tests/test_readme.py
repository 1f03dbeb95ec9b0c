"""The README's commands and its example test are the real ones."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_runtime.cli import cli
from agent_runtime.config import parse_config
from agent_runtime.testing import load_script

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["scripts/demo", "scripts/test"]
    assert README.index("```bash") < README.index("## ")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line[:1] != "#"]
    assert "scripts/test" in ci  # the README's test command, as it is written there
    benches = [
        "uv run --no-sync python scripts/bench.py --quick --check",
        "uv run --no-sync python scripts/bench_serve.py --quick --check",
    ]
    assert ci[-2:] == benches  # after the tests


def test_testing_your_agents_example_runs(pytester: pytest.Pytester) -> None:
    section = README.split("### With pytest", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    assert "asyncio_mode = auto" in section.split("```python", 1)[0]
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makefile(
        ".yaml",
        agents="version: 1\n"
        "backends:\n  local: {base_url: 'http://localhost:8000/v1', model: openai/gpt-oss-20b}\n"
        "tools:\n  get_weather: {function: 'weather_tools:get_weather'}\n"
        "agents:\n"
        "  weather-haiku:\n"
        "    instructions: You only respond in haikus.\n"
        "    backend: local\n"
        "    tools: [get_weather]\n",
    )
    pytester.makepyfile(
        weather_tools='''
        def get_weather(city: str) -> dict[str, object]:
            """Current weather for a city.

            Args:
                city: The city name, e.g. "Tokyo".
            """
            return {"city": city, "condition": "sunny", "temperature_c": 21}
        ''',
        test_example=code.group(1),
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--agent-runtime-block-network"
    )
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".agent-runtime").exists()  # the trace went to tmp_path


def test_the_offline_quickstart_can_be_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = README.split("### Offline, with the mock server", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    mock_line, run_line = (line.split("#")[0].strip() for line in block.group(1).splitlines())
    prefix = ["uv", "run", "agent-runtime"]
    mock_args, run_args = shlex.split(mock_line.removesuffix("&")), shlex.split(run_line)
    assert mock_args[:3] == prefix
    assert run_args[:3] == prefix
    # Runs write state next to agents.yaml: a copy of it goes to tmp_path (`tools` is this
    # repository's package, found on the test's import path).
    shutil.copy(ROOT / "agents.yaml", tmp_path / "agents.yaml")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    mock = subprocess.Popen(
        [sys.executable, "-m", "agent_runtime", *mock_args[3:], "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert mock.stdout is not None
        url = mock.stdout.readline().strip()
        # The weather tool runs in this process, where the network guard blocks Open-Meteo.
        first, second = (
            CliRunner().invoke(cli, [*run_args[3:], "--base-url", url]) for _ in range(2)
        )
    finally:
        mock.kill()
        mock.communicate()
    assert (first.exit_code, second.exit_code) == (0, 0), second.output
    script = load_script(ROOT / "examples" / "weather-haiku.mock.yaml")
    assert first.stdout == f"{script[-1].final}\n"
    assert second.stdout.startswith("Done: ")


def test_agents_yaml_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_readme_example_agents_yaml_is_valid(tmp_path: Path) -> None:
    section = README.split("## agents.yaml", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    config = parse_config(example.group(1), base_dir=ROOT, environ={})  # the repo's tools/
    assert list(config.spec.agents) == ["weather-haiku"]
