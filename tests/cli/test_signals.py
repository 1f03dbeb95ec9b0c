"""SIGTERM and SIGHUP end `run` and `chat` as Ctrl-C does: the run's input kept in the
session, `run_end` in the trace, the model server started for a `launch: auto` backend
stopped, exit code 143 / 129. Real signals to real processes; the backend's server is a real
child process (tests/launch/fake_vllm.py) whose model call can be kept in flight."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pexpect
import pytest

from agent_runtime.sessions import SessionStore
from tests import helpers
from tests.launch.helpers import backend_yaml, free_port, port_is_free, process_gone, wait_until

FAKE_VLLM = Path(__file__).resolve().parents[1] / "launch" / "fake_vllm.py"
COMMAND = [sys.executable, "-m", "agent_runtime"]
SIGNALS = [
    pytest.param(signal.SIGTERM, id="sigterm"),
    pytest.param(signal.SIGHUP, id="sighup"),
]


@dataclass
class Project:
    """A project whose one backend (`launch: auto`) is served by the fake vLLM."""

    root: Path
    config: Path
    port: int

    @property
    def server_state(self) -> Path:
        return self.root / "server"

    def asked(self, number: int) -> Path:
        """Written when the server got model request `number` (from 1)."""
        return self.server_state / f"asked-{number}"

    @property
    def server_pid(self) -> int:
        return int((self.server_state / "server.pid").read_text())

    def session(self, session: str) -> list[Any]:
        store = SessionStore(self.root / "state" / "sessions.sqlite3")
        try:
            return asyncio.run(store.load(session))
        finally:
            store.close()

    def trace(self) -> list[dict[str, Any]]:
        lines = (self.root / "state" / "traces.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def assert_stopped_cleanly(self, session: str, prompt: str) -> None:
        """The server is gone, the run's input kept, its end traced as cancelled."""
        wait_until(lambda: process_gone(self.server_pid), timeout=30)
        assert port_is_free(self.port)
        assert self.session(session) == [{"role": "user", "content": prompt}]
        records = self.trace()
        assert [r["type"] for r in records] == ["run_start", "run_end"]
        assert records[1]["outcome"] == "cancelled"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    port = free_port()
    command = [sys.executable, str(FAKE_VLLM), "{port}", str(tmp_path / "server")]
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "sessions: {path: state/sessions.sqlite3}\n"
        "tracing: {path: state/traces.jsonl}\n"
        "backends:\n"
        + backend_yaml("local", port, command)
        + "agents:\n  worker: {instructions: Answer., backend: local}\n"
    )
    return Project(tmp_path, config, port)


