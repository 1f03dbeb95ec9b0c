"""Launch-test helpers: projects with `launch: auto` backends whose "vllm serve" is the mock
server (or a Python one-liner), free ports, and waiting on processes."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

from agent_runtime.config import load_config
from agent_runtime.launch import LaunchPlan, LaunchProgress, plan_launch

MODEL = "openai/gpt-oss-20b"
MOCK = [sys.executable, "-m", "agent_runtime.testing", "--port", "{port}", "--model", "{model}"]
TOOLS = '''
def get_weather(city: str) -> str:
    """Current weather.

    Args:
        city: The city.
    """
    return f"sunny in {city}"
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def healthy(root_url: str) -> bool:
    async with httpx2.AsyncClient() as http:
        return (await http.get(f"{root_url}/health")).status_code == 200


def python(code: str) -> list[str]:
    """A launch command that runs `code` (with `{port}` etc. left as placeholders)."""
    return [sys.executable, "-c", code]


def backend_yaml(name: str, port: int, command: list[str] | None, **fields: object) -> str:
    lines = [
        f"  {name}:",
        f"    base_url: http://127.0.0.1:{port}/v1",
        f"    model: {MODEL}",
        "    launch: auto",
        "    max_retries: 0",
    ]
    if command is not None:
        lines.append(f"    launch_command: {json.dumps(command)}")
    lines += [f"    {key}: {json.dumps(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def write_project(tmp_path: Path, *backends: str) -> Path:
    module = "tools_" + re.sub(r"\W", "_", tmp_path.name)  # one per test: no import clashes
    (tmp_path / f"{module}.py").write_text(TOOLS)
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "tracing: {enabled: false}\n"
        f"defaults: {{backend: {backends[0].split(':')[0].strip()}}}\n"
        "backends:\n" + "".join(backends) + "tools:\n"
        f"  get_weather: {{function: '{module}:get_weather'}}\n"
        "agents:\n"
        "  weather:\n"
        "    instructions: Answer.\n"
        "    tools: [get_weather]\n"
    )
    return path


def plan_for(tmp_path: Path, command: list[str] | None, **fields: object) -> LaunchPlan:
    path = write_project(tmp_path, backend_yaml("local", free_port(), command, **fields))
    return plan_launch(load_config(path), "local")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        time.sleep(0.01)


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, waiting for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class Events:
    """Records the progress of a launch."""

    def __init__(self) -> None:
        self.events: list[LaunchProgress] = []
        self.waiting = asyncio.Event()

    def __call__(self, event: LaunchProgress) -> None:
        self.events.append(event)
        if event.state == "waiting":
            self.waiting.set()

    @property
    def states(self) -> list[str]:
        """The states, each run of repeated ones (waiting) shown once."""
        states = [event.state for event in self.events]
        return [state for i, state in enumerate(states) if i == 0 or state != states[i - 1]]
