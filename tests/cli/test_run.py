"""`agent-runtime run` through its real entry point: output, errors and exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent_runtime.cli import cli
from agent_runtime.testing import Fault, MockVLLM, Reply, call, fault
from tests import helpers

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROJECT = helpers.PROJECT / "agents.yaml"
HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."
WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'


def haiku_script() -> list[Reply]:
    return [
        Reply(reasoning="Call get_weather.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Sunny. Write it.", final=HAIKU),
    ]


@pytest.fixture
def mock() -> Iterator[MockVLLM]:
    with MockVLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sessions and traces of the test project go to a fresh folder for each test."""
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def run_cli(mock: MockVLLM | None, *args: str, input: str | None = None, **env: str):  # type: ignore[no-untyped-def]
    environment = {"MOCK_URL": mock.url if mock else "http://127.0.0.1:9/v1", **env}
    return CliRunner().invoke(cli, ["run", "-c", str(PROJECT), *args], env=environment, input=input)


def test_run_in_a_pipe_prints_only_the_answer(mock: MockVLLM) -> None:
    mock.add(*haiku_script())
    result = run_cli(mock, "weather-haiku", "Weather in Tokyo?")
    assert (result.exit_code, result.stdout, result.stderr) == (0, HAIKU + "\n", "")


def test_run_in_a_pipe_with_events_on_stderr(mock: MockVLLM) -> None:
    mock.add(*haiku_script())
    result = run_cli(mock, "weather-haiku", "Weather?", "--show-reasoning", "-v")
    assert result.stdout == HAIKU + "\n"
    assert result.stderr == (
        "[reasoning] Call get_weather.\n"
        '[tool] get_weather {"city":"Tokyo"}\n'
        f"[result] get_weather {WEATHER}\n"
        "[reasoning] Sunny. Write it.\n"
    )


def test_run_json(mock: MockVLLM) -> None:
    mock.add(*haiku_script())
    result = run_cli(mock, "weather-haiku", "Weather?", "--json")
    document = json.loads(result.stdout)
    assert set(document) == {"final_output", "items", "usage", "turns", "trace_id", "agent"}
    assert document["final_output"] == HAIKU
    assert [item["type"] for item in document["items"]] == [
        "reasoning",
        "tool_call",
        "tool_result",
        "reasoning",
        "message",
    ]
    assert document["turns"] == 2
    assert document["usage"]["requests"] == 2
    assert document["trace_id"].startswith("trace_")


def test_run_prompt_from_stdin_and_session_and_max_turns(mock: MockVLLM) -> None:
    mock.add(Reply(final="first"), Reply(final="second"))
    assert (
        run_cli(mock, "weather-haiku", "-", "--session", "cli-s", input="hello\n").stdout
        == "first\n"
    )
    assert run_cli(mock, "weather-haiku", "again", "--session", "cli-s").stdout == "second\n"
    assert mock.model_requests[1].user_texts == ["hello\n", "again"]
    assert [m.text for m in mock.model_requests[1].messages if m.channel == "final"] == ["first"]


def test_run_terminal_rendering(mock: MockVLLM) -> None:
    mock.add(*haiku_script())
    result = run_cli(
        mock,
        "weather-haiku",
        "Weather?",
        TTY_COMPATIBLE="1",
        TTY_INTERACTIVE="0",
        NO_COLOR="1",
        COLUMNS="200",
    )
    assert result.exit_code == 0
    assert ANSI.sub("", result.output) == (
        "Call get_weather.\n"
        '→ get_weather {"city":"Tokyo"}\n'
        f"← get_weather {WEATHER}\n"
        "Sunny. Write it.\n"
        f"{HAIKU}\n"
    )


def test_run_terminal_hides_reasoning_on_request(mock: MockVLLM) -> None:
    mock.add(*haiku_script())
    result = run_cli(
        mock, "weather-haiku", "Weather?", "--hide-reasoning",
        TTY_COMPATIBLE="1", TTY_INTERACTIVE="0", NO_COLOR="1", COLUMNS="200",
    )  # fmt: skip
    assert "Call get_weather." not in result.output
    assert ANSI.sub("", result.output).endswith(f"{HAIKU}\n")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ["weather-hiaku", "hi"],
            2,
            f"Error: {PROJECT}: agents: no agent named 'weather-hiaku'. Did you mean "
            "'weather-haiku'? Agents: weather-haiku, toolbox, chat-haiku, triage, planner, "
            "extractor, patient.\n",
            id="unknown-agent",
        ),
        pytest.param(
            ["weather-haiku", "  "],
            2,
            "Error: the prompt is empty; give it as an argument or pipe it in with -\n",
            id="empty-prompt",
        ),
        pytest.param(
            ["weather-haiku", "hi", "--max-turns", "0"],
            2,
            None,
            id="bad-option",
        ),
    ],
)
def test_run_usage_errors(mock: MockVLLM, args: list[str], code: int, message: str | None) -> None:
    result = run_cli(mock, *args)
    assert result.exit_code == code
    if message is not None:
        assert result.output == message
    else:
        assert "Invalid value for '--max-turns'" in result.output


def test_run_unreachable_server_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    result = run_cli(None, "weather-haiku", "hi", "--base-url", url)
    assert result.exit_code == 3
    assert result.output == (
        f"Error: cannot reach the model server of backend `mock` at {url} (connection refused; "
        "no retries: max_retries is 0). Start one there (`vllm serve openai/gpt-oss-20b`) or "
        "point `base_url` (--base-url) at a running server.\n"
    )


