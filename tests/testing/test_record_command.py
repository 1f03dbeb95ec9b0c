"""`agent-runtime mock --record CASSETTE --upstream URL`: the recording proxy as a command."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai import OpenAI

from agent_runtime.cli import cli
from agent_runtime.testing import MockVLLM, Reply, call, load_script


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_records_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    cassette = tmp_path / "weather.yaml"
    script = [
        Reply(reasoning="Call the tool.", calls=[call("get_weather", city="Oslo")]),
        Reply(final="Snow."),
    ]
    with MockVLLM(script) as upstream:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "agent_runtime.testing", "--port", "0"),
                *("--record", str(cassette), "--upstream", upstream.url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            client = OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
            first = client.responses.create(model=upstream.model, input="Weather in Oslo?")
            assert first.output[-1].type == "function_call"
            assert len(load_script(cassette)) == 1  # saved as soon as the call was answered
            second = client.chat.completions.create(
                model=upstream.model, messages=[{"role": "user", "content": "And now?"}]
            )
            assert second.choices[0].message.content == "Snow."
            process.send_signal(stop)
            _, stderr = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0
    assert stderr == (
        f"recording the model calls to {upstream.url} into {cassette} (saved after each call) "
        f"at {url}; Ctrl-C stops.\n"
        f"2 model calls recorded in {cassette}.\n"
    )
    replies = load_script(cassette)
    assert [r.request.user if r.request else None for r in replies] == [
        ("Weather in Oslo?",),
        ("And now?",),
    ]
    assert replies[0].calls == (call("get_weather", city="Oslo"),)
    assert replies[1].final == "Snow."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--record", "c.yaml"],
            "--record needs --upstream URL: the vLLM server to record, e.g. "
            "--upstream http://gpu-box:8000/v1",
            id="no-upstream",
        ),
        pytest.param(
            ["--upstream", "http://127.0.0.1:9/v1"],
            "--upstream needs --record CASSETTE: the file to record the answers into",
            id="no-cassette",
        ),
        pytest.param(
            ["--record", "c.yaml", "--upstream", "http://127.0.0.1:9/v1", "--tool-loop", "--auto"],
            "--record answers every call from --upstream, so it does not take --tool-loop, --auto",
            id="conflicts",
        ),
        pytest.param(
            ["--record", "c.yaml", "--upstream", "gpu-box:8000/v1"],
            "--upstream: the upstream must be an http(s) base URL like http://gpu-box:8000/v1, "
            "not 'gpu-box:8000/v1'",
            id="bad-url",
        ),
        pytest.param(
            ["--record", "no/such/folder/c.yaml", "--upstream", "http://127.0.0.1:9/v1"],
            "cannot record into 'no/such/folder/c.yaml': the folder 'no/such/folder' does not "
            "exist",
            id="no-folder",
        ),
    ],
)
def test_usage_errors(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["mock", "--port", "0", *args])
    assert result.exit_code == 2
    assert result.output.endswith(f"Error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_an_upstream_that_is_down_stops_it_at_once(tmp_path: Path) -> None:
    port = closed_port()
    cassette = tmp_path / "c.yaml"
    upstream = f"http://127.0.0.1:{port}/v1"
    result = CliRunner().invoke(
        cli, ["mock", "--port", "0", "--record", str(cassette), "--upstream", upstream]
    )
    assert result.exit_code == 3
    assert result.output == (
        f"Error: cannot reach the upstream server {upstream}: connection refused. Start vLLM "
        "there, or give its OpenAI base URL (ending in /v1) with --upstream.\n"
    )
    assert not cassette.exists()


def test_help_names_the_options() -> None:
    result = CliRunner().invoke(cli, ["mock", "--help"])
    assert result.exit_code == 0
    assert "--record CASSETTE" in result.output
    assert "--upstream URL" in result.output
