"""`agent-runtime serve` as a real process: the ready line, the official `openai` client against
it, draining on SIGTERM and SIGINT (runs in flight finish, new ones get 503, exit 0), the grace
period's end, `--workers`, `--api-key`, and the errors before serving (bad config, port in use).

The served agents' backend is a `MockVLLM` in this process; its first reply is held until the
test releases it, so that a run is in flight for as long as the test needs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from agent_runtime.testing import MockVLLM, RecordedRequest, Reply
from tests.launch.helpers import backend_yaml, free_port, process_gone, wait_until

COMMAND = [sys.executable, "-m", "agent_runtime", "serve"]
WAIT_S = 60
"""Bound of every wait on the server process."""
ACCESS = " INFO agent_runtime.server.access: "
READY = re.compile(r"^Serving 2 agents at (http://127\.0\.0\.1:(\d+))/v1 \(UI: \1/\)$")


@dataclass
class Held:
    """A mock reply held until `release` is set; `asked` is set when its request came."""

    asked: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, request: RecordedRequest) -> Reply:
        self.asked.set()
        await asyncio.to_thread(self.release.wait, WAIT_S)
        return Reply(reasoning="Took my time.", final="slow answer")


@pytest.fixture
def held() -> Iterator[Held]:
    held = Held()
    yield held
    held.release.set()  # the mock's thread never waits past the test


@pytest.fixture
def mock(held: Held) -> Iterator[MockVLLM]:
    with MockVLLM([held], default=Reply(final="quick answer")) as server:
        yield server
        held.release.set()  # before the mock stops, which waits for the held reply


@pytest.fixture
def config(tmp_path: Path, mock: MockVLLM) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "sessions: {path: state/sessions.sqlite3}\n"
        "tracing: {path: state/traces.jsonl}\n"
        f"backends: {{mock: {{base_url: '{mock.url}', model: openai/gpt-oss-20b, "
        "max_retries: 0}}\n"
        "agents:\n"
        "  slow: {description: Takes its time., instructions: Answer.}\n"
        "  quick: {instructions: Answer.}\n"
    )
    return path


class Served:
    """A running `agent-runtime serve` process; its stderr read on a thread."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, *args],
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        assert self.process.stderr is not None
        stream = self.process.stderr
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.stderr.append(line)
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def ready_line(self) -> str:
        """The first line on stderr (the ready line, or an error)."""
        line = self.lines.get(timeout=WAIT_S)
        assert line is not None, self.finish()
        return line

    def url(self, pattern: re.Pattern[str] = READY) -> str:
        line = self.ready_line()
        match = pattern.match(line)
        assert match, line
        return match.group(1)

    def finish(self) -> tuple[int, str]:
        """Wait for the process to end; its exit code and stderr but the access log."""
        self.process.wait(timeout=WAIT_S)
        self._reader.join(timeout=WAIT_S)
        self.close()
        return self.process.returncode, "".join(line for line in self.stderr if ACCESS not in line)

    @property
    def access_log(self) -> list[str]:
        """The access-log lines so far, without their time stamp."""
        return [line.split(ACCESS, 1)[1].rstrip("\n") for line in self.stderr if ACCESS in line]

    def close(self) -> None:
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None and not self._reader.is_alive():
                pipe.close()


@pytest.fixture
def processes() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        served.finish()


def serve(processes: list[Served], *args: str, env: dict[str, str] | None = None) -> Served:
    served = Served(*args, env=env)
    processes.append(served)
    return served


def client(url: str, key: str = "none") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=WAIT_S)


async def stream_text(api: openai.AsyncOpenAI, agent: str, text: str) -> tuple[str, list[str]]:
    """A streamed response's output text and its event types."""
    kinds: list[str] = []
    answer = ""
    stream = await api.responses.create(model=agent, input=text, stream=True)
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.completed":
            answer = event.response.output_text
    return answer, kinds