def test_run_server_error_exits_3(mock: MockVLLM) -> None:
    mock.add(fault(status=500, message="boom"))
    result = run_cli(mock, "weather-haiku", "hi")
    assert result.exit_code == 3
    assert result.output == (
        f"Error: the model server of backend `mock` at {mock.url} failed: HTTP 500: boom (no "
        "retries: max_retries is 0)\n"
    )


@pytest.mark.parametrize("agent", ["weather-haiku", "chat-haiku"], ids=["responses", "chat"])
@pytest.mark.parametrize("slash", ["", "/"], ids=["bare", "slash"])
def test_run_says_how_to_fix_a_base_url_without_v1(agent: str, slash: str) -> None:
    with MockVLLM() as mock:
        url = mock.root_url + slash
        result = CliRunner().invoke(
            cli, ["run", "-c", str(PROJECT), agent, "hi"], env={"MOCK_URL": url}
        )
    assert result.exit_code == 3
    backend = "mock" if agent == "weather-haiku" else "chat"
    assert result.output == (
        f"Error: the model server of backend `{backend}` at {url} answered 404: Not Found. "
        f"Set the backend's `base_url:` to {mock.url} (vLLM serves the API under /v1)\n"
    )


def test_run_404_under_v1_is_the_servers_own(mock: MockVLLM) -> None:
    mock.add(fault(status=404, message="The model `x` does not exist."))
    result = run_cli(mock, "weather-haiku", "hi")
    assert result.exit_code == 3
    assert result.output == (
        f"Error: the model server of backend `mock` at {mock.url} answered 404: The model `x` "
        "does not exist.\n"
    )


def test_run_max_turns_exits_4(mock: MockVLLM) -> None:
    mock.add(*[Reply(calls=[call("add", a=1, b=2)]) for _ in range(2)])
    result = run_cli(mock, "toolbox", "loop", "--max-turns", "2")
    assert result.exit_code == 4
    assert result.output.startswith("Error: agent `toolbox` used all its turns")


def test_debug_shows_the_traceback(mock: MockVLLM) -> None:
    mock.add(fault(status=500, message="boom"))
    result = run_cli(mock, "weather-haiku", "hi", "--debug")
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.output
    assert result.output.rstrip().endswith("failed: HTTP 500: boom (no retries: max_retries is 0)")


def test_ctrl_c_cancels_the_request_and_exits_130(tmp_path: Path) -> None:
    with MockVLLM([Reply(final="late", fault=Fault(delay_s=30))]) as mock:
        process = subprocess.Popen(
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
            env={**os.environ, "MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            mock.wait_until(lambda m: bool(m.model_requests), timeout=60)
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
            mock.wait_until(lambda m: m.model_requests[0].disconnected)
        finally:
            if process.poll() is None:
                process.kill()
    assert (process.returncode, stdout, stderr) == (130, "", "\nInterrupted.\n")


def test_run_overrides_reach_the_server(tmp_path: Path) -> None:
    with MockVLLM([Reply(final="ok")], served_model_names=["my-model"], api_key="k1") as mock:
        result = CliRunner().invoke(
            cli,
            [
                "run", "-c", str(PROJECT), "weather-haiku", "hi",
                "--base-url", mock.url, "--model", "my-model", "--api-key", "k1",
            ],
            env={"MOCK_URL": "http://127.0.0.1:9/v1"},
        )  # fmt: skip
    assert (result.exit_code, result.output) == (0, "ok\n")
    request = mock.model_requests[0]
    assert request.json["model"] == "my-model"
    assert request.headers["authorization"] == "Bearer k1"


def test_run_other_failures_exit_1(mock: MockVLLM) -> None:
    mock.add(Reply(final='{"city": "Tokyo"}'), Reply(final='{"city": "Tokyo"}'))
    result = run_cli(mock, "extractor", "Tokyo")
    assert result.exit_code == 1
    assert result.output == (
        "Error: agent `extractor` answered 2 time(s) without matching its output_schema "
        "(output_retries=1); last: (root): 'temperature_c' is a required property. Raise "
        "`output_retries` for the agent in agents.yaml, or say in its instructions what the "
        "answer must look like.\n"
    )


def test_prompt_bytes_that_are_not_utf8_become_replacement_characters(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(Reply(final="one"), Reply(final="two"))
    command = [sys.executable, "-m", "agent_runtime", "run", "-c", str(PROJECT), "weather-haiku"]
    environment = {**os.environ, "MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}

    def run(prompt: bytes, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*map(os.fsencode, command), prompt, b"--session", b"s"],
            input=stdin,
            env=environment,
            capture_output=True,
            timeout=120,
            check=False,
        )

    from_argv = run(b"caf\xe9 \xff?")
    assert (from_argv.returncode, from_argv.stdout, from_argv.stderr) == (0, b"one\n", b"")
    from_stdin = run(b"-", stdin=b"na\xefve \xed\xa0\x80\n")
    assert (from_stdin.returncode, from_stdin.stdout, from_stdin.stderr) == (0, b"two\n", b"")
    # Sent, stored in the session (and resent) and traced as valid text.
    assert mock.model_requests[1].user_texts == [
        "caf\ufffd \ufffd?",
        "na\ufffdve \ufffd\ufffd\ufffd\n",
    ]
    trace = (tmp_path / "traces.jsonl").read_text(encoding="utf-8")
    assert "caf\ufffd \ufffd?" in trace


@pytest.mark.parametrize("command", ["run", "chat"])
@pytest.mark.parametrize("session", ["", "  "])
def test_an_empty_session_id_is_a_usage_error(command: str, session: str) -> None:
    args = [command, "-c", str(PROJECT), "weather-haiku", *(["hi"] if command == "run" else [])]
    result = CliRunner().invoke(cli, [*args, "--session", session], input="hi\n")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '--session': the session ID is empty. Give one (e.g. "
        "--session work), or leave out --session.\n"
    )