def start(*args: str, stdin: int | IO[Any] | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; killed at its end if still running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    def there() -> bool:
        assert process.poll() is None, process.communicate()
        return path.exists()

    wait_until(there, timeout=60)


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("output", ["streamed", "json"])
def test_run_stopped_by_a_signal_during_a_model_call(
    project: Project,
    processes: list[subprocess.Popen[str]],
    signum: signal.Signals,
    output: str,
) -> None:
    json_flag = ["--json"] if output == "json" else []
    process = start(
        "run", "-c", str(project.config), "worker", "wait", "--session", "s", *json_flag
    )
    processes.append(process)
    wait_for(project.asked(1), process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert stdout == ""
    assert stderr.endswith(f"\nStopped by {signum.name}.\n")
    project.assert_stopped_cleanly("s", "wait")


def test_run_stopped_while_its_server_starts(
    project: Project, processes: list[subprocess.Popen[str]]
) -> None:
    process = start("run", "-c", str(project.config), "worker", "hi")
    processes.append(process)
    wait_for(project.server_state / "server.pid", process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert stderr.endswith("\nStopped by SIGTERM.\n")
    wait_until(lambda: process_gone(project.server_pid), timeout=30)


def test_piped_chat_stopped_by_sigterm_during_an_answer(
    project: Project, processes: list[subprocess.Popen[str]]
) -> None:
    process = start(
        "chat", "-c", str(project.config), "worker", "--session", "c", stdin=subprocess.PIPE
    )
    processes.append(process)
    assert process.stdin is not None
    process.stdin.write("please wait\n")
    process.stdin.flush()  # stdin stays open: more lines could come
    wait_for(project.asked(1), process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout) == (143, "")
    assert stderr.endswith("\nStopped by SIGTERM.\n")
    project.assert_stopped_cleanly("c", "please wait")


def test_piped_chat_stopped_by_sighup_while_waiting_for_a_line(
    project: Project, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    with (tmp_path / "stdout").open("w") as out:
        process = subprocess.Popen(
            [*COMMAND, "chat", "-c", str(project.config), "worker", "--session", "c"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    processes.append(process)
    assert process.stdin is not None
    process.stdin.write("hello\n")
    process.stdin.flush()
    wait_for(project.asked(1), process)
    wait_until(lambda: (tmp_path / "stdout").read_text() == "ok\n", timeout=30)
    # The chat now waits for a line that does not come: stdin is open, nobody writes.
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 129
    assert stderr.endswith("\nStopped by SIGHUP.\n")
    wait_until(lambda: process_gone(project.server_pid), timeout=30)
    stored = project.session("c")
    assert stored[0] == {"role": "user", "content": "hello"}
    assert len(stored) == 2  # and the answer


def test_terminal_chat_ends_on_sigterm_while_ctrl_c_only_stops_the_answer(
    project: Project,
) -> None:
    child = pexpect.spawn(
        sys.executable,
        [*COMMAND[1:], "chat", "-c", str(project.config), "worker", "--session", "t"],
        env={**os.environ, "TERM": "xterm", "NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1"},
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    try:
        child.expect("session t")
        child.sendline("first, wait")
        wait_until(project.asked(1).exists, timeout=60)
        child.sendintr()  # Ctrl-C: the answer stops, the chat goes on
        child.expect("Cancelled.")
        child.sendline("second, wait")
        wait_until(project.asked(2).exists, timeout=60)
        child.kill(signal.SIGTERM)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 143
    assert "Stopped by SIGTERM." in (child.before or "")
    wait_until(lambda: process_gone(project.server_pid), timeout=30)
    stored = project.session("t")
    assert stored == [
        {"role": "user", "content": "first, wait"},
        {"role": "user", "content": "second, wait"},
    ]


def test_run_in_a_terminal_that_hangs_up(project: Project) -> None:
    """A closed terminal (an SSH session gone): the kernel sends SIGHUP, and every write to the
    terminal fails from then on."""
    pid, master = pty.fork()
    if pid == 0:  # the child: `run` with the pty as its controlling terminal
        os.execv(
            sys.executable,
            [sys.executable, *COMMAND[1:], "run", "-c", str(project.config), "worker", "wait"],
        )
    output = bytearray()
    try:
        deadline = time.monotonic() + 60
        while not project.asked(1).exists():  # the model call is in flight
            assert time.monotonic() < deadline, bytes(output)
            if select.select([master], [], [], 0.1)[0]:
                output += os.read(master, 4096)  # keep the terminal drained
    finally:
        os.close(master)  # hang up (nobody else may hold the terminal open)
    status = 0

    def ended() -> bool:
        nonlocal status
        done, status = os.waitpid(pid, os.WNOHANG)
        return done == pid

    try:
        wait_until(ended, timeout=60)
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    assert os.waitstatus_to_exitcode(status) == 129, bytes(output)
    wait_until(lambda: process_gone(project.server_pid), timeout=30)
    assert port_is_free(project.port)
    records = project.trace()
    assert [r["type"] for r in records] == ["run_start", "run_end"]
    assert records[1]["outcome"] == "cancelled"


# -- a prompt read from stdin ---------------------------------------------------------------


def reading_stdin(pid: int) -> bool:
    """Whether the process's main thread is blocked reading its stdin (a pipe)."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        syscall = Path(f"/proc/{pid}/syscall").read_text()
    except OSError:
        return False
    return "pipe_read" in wchan or syscall.startswith("0 0x0 ")


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [
        pytest.param(signal.SIGINT, 130, "Interrupted.", id="ctrl-c"),
        pytest.param(signal.SIGTERM, 143, "Stopped by SIGTERM.", id="sigterm"),
    ],
)
def test_signal_while_reading_the_prompt_from_stdin(
    processes: list[subprocess.Popen[str]], signum: signal.Signals, code: int, message: str
) -> None:
    process = start(
        "run", "-c", str(helpers.PROJECT / "agents.yaml"), "weather-haiku", "-",
        stdin=subprocess.PIPE,
    )  # fmt: skip
    processes.append(process)
    wait_until(lambda: reading_stdin(process.pid), timeout=60)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert (process.returncode, stdout, stderr) == (code, "", f"\n{message}\n")


def test_sighup_stays_ignored_under_nohup(
    project: Project, processes: list[subprocess.Popen[str]]
) -> None:
    process = subprocess.Popen(
        ["nohup", *COMMAND, "run", "-c", str(project.config), "worker", "wait"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    wait_for(project.asked(1), process)
    process.send_signal(signal.SIGHUP)  # ignored: had it stopped the run, the exit would be 129
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert stderr.endswith("\nStopped by SIGTERM.\n")
    wait_until(lambda: process_gone(project.server_pid), timeout=30)
