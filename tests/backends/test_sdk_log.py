"""The Agents SDK's own log line for a failed model call (`Error getting response`, logger
`openai.agents`): runs of a `Runtime` report the failure with their own error only, the SDK's
logging is otherwise untouched, and the CLI shows its one error line."""

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


def sdk_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    return [r for r in caplog.record_tuples if r[0].startswith("openai.agents")]


async def test_a_failed_run_logs_only_the_runtimes_error(
    mock: MockVLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error = await failed_run(mock, tmp_path)
    assert "answered 400: bad request" in str(error)
    assert [r for r in sdk_records(caplog) if r[1] >= logging.ERROR] == []
    # Nothing else of the SDK's logging was touched: its debug lines still come through.
    assert sdk_records(caplog)


async def test_a_failed_stream_logs_only_the_runtimes_error(
    mock: MockVLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mock.add(fault(status=400, message="bad request"))
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(PROJECT, environ=environ) as runtime:
        with pytest.raises(BackendError, match="answered 400: bad request"):
            async for _ in runtime.stream("weather-haiku", "hi"):
                pass
    assert [r for r in sdk_records(caplog) if r[1] >= logging.ERROR] == []


async def test_the_sdk_line_outside_a_run_is_left_alone(
    mock: MockVLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await failed_run(mock, tmp_path)
    sdk = logging.getLogger("openai.agents")
    # Another use of the SDK in the same process, and any other SDK error inside a run.
    sdk.error("Error getting response (request_id: None)")
    sdk.error("Tool call failed")
    assert [r[2] for r in sdk_records(caplog)] == [
        "Error getting response (request_id: None)",
        "Tool call failed",
    ]


async def test_the_filter_is_installed_once(mock: MockVLLM, tmp_path: Path) -> None:
    for _ in range(3):
        await failed_run(mock, tmp_path)
    names = [type(f).__name__ for f in logging.getLogger("openai.agents").filters]
    assert names.count("_SdkModelErrorFilter") == 1


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
