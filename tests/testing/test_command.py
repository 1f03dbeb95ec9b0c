"""The mock as its own process: `python -m agent_runtime.testing` and `agent-runtime mock`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner

from agent_runtime.cli import cli
from tests import helpers

EXAMPLE = helpers.EXAMPLES / "weather-haiku.mock.yaml"


@contextmanager
def mock_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_runtime.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_serves_a_script_and_stops_cleanly_on_ctrl_c() -> None:
    with mock_process("--script", str(EXAMPLE)) as (process, url):
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/v1")
        first = httpx2.post(f"{url}/responses", json={"input": "x"}).json()
        assert first["output"][1]["name"] == "get_weather"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0
    assert stderr == (
        f"mock vLLM 0.33.0 serving openai/gpt-oss-20b at {url} (2 scripted replies); "
        "Ctrl-C stops.\n"
    )


def test_imitates_the_vllm_release_asked_for() -> None:
    with mock_process("--tool-loop", "--vllm-version", "0.22") as (process, url):
        root = url.removesuffix("/v1")
        assert httpx2.get(f"{root}/version").json() == {"version": "0.22.1"}
        bad = httpx2.post(f"{url}/responses", json={"model": "nope", "input": "x"}).json()
        assert "Valid aliases" not in bad["error"]["message"]  # a 0.33 addition
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert stderr.startswith("mock vLLM 0.22.1 serving")
    with mock_process("--tool-loop") as (process, url):
        root = url.removesuffix("/v1")
        assert httpx2.get(f"{root}/version").json() == {"version": "0.33.0"}
        bad = httpx2.post(f"{url}/responses", json={"model": "nope", "input": "x"}).json()
        assert "Valid aliases: openai/gpt-oss-20b." in bad["error"]["message"]


def test_an_unknown_vllm_version_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["mock", "--tool-loop", "--vllm-version", "0.21"])
    assert result.exit_code == 2
    assert "Invalid value for '--vllm-version': '0.21' is not one of '0.33', '0.22'." in (
        result.output
    )


def test_tool_loop_and_sigterm() -> None:
    with mock_process("--tool-loop", "--loop-steps", "0", "--model", "m") as (process, url):
        body = httpx2.post(f"{url}/chat/completions", json={"messages": []}).json()
        assert body["choices"][0]["message"]["content"] == "Done: "
        assert body["model"] == "m"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
        assert process.returncode == 0


def test_doctor_passes_against_a_bare_tool_loop(tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends:\n  local: {base_url: 'http://127.0.0.1:9/v1', model: openai/gpt-oss-20b}\n"
        "agents:\n  a: {instructions: Hi., backend: local}\n"
    )
    with mock_process("--tool-loop") as (_, url):
        result = CliRunner().invoke(cli, ["doctor", "-c", str(config), "--base-url", url])
    assert result.exit_code == 0, result.output
    assert "✓ responses tool call — function_call get_time({})\n" in result.output
    assert "✓ chat tool call — tool_calls get_time({})\n" in result.output
    assert result.output.endswith("All 7 checks passed.\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            [],
            "nothing to answer with: give --script FILE, --tool-loop or --auto, or a script "
            "and one of them",
            id="none",
        ),
        pytest.param(
            ["--host", "0.0.0.0", "--tool-loop"],
            "MockVLLM binds to loopback only, not '0.0.0.0'",
            id="host",
        ),
        pytest.param(["--tool-loop", "--loop-arguments", "[1]"], None, id="arguments"),
    ],
)
def test_usage_errors(args: list[str], message: str | None) -> None:
    result = CliRunner().invoke(cli, ["mock", "--port", "0", *args])
    assert result.exit_code == 2
    if message is not None:
        assert result.output.endswith(f"Error: {message}\n")
    else:
        assert "Invalid value for '--loop-arguments': must be a JSON object" in result.output


def test_bad_script_file(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text("- finall: x\n")
    result = CliRunner().invoke(cli, ["mock", "--port", "0", "--script", str(script)])
    assert result.exit_code == 2
    assert result.output.endswith(
        f"Error: {script} is not a valid mock script (1 problem):\n"
        f"  {script}: reply[0].finall: Extra inputs are not permitted\n"
    )


def test_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["mock", "--tool-loop", "--port", str(port)])
    assert result.exit_code == 2
    assert result.output.endswith(
        f"Error: MockVLLM cannot bind 127.0.0.1:{port}: Address already in use; choose another "
        "port with --port (0 picks a free one)\n"
    )


def test_help_lists_the_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "mock      Run the mock vLLM server." in result.output
    version = CliRunner().invoke(cli, ["--version"])
    assert version.output == "agent-runtime, version 0.1.0\n"
