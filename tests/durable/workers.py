"""Worker processes, a project and a mock model whose answers a test can hold, for the tests
of `agent-runtime worker`, the durable CLI commands and the kill tests.

A worker is a real `agent-runtime worker` subprocess (DBOS is one instance per process) with
its stdout and stderr in files; the mock vLLM server runs in the test process, so its recorded
requests count every model call of every worker. The project's one tool appends a line to a
file per execution, so tool executions are counted across processes too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runtime.testing import MockVLLM, RecordedRequest, Reply, ToolLoop

COMMAND = [sys.executable, "-m", "agent_runtime"]
READY = re.compile(r"^Worker (\S+) executing runs", re.MULTILINE)
START_TIMEOUT_S = 60.0
"""Bound on a worker's start-up (imports, DBOS launch and migrations: seconds)."""

TOOLS = '''\
import os


def record(note: str) -> str:
    """Record a note and say so."""
    with open(os.environ["TOOL_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{note} {os.getpid()}\\n")
    return f"recorded {note}"
'''


@dataclass
class Project:
    """agents.yaml with a `durability:` section, its tool module and the files they use."""

    root: Path
    database_url: str
    mock_url: str

    @property
    def config(self) -> Path:
        return self.root / "agents.yaml"

    @property
    def tool_log(self) -> Path:
        return self.root / "tool.log"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("AGENT_RUNTIME_DATABASE_URL", None)
        env.pop("AGENT_RUNTIME_CONFIG", None)
        return {
            **env,
            "MOCK_URL": self.mock_url,
            "DATABASE_URL": self.database_url,
            "TOOL_LOG": str(self.tool_log),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def tool_lines(self) -> list[str]:
        if not self.tool_log.exists():
            return []
        return self.tool_log.read_text(encoding="utf-8").splitlines()

    def cli(
        self, *args: str, timeout: float = 60.0, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run `agent-runtime ARGS -c agents.yaml` to its end."""
        return subprocess.run(
            [*COMMAND, *args, "-c", str(self.config)],
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """`Runtime.<method>(*args, **kwargs)` on a runtime of this project, in this process
        (a client: faster than the CLI, which test_cli.py tests)."""
        from agent_runtime.config import load_config
        from agent_runtime.runtime import Runtime

        async def call() -> Any:
            config = load_config(self.config, environ=self.env(), import_tools=False)
            runtime = Runtime(config, trace_path=False)
            try:
                answer = getattr(runtime, method)(*args, **kwargs)
                return await answer if inspect.isawaitable(answer) else answer
            finally:
                await runtime.aclose()

        return asyncio.run(call())

    def submit(self, agent: str, text: str, **options: Any) -> str:
        return str(self.call("submit", agent, text, **options).run_id)

    def result(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return dict(self.call("result", run_id, timeout=timeout).to_dict())

    def status(self, run_id: str) -> dict[str, Any]:
        return dict(self.call("status", run_id).to_dict())


def write_project(root: Path, *, database_url: str, mock_url: str, durability: str = "") -> Project:
    """A project whose `recorder` agent calls the `record` tool, `triage` hands off to it, and
    `offline` uses a model server that is not there."""
    root.mkdir(parents=True, exist_ok=True)
    # A module name of its own: tests load several projects' tools in one process.
    module = f"tools_{uuid.uuid4().hex[:12]}"
    (root / f"{module}.py").write_text(TOOLS, encoding="utf-8")
    (root / "agents.yaml").write_text(
        "version: 1\n"
        "sessions: {path: state/sessions.sqlite3}\n"
        "tracing: {path: state/traces.jsonl}\n"
        "durability:\n"
        "  database_url: ${DATABASE_URL}\n"
        "  poll_s: 0.1\n"
        f"{durability}"
        "backends:\n"
        "  mock: {base_url: '${MOCK_URL}', model: openai/gpt-oss-20b, max_retries: 0}\n"
        "  offline: {base_url: 'http://127.0.0.1:9/v1', model: openai/gpt-oss-20b, "
        "max_retries: 0}\n"
        "tools:\n"
        f"  record: {{function: '{module}:record'}}\n"
        "agents:\n"
        "  recorder: {instructions: Record the note., backend: mock, tools: [record]}\n"
        "  triage: {instructions: Hand over., backend: mock, handoffs: [recorder]}\n"
        "  offline: {instructions: Answer., backend: offline}\n",
        encoding="utf-8",
    )
    return Project(root=root, database_url=database_url, mock_url=mock_url)


class Held:
    """The mock's model: `ToolLoop` over `record` (one call, then the answer), except that
    the answers to the requests numbered in `hold` (from 1, counted over the whole server)
    wait until `release()` (or `HOLD_S`): a model call kept in flight."""

    HOLD_S = 120.0

    def __init__(self, *hold: int) -> None:
        self.hold = set(hold)
        self.seen = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.model = ToolLoop(tool="record", arguments={"note": "tokyo"}, final="Done: {output}")

    def release(self) -> None:
        self._released.set()

    async def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.seen += 1
            number = self.seen
        if number in self.hold:
            await asyncio.to_thread(self._released.wait, self.HOLD_S)
        return self.model(request)


@contextlib.contextmanager
def serving(held: Held) -> Iterator[MockVLLM]:
    """A mock vLLM server answering with `held`; held answers are released at the end."""
    with MockVLLM(default=held, seed=7) as server:
        try:
            yield server
        finally:
            held.release()


@dataclass
class Worker:
    """One `agent-runtime worker` subprocess; stdout and stderr go to files."""

    project: Project
    args: tuple[str, ...] = ()
    name: str = "worker"
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] = field(init=False)
    executor_id: str = ""

    def __post_init__(self) -> None:
        self.stdout = self.project.root / f"{self.name}.stdout"
        self.stderr = self.project.root / f"{self.name}.stderr"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [*COMMAND, "worker", "-c", str(self.project.config), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self.project.env(**self.env),
            )

    def output(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, condition: Callable[[str], bool], timeout: float) -> str:
        """Wait until the worker's stderr satisfies `condition`; fail if it ends first."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.output()
            if condition(text):
                return text
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} ended ({self.process.returncode}) before it was expected to:\n"
                    + self.output()
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: timed out after {timeout} s:\n{text}")
            time.sleep(0.02)

    def ready(self, timeout: float = START_TIMEOUT_S) -> str:
        """Wait for the ready line; this worker's executor id."""
        text = self.wait_for(lambda t: READY.search(t) is not None, timeout)
        match = READY.search(text)
        assert match is not None
        self.executor_id = match.group(1)
        return self.executor_id

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


class Workers:
    """Starts workers (`workers.start(project, *args)`); `close()` kills those still running."""

    def __init__(self) -> None:
        self.started: list[Worker] = []

    def start(self, project: Project, *args: str, env: dict[str, str] | None = None) -> Worker:
        worker = Worker(project, args, name=f"worker-{len(self.started) + 1}", env=env or {})
        self.started.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.started:
            worker.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait until `condition()`; the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start