async def until_draining(api: openai.AsyncOpenAI) -> openai.APIStatusError:
    """Send new runs until one is refused as draining (the signal is handled asynchronously)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                await api.responses.create(model="quick", input="new run")
            except openai.APIStatusError as error:
                return error


async def not_completed(stream: asyncio.Task[tuple[str, list[str]]]) -> None:
    """The stream ended without `response.completed`: cut, or ended by another final event."""
    try:
        _, kinds = await asyncio.wait_for(stream, WAIT_S)
    except (openai.APIError, httpx2.HTTPError):
        return
    assert "response.completed" not in kinds


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, WAIT_S)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_a_signal_drains_runs_in_flight_finish_new_ones_get_503(
    config: Path, processes: list[Served], held: Held, signum: signal.Signals
) -> None:
    served = serve(processes, "-c", str(config), "--port", "0", "--drain-grace", "120")
    url = served.url()
    async with client(url) as api:
        assert [m.id for m in (await api.models.list()).data] == ["slow", "quick"]
        slow = asyncio.create_task(stream_text(api, "slow", "take your time"))
        await wait_for(held.asked)
        served.process.send_signal(signum)
        refused = await until_draining(api)
        assert refused.status_code == 503
        assert refused.response.headers["retry-after"] == "5"
        assert refused.body == {
            "message": "the server is shutting down and takes no new requests. Retry shortly "
            "(another instance may answer).",
            "type": "server_error",
            "param": None,
            "code": "draining",
        }
        assert served.process.poll() is None  # still serving the run in flight

        held.release.set()
        answer, kinds = await asyncio.wait_for(slow, WAIT_S)
        assert answer == "slow answer"
        assert kinds[0] == "response.created"
        assert kinds[-1] == "response.completed"
        code, stderr = await asyncio.to_thread(served.finish)
        assert code == 0, stderr
        # The slow run, and maybe a new run sent just before the signal was handled.
        assert re.fullmatch(
            f"Serving 2 agents at {url}/v1 \\(UI: {url}/\\)\n"
            r"Stopping: new runs get 503; (1 run|2 runs) in flight may go on for up to 120 s "
            r"\(signal again to stop now\)\.\n",
            stderr,
        ), stderr


async def test_runs_still_going_when_the_grace_period_ends_are_cancelled(
    config: Path, processes: list[Served], held: Held
) -> None:
    served = serve(processes, "-c", str(config), "--port", "0", "--drain-grace", "0.5")
    async with client(served.url()) as api:
        slow = asyncio.create_task(stream_text(api, "slow", "take your time"))
        await wait_for(held.asked)
        served.process.send_signal(signal.SIGTERM)
        # The held reply is never released.
        code, stderr = await asyncio.to_thread(served.finish)
        assert code == 0, stderr
        await not_completed(slow)


async def test_a_second_signal_stops_at_once(
    config: Path, processes: list[Served], held: Held
) -> None:
    served = serve(processes, "-c", str(config), "--port", "0", "--drain-grace", "600")
    async with client(served.url()) as api:
        slow = asyncio.create_task(stream_text(api, "slow", "take your time"))
        await wait_for(held.asked)
        served.process.send_signal(signal.SIGTERM)
        await until_draining(api)
        served.process.send_signal(signal.SIGTERM)
        code, stderr = await asyncio.to_thread(served.finish)  # long before the 600 s of grace
        assert code == 0, stderr
        await not_completed(slow)


async def test_workers_serve_the_same_port_and_drain_together(
    config: Path, processes: list[Served], held: Held
) -> None:
    held.release.set()
    served = serve(processes, "-c", str(config), "--port", "0", "--workers", "2")
    pattern = re.compile(READY.pattern.removesuffix("$") + ", 2 workers$")
    async with client(served.url(pattern)) as api:
        answers = await asyncio.gather(
            *(api.responses.create(model="quick", input=f"hi {n}") for n in range(6))
        )
        assert {a.output_text for a in answers} <= {"slow answer", "quick answer"}
        served.process.send_signal(signal.SIGTERM)
        code, stderr = await asyncio.to_thread(served.finish)
        assert code == 0, stderr
        assert stderr.endswith(
            ", 2 workers\nStopping: new runs get 503; runs in flight may go on for up to 30 s "
            "(signal again to stop now).\n"
        )


async def test_api_keys_from_the_command_line(config: Path, processes: list[Served]) -> None:
    # Only /v1/models is asked: no model request, so the held reply is not involved.
    served = serve(
        processes, "-c", str(config), "--port", "0", "--api-key", "k-one", "--api-key", "k-two"
    )
    url = served.url()
    async with client(url, "wrong") as api:
        with pytest.raises(openai.AuthenticationError):
            await api.models.list()
    for key in ("k-one", "k-two"):
        async with client(url, key) as api:
            assert len((await api.models.list()).data) == 2
    served.process.send_signal(signal.SIGTERM)
    code, _ = await asyncio.to_thread(served.finish)
    assert code == 0
    access = [
        re.sub(r" \d+\.\dms \d+B client=127\.0\.0\.1:\d+", "", line) for line in served.access_log
    ]
    assert access == [
        "GET /v1/models 401 key=- agent=-",
        "GET /v1/models 200 key=key_" + hashlib.sha256(b"k-one").hexdigest()[:8] + " agent=-",
        "GET /v1/models 200 key=key_" + hashlib.sha256(b"k-two").hexdigest()[:8] + " agent=-",
    ]
    assert "k-one" not in "".join(served.stderr)


def test_the_ready_line_says_when_the_ui_is_off(config: Path, processes: list[Served]) -> None:
    served = serve(processes, "-c", str(config), "--port", "0", "--no-ui")
    line = served.ready_line()
    assert re.fullmatch(r"Serving 2 agents at http://127\.0\.0\.1:\d+/v1 \(UI off\)", line)
    served.process.send_signal(signal.SIGTERM)
    assert served.finish()[0] == 0


async def test_the_serve_section_of_agents_yaml_is_used(
    config: Path, processes: list[Served]
) -> None:
    with config.open("a") as file:
        file.write("serve: {port: 0, ui: false, api_keys: ['${SERVE_KEY}']}\n")
    served = serve(processes, "-c", str(config), env={"SERVE_KEY": "sk-from-env"})
    url = served.url(re.compile(r"^Serving 2 agents at (http://127\.0\.0\.1:\d+)/v1 \(UI off\)$"))
    async with client(url) as api:
        with pytest.raises(openai.AuthenticationError):
            await api.models.list()
    async with client(url, "sk-from-env") as api:
        assert len((await api.models.list()).data) == 2
    served.process.send_signal(signal.SIGTERM)
    assert (await asyncio.to_thread(served.finish))[0] == 0


def test_a_bad_config_is_a_usage_error(tmp_path: Path, processes: list[Served]) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\nbackends: {m: {base_url: 'http://x/v1', model: m}}\nagents: {a: {}}\n"
        "serve: {prot: 1}\n"
    )
    code, stderr = serve(processes, "-c", str(path)).finish()
    assert (code, stderr) == (
        2,
        f"Error: {path}:4:9: serve.prot: unknown field. Did you mean `port`?\n",
    )


def test_a_port_in_use_is_a_usage_error(config: Path, processes: list[Served]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = serve(processes, "-c", str(config), "--port", str(port)).finish()
    assert (code, stderr) == (
        2,
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use (another server?). "
        "Stop it, or pick another port with --port (0 picks a free one).\n",
    )


def test_serve_is_listed_in_the_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent_runtime", "--help"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "  serve     Serve every agent as an OpenAI-compatible model (HTTP).\n" in result.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_signal_while_a_model_server_starts_stops_as_ctrl_c_does(
    tmp_path: Path, processes: list[Served], workers: str
) -> None:
    # A `launch: auto` backend whose server never becomes ready: serve waits for it.
    pid_file = tmp_path / "server.pid"
    starting = (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
    )
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "sessions: {path: state/sessions.sqlite3}\n"
        "tracing: {enabled: false}\n"
        "backends:\n"
        + backend_yaml("local", free_port(), [sys.executable, "-c", starting, str(pid_file)])
        + "agents: {a: {}}\n"
    )
    served = serve(processes, "-c", str(path), "--port", "0", "--workers", workers)
    wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=WAIT_S)
    served.process.send_signal(signal.SIGTERM)
    code, stderr = served.finish()
    assert code == 143, stderr
    assert stderr.endswith("Stopped by SIGTERM.\n")
    wait_until(lambda: process_gone(int(pid_file.read_text())), timeout=WAIT_S)


def test_a_reader_that_stops_reading_stderr_does_not_stall_the_server(config: Path) -> None:
    # Every request logs an access line; nobody reads them after the ready line, so the pipe
    # fills (64 KiB) after a few hundred requests. The server goes on answering.
    process = subprocess.Popen(
        [*COMMAND, "-c", str(config), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        match = READY.match(process.stderr.readline().rstrip("\n"))
        assert match, "no ready line"
        with httpx2.Client(base_url=match.group(1), timeout=10) as http:
            statuses = {
                http.get("/v1/models?padding=" + "x" * 200).status_code for _ in range(1500)
            }
        assert statuses == {200}
    finally:
        process.kill()
        process.wait(timeout=WAIT_S)
        if process.stderr is not None:
            process.stderr.close()
