"""`agent-runtime chat`, piped and in a real terminal (a pseudo-terminal driven by pexpect),
and Ctrl-C in the middle of a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from agent_runtime.testing import Fault, MockVLLM, Reply, call
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"
PROMPT = ">\x08"  # prompt_toolkit draws "> " as ">" and a cursor move


@pytest.fixture
def mock() -> Iterator[MockVLLM]:
    with MockVLLM() as server:
        yield server


def environment(mock: MockVLLM, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MOCK_URL": mock.url, "STATE_DIR": str(tmp_path / "state")}


def chat(
    mock: MockVLLM, tmp_path: Path, lines: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent_runtime", "chat", "-c", str(PROJECT), *args],
        input=lines,
        capture_output=True,
        text=True,
        env=environment(mock, tmp_path),
        timeout=120,
        check=False,
    )


def test_piped_chat_remembers_and_resets(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(Reply(final="Hello Ada."), Reply(final="You are Ada."), Reply(final="I don't know."))
    result = chat(
        mock,
        tmp_path,
        "I am Ada.\nWho am I?\n/reset\nWho am I?\n/exit\nnever sent\n",
        "weather-haiku",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello Ada.\nYou are Ada.\nI don't know.\n"
    assert result.stderr == "Conversation cleared.\n"
    second, third = mock.model_requests[1], mock.model_requests[2]
    assert second.user_texts == ["I am Ada.", "Who am I?"]
    assert third.user_texts == ["Who am I?"]
    assert len(mock.model_requests) == 3


def test_piped_chat_ends_at_end_of_input_and_continues_a_session(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(Reply(final="one"), Reply(final="two"))
    assert chat(mock, tmp_path, "first\n", "weather-haiku", "--session", "s").stdout == "one\n"
    assert chat(mock, tmp_path, "second\n", "weather-haiku", "--session", "s").stdout == "two\n"
    assert mock.model_requests[1].user_texts == ["first", "second"]


def test_piped_chat_stops_on_a_server_error_with_its_exit_code(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(Reply(fault=Fault(status=503, message="busy")))
    result = chat(mock, tmp_path, "hi\nagain\n", "weather-haiku")
    assert result.returncode == 3
    assert result.stderr == (
        f"Error: the model server of backend `mock` at {mock.url} failed: HTTP 503: busy (no "
        "retries: max_retries is 0)\n"
    )


def test_unknown_agent_and_commands(mock: MockVLLM, tmp_path: Path) -> None:
    result = chat(mock, tmp_path, "", "weather-hiku")
    assert result.returncode == 2
    assert "no agent named 'weather-hiku'. Did you mean 'weather-haiku'?" in result.stderr
    result = chat(mock, tmp_path, "/help\n", "weather-haiku")
    assert result.returncode == 0
    assert result.stderr == (
        "Unknown command '/help'. /reset starts over, /exit or Ctrl-D quits.\n"
    )


def test_terminal_chat_with_line_editing(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(
        Reply(reasoning="Call it.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Write.", final="Sunny haiku"),
        Reply(final="Again sunny"),
    )
    child = pexpect.spawn(
        sys.executable,
        [
            *("-m", "agent_runtime", "chat", "-c", str(PROJECT)),
            *("weather-haiku", "--session", "t"),
        ],
        env={
            **environment(mock, tmp_path),
            "TERM": "xterm",
            "NO_COLOR": "1",
            "PROMPT_TOOLKIT_NO_CPR": "1",
        },
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    try:
        child.expect("session t")
        child.expect(PROMPT)
        child.sendline("Weather in Tokyo?")
        child.expect("get_weather")
        child.expect("Sunny haiku")
        child.expect(PROMPT)
        # Up-arrow brings back the last line (history); Enter sends it again.
        child.send("\x1b[A")
        child.expect("Weather in Tokyo\\?")
        child.sendline("")
        child.expect("Again sunny")
        child.expect(PROMPT)
        child.sendeof()  # Ctrl-D
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert mock.model_requests[2].user_texts == ["Weather in Tokyo?", "Weather in Tokyo?"]
    # The typed lines are kept beside the session store (STATE_DIR here), not in the project.
    assert "Weather in Tokyo?" in (tmp_path / "state" / "chat_history").read_text()
    assert not (helpers.PROJECT / ".agent-runtime").exists()


def test_ctrl_c_cancels_the_running_tool_and_exits_130(mock: MockVLLM, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    mock.add(Reply(reasoning="Wait.", calls=[call("hang", marker=str(marker))]))
    process = subprocess.Popen(
        [sys.executable, "-m", "agent_runtime", "run", "-c", str(PROJECT), "patient", "go"],
        env=environment(mock, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The tool calls GET /health once it runs.
        mock.wait_until(lambda m: any(r.path == "/health" for r in m.requests), timeout=60)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert (process.returncode, stdout, stderr) == (130, "", "\nInterrupted.\n")
    assert marker.read_text() == "cancelled"  # the tool saw its cancellation
    assert len(mock.model_requests) == 1  # and the run ended: no further model call


def test_piped_lines_that_are_not_utf8_become_replacement_characters(
    mock: MockVLLM, tmp_path: Path
) -> None:
    mock.add(Reply(final="one"), Reply(final="two"))
    result = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "chat", "-c", str(PROJECT), "weather-haiku"],
        input=b"caf\xe9\nna\xefve \xff\n",
        capture_output=True,
        env=environment(mock, tmp_path),
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"one\ntwo\n", b"")
    assert mock.model_requests[1].user_texts == ["caf\ufffd", "na\ufffdve \ufffd"]
