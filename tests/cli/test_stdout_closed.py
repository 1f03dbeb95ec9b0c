"""Every command whose reader goes away (`agent-runtime doctor | head -3`) ends quietly with
141, as a command killed by SIGPIPE would: no `Error:` line, no traceback, nothing left running.

The reading end of stdout is closed before the command starts, so its first write fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runtime.testing import MockVLLM, Reply
from tests import helpers
from tests.launch.helpers import MOCK, backend_yaml, free_port, port_is_free, write_project

PROJECT = helpers.PROJECT / "agents.yaml"
EXAMPLE = helpers.ROOT / "agents.yaml"  # its tools import nothing heavy: quick to load


@pytest.fixture
def mock() -> Iterator[MockVLLM]:
    with MockVLLM() as server:
        yield server


def with_stdout_closed(
    *args: str, env: dict[str, str] | None = None, input: str = ""
) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # nobody will ever read: every write to stdout fails with EPIPE
    try:
        return subprocess.run(
            [sys.executable, "-m", "agent_runtime", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            input=input,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["list", "-c", str(EXAMPLE)], id="list"),
        pytest.param(["validate", "-c", str(EXAMPLE)], id="validate"),
        pytest.param(["validate", "-c", str(EXAMPLE), "--json"], id="validate-json"),
        pytest.param(["schema"], id="schema"),
        pytest.param(["--help"], id="help"),
        pytest.param(["--version"], id="version"),
        pytest.param(["run", "--help"], id="run-help"),
    ],
)
def test_fast_commands(args: list[str], tmp_path: Path) -> None:
    result = with_stdout_closed(*args, env={"STATE_DIR": str(tmp_path)})
    assert (result.returncode, result.stderr) == (141, "")


@pytest.mark.parametrize("args", [[], ["--json"]], ids=["lines", "json"])
def test_doctor(mock: MockVLLM, args: list[str]) -> None:
    result = with_stdout_closed(
        "doctor", "-c", str(EXAMPLE), *args, env={"VLLM_BASE_URL": mock.url}
    )
    assert (result.returncode, result.stderr) == (141, "")


@pytest.mark.parametrize("args", [[], ["--json"]], ids=["answer", "json"])
def test_run(mock: MockVLLM, tmp_path: Path, args: list[str]) -> None:
    mock.add(Reply(final="Sunny."))
    environment = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    result = with_stdout_closed(
        "run", "-c", str(PROJECT), "weather-haiku", "Weather?", *args, env=environment
    )
    assert (result.returncode, result.stderr) == (141, "")
    assert len(mock.model_requests) == 1


def test_piped_chat(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(Reply(final="Hello."), Reply(final="Again."))
    environment = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    result = with_stdout_closed(
        "chat", "-c", str(PROJECT), "weather-haiku", env=environment, input="hi\nagain\n"
    )
    assert (result.returncode, result.stderr) == (141, "")
    assert len(mock.model_requests) == 1  # it stopped at the first answer it could not show


def test_up_stops_the_server_it_started(tmp_path: Path) -> None:
    port = free_port()
    config = write_project(tmp_path, backend_yaml("local", port, [*MOCK, "--tool-loop"]))
    result = with_stdout_closed("up", "-c", str(config))
    assert result.returncode == 141, result.stderr
    assert re.search(r"Error|Traceback", result.stderr) is None, result.stderr
    assert port_is_free(port)
