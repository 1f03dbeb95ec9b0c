"""The README's commands and its example test are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent_runtime.config import parse_config

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
    assert ci[-1] == "uv run --no-sync python scripts/bench.py --quick --check"


def test_testing_your_agents_example_runs(pytester: pytest.Pytester) -> None:
    section = README.split("### With pytest", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_example=code.group(1))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--block-network")
    result.assert_outcomes(passed=1)


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
