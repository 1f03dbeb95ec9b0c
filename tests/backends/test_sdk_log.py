"""The Agents SDK's own log line for a failed model call (`Error getting response`, logger
`openai.agents`): where it comes from, how a library user drops it, and that the CLI never shows
it next to its own error."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime import BackendError, Runtime
from agent_runtime.testing import MockVLLM, fault
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"
SDK_LINE = ("openai.agents", logging.ERROR, "Error getting response")


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


async def failed_run(mock: MockVLLM, state: Path) -> BackendError:
    mock.add(fault(status=400, message="bad request"))
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(state)}
    async with Runtime.from_yaml(PROJECT, environ=environ) as runtime:
        with pytest.raises(BackendError) as error:
            await runtime.run("weather-haiku", "hi")
    return error.value


async def test_the_sdk_logs_each_failed_model_call(
    mock: MockVLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    error = await failed_run(mock, tmp_path)
    assert "answered 400: bad request" in str(error)
    assert SDK_LINE in caplog.record_tuples


async def test_the_readmes_line_drops_it_and_keeps_the_runtimes_error(
    mock: MockVLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What the README tells a library user to do (caplog restores the level afterwards).
    caplog.set_level(logging.CRITICAL, logger="openai.agents")
    error = await failed_run(mock, tmp_path)
    assert "answered 400: bad request" in str(error)
    assert [r for r in caplog.record_tuples if r[0].startswith("openai.agents")] == []


def test_the_cli_shows_only_its_own_error(tmp_path: Path) -> None:
    with MockVLLM([fault(status=400, message="bad request")]) as mock:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "agent_runtime",
                "run",
                "-c",
                str(PROJECT),
                "weather-haiku",
                "hi",
            ],
            env={"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path), "PATH": ""},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert process.returncode == 3
    assert process.stdout == ""
    [line] = process.stderr.splitlines()
    assert line.startswith(f"Error: the model server of backend `mock` at {mock.url} ")
    assert line.endswith("bad request")
