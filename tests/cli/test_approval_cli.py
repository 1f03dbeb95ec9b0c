"""`run` and `chat` with tools that need approval: asked on a terminal (pexpect), approved by
`--yes`, rejected without a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner

from agent_runtime.cli import cli
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers
from tests.test_approval import deleted, project

REJECTED_NO_TERMINAL = (
    "Error: the user did not approve `delete_file`: nobody could approve it: no terminal to "
    "ask (run with --yes to approve). Do not call it again for this; answer without it, or "
    "ask the user."
)


@pytest.fixture
def mock() -> Iterator[MockVLLM]:
    with MockVLLM() as server:
        yield server


def script(mock: MockVLLM) -> None:
    mock.add(
        Reply(reasoning="Delete it.", calls=(call("delete_file", path="a.txt"),)),
        Reply(reasoning="Done.", final="All done."),
    )


def run_cli(path: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["run", "-c", str(path), "keeper", *args], input=input)


def test_yes_approves_every_call(mock: MockVLLM, tmp_path: Path) -> None:
    script(mock)
    result = run_cli(project(tmp_path, mock), "Delete a.txt", "--yes")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "All done.\n", "")
    assert deleted(tmp_path) == ["a.txt"]
    assert helpers.outputs_sent(mock, 1) == ["deleted a.txt"]


def test_without_a_terminal_calls_are_rejected(mock: MockVLLM, tmp_path: Path) -> None:
    script(mock)
    result = run_cli(project(tmp_path, mock), "Delete a.txt", input="y\n")
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "All done.\n",
        "Not approved: `delete_file` (agent keeper) needs approval and there is no terminal "
        "to ask; run with --yes to approve tool calls.\n",
    )
    assert deleted(tmp_path) == []
    assert helpers.outputs_sent(mock, 1) == [REJECTED_NO_TERMINAL]


def test_json_with_yes(mock: MockVLLM, tmp_path: Path) -> None:
    script(mock)
    result = run_cli(project(tmp_path, mock), "Delete a.txt", "--json", "--yes")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["final_output"] == "All done."
    assert "pending_approvals" not in document
    outputs = [item["output"] for item in document["items"] if item["type"] == "tool_result"]
    assert outputs == ["deleted a.txt"]


def test_chat_without_a_terminal_rejects(mock: MockVLLM, tmp_path: Path) -> None:
    script(mock)
    path = project(tmp_path, mock)
    # chat reads stdin's file descriptor: a real process with a pipe
    result = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "chat", "-c", str(path), "keeper"],
        input="Delete a.txt\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "All done.\n"
    assert "Not approved: `delete_file` (agent keeper)" in result.stderr
    assert helpers.outputs_sent(mock, 1) == [REJECTED_NO_TERMINAL]


def spawn(path: Path, *args: str) -> pexpect.spawn:  # type: ignore[type-arg]
    return pexpect.spawn(
        sys.executable,
        ["-m", "agent_runtime", *args[:1], "-c", str(path), *args[1:]],
        env={**os.environ, "TERM": "xterm", "NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1"},
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )


def test_run_asks_on_the_terminal_and_sends_the_reason(mock: MockVLLM, tmp_path: Path) -> None:
    script(mock)
    child = spawn(project(tmp_path, mock), "run", "keeper", "Delete a.txt")
    try:
        child.expect_exact("Approval needed: `delete_file` (agent keeper)")
        child.expect_exact('arguments: {"path":"a.txt"}')
        child.expect_exact("Run it? [y/n] ")
        child.sendline("maybe")
        child.expect_exact("Please answer y or n.")
        child.expect_exact("Run it? [y/n] ")
        child.sendline("n")
        child.expect_exact("Reason (optional): ")
        child.sendline("it is my thesis")
        child.expect_exact("All done.")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert deleted(tmp_path) == []
    assert helpers.outputs_sent(mock, 1) == [
        "Error: the user did not approve `delete_file`: it is my thesis. Do not call it again "
        "for this; answer without it, or ask the user."
    ]


def test_chat_asks_on_the_terminal(mock: MockVLLM, tmp_path: Path) -> None:
    script(mock)
    child = spawn(project(tmp_path, mock), "chat", "keeper", "--session", "t")
    try:
        child.expect_exact("session t")
        child.sendline("Delete a.txt")
        child.expect_exact("Approval needed: `delete_file` (agent keeper)")
        child.expect_exact("Run it? [y/n] ")
        child.sendline("y")
        child.expect_exact("All done.")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert deleted(tmp_path) == ["a.txt"]
    assert helpers.outputs_sent(mock, 1) == ["deleted a.txt"]
