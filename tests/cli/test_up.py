"""`agent-runtime up` and the managed server in `run`, through the real entry point."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from agent_runtime import BackendError
from agent_runtime.cli import cli
from agent_runtime.cli.status import LaunchStatus
from agent_runtime.cli.up import _up
from agent_runtime.config import load_config
from agent_runtime.launch import LaunchProgress, plan_launch
from agent_runtime.testing import MockVLLM
from tests.launch.helpers import (
    MOCK,
    MODEL,
    backend_yaml,
    free_port,
    port_is_free,
    process_gone,
    python,
    wait_until,
    write_project,
)

ENTRY_POINT = Path(sys.executable).parent / "agent-runtime"
MOCK_LOOP = [*MOCK, "--tool-loop"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@contextmanager
def up(config: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    command = (
        [str(ENTRY_POINT)] if ENTRY_POINT.exists() else [sys.executable, "-m", "agent_runtime"]
    )
    process = subprocess.Popen(
        [*command, "up", "-c", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"]
)
def test_up_serves_until_stopped(tmp_path: Path, signum: signal.Signals) -> None:
    port = free_port()
    config = write_project(tmp_path, backend_yaml("local", port, MOCK_LOOP))
    url = f"http://127.0.0.1:{port}/v1"
    with up(config) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == f"{url}\n"
        assert httpx2.get(f"http://127.0.0.1:{port}/health").status_code == 200
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    assert stdout == ""
    log = tmp_path / ".agent-runtime" / "vllm-local.log"
    command = shlex.join([*MOCK[:4], str(port), "--model", "openai/gpt-oss-20b", "--tool-loop"])
    ready = re.search(r"is ready at .* \(pid (\d+), log: ", stderr)
    assert ready is not None
    assert stderr.splitlines() == [
        f"Starting the model server of backend `local`: {command} (log: {log})",
        url,  # the mock's own output, from its log
        f"mock vLLM 0.33.0 serving openai/gpt-oss-20b at {url} (0 scripted replies, then a "
        "get_weather tool loop); Ctrl-C stops.",
        f"The model server of backend `local` is ready at {url} (pid {ready.group(1)}, log: "
        f"{log}). Ctrl-C stops it.",
        "Stopped the model server of backend `local`.",
    ]
    assert port_is_free(port)
    assert process_gone(int(ready.group(1)))


@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [
        pytest.param(signal.SIGINT, 130, "Interrupted.", id="ctrl-c"),
        pytest.param(signal.SIGTERM, 143, "Stopped by SIGTERM.", id="sigterm"),
        pytest.param(signal.SIGHUP, 129, "Stopped by SIGHUP.", id="sighup"),
    ],
)
def test_up_interrupted_during_start_up(
    tmp_path: Path, signum: signal.Signals, code: int, message: str
) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
    )
    config = write_project(tmp_path, backend_yaml("local", free_port(), python(script)))
    with up(config, "local") as process:
        wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == code
    assert stdout == ""
    assert stderr.endswith(f"\n{message}\n")
    assert process_gone(int(pid_file.read_text()))


def test_up_leaves_a_running_server_alone(tmp_path: Path) -> None:
    with MockVLLM() as mock:
        config = write_project(tmp_path, backend_yaml("local", mock.port, ["no-such-program"]))
        result = invoke("up", "-c", str(config))
        assert result.exit_code == 0
        assert result.stdout == f"{mock.url}\n"
        assert result.stderr == (
            f"A server is already running at {mock.url} for backend `local` (not started "
            "here); leaving it as it is.\n"
        )
        assert httpx2.get(f"{mock.root_url}/health").status_code == 200


def test_up_when_the_server_cannot_start(tmp_path: Path) -> None:
    command = python("print('no GPU found'); raise SystemExit(1)")
    config = write_project(tmp_path, backend_yaml("local", free_port(), command))
    result = invoke("up", "-c", str(config))
    assert result.exit_code == 3
    log = tmp_path / ".agent-runtime" / "vllm-local.log"
    assert result.stderr.endswith(
        f"Error: the model server of backend `local` exited with code 1 during start-up "
        f"({shlex.join(command)}). The last lines of its log ({log}):\n  no GPU found\n"
    )


def test_up_when_the_server_dies(tmp_path: Path) -> None:
    port = free_port()
    config = write_project(tmp_path, backend_yaml("local", port, MOCK_LOOP))
    url = f"http://127.0.0.1:{port}/v1"
    with up(config) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline() == f"{url}\n"
        while not (line := process.stderr.readline()).startswith("The model server"):
            assert line
        ready = re.search(r"\(pid (\d+),", line)
        assert ready is not None
        os.kill(int(ready.group(1)), signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 3
    log = tmp_path / ".agent-runtime" / "vllm-local.log"
    assert stderr == (
        f"Error: the model server of backend `local` was killed by signal 9 while serving. "
        f"The last lines of its log ({log}):\n  {url}\n  mock vLLM 0.33.0 serving "
        f"openai/gpt-oss-20b at {url} (0 scripted replies, then a get_weather tool loop); "
        "Ctrl-C stops.\n"
    )


@pytest.mark.parametrize(
    ("backends", "args", "message"),
    [
        pytest.param(
            ["local", "other"],
            ["locl"],
            "unknown backend 'locl'. Did you mean 'local'?",
            id="unknown",
        ),
        pytest.param(
            ["local", "other"],
            [],
            "several backends have `launch: auto` ('local', 'other'); name the one to start: "
            "agent-runtime up BACKEND",
            id="several",
        ),
    ],
)
def test_up_usage_errors(
    tmp_path: Path, backends: list[str], args: list[str], message: str
) -> None:
    config = write_project(
        tmp_path, *(backend_yaml(name, free_port(), MOCK_LOOP) for name in backends)
    )
    result = invoke("up", "-c", str(config), *args)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message}\n"


def never_project(tmp_path: Path, base_url: str, model: str = MODEL) -> Path:
    """A project whose one backend has the default `launch: never`, and a launch command that
    would leave a log if it were ever started."""
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\nbackends:\n  local:\n"
        f"    base_url: {base_url}\n    model: {model}\n"
        f"    launch_command: {json.dumps(python('print(1)'))}\n"
        "agents:\n  a: {instructions: hi}\n"
    )
    return config


def test_up_of_a_launch_never_backend_starts_nothing(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = never_project(tmp_path, url)
    result = invoke("up", "-c", str(config))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "Error: `agent-runtime up` starts no server for backend `local`, whose `launch` is "
        f"`never` (the default), and nothing answers at {url}. Set `launch: auto` for it in "
        f"{config} to let agent-runtime start the server, or start it yourself: "
        f"`{shlex.join(python('print(1)'))}`.\n"
    )
    assert not (tmp_path / ".agent-runtime").exists()  # no log: nothing was started


def test_up_of_a_launch_never_backend_that_cannot_be_started_here(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{free_port()}/v1"  # launch: auto needs http://
    config = never_project(tmp_path, url)
    result = invoke("up", "-c", str(config))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: `agent-runtime up` starts no server for backend `local`, whose `launch` is "
        f"`never` (the default), and nothing answers at {url}. Start the server yourself: "
        f"`{shlex.join(python('print(1)'))}`.\n"
    )


def test_up_of_a_launch_never_backend_shows_its_running_server(tmp_path: Path) -> None:
    with MockVLLM() as mock:
        config = never_project(tmp_path, mock.url)
        result = invoke("up", "-c", str(config))
        assert result.exit_code == 0
        assert result.stdout == f"{mock.url}\n"
        assert result.stderr == (
            f"A server is already running at {mock.url} for backend `local` (not started "
            "here); leaving it as it is.\n"
        )
        config = never_project(tmp_path, mock.url, model="openai/gpt-oss-120b")
        result = invoke("up", "-c", str(config))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: `agent-runtime up` starts no server for backend `local`, whose `launch` is "
        f"`never` (the default), and the server at {mock.url} is not ready for it (it serves "
        f"'{MODEL}', not 'openai/gpt-oss-120b'). `agent-runtime doctor --backend local` says "
        "what to fix.\n"
    )


def test_up_of_an_in_process_backend(tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\nbackends:\n  gpu: {kind: vllm-embedded, model: m}\n"
        "agents:\n  a: {instructions: hi}\n"
    )
    result = invoke("up", "-c", str(config))
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: backend `gpu` runs vLLM in the agent's own process (kind vllm-embedded): there "
        "is no server to start\n"
    )


def test_help_lists_up() -> None:
    assert "  up        Start a backend's vLLM server, until Ctrl-C.\n" in invoke("--help").stdout


def test_run_starts_the_server_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    config = write_project(tmp_path, backend_yaml("local", port, MOCK_LOOP))
    result = invoke("run", "-c", str(config), "weather", "Weather?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Done: sunny in Tokyo\n"
    url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path / ".agent-runtime" / "vllm-local.log"
    command = shlex.join([*MOCK[:4], str(port), "--model", "openai/gpt-oss-20b", "--tool-loop"])
    assert re.fullmatch(
        re.escape(f"Starting the model server of backend `local`: {command} (log: {log})\n")
        + re.escape(f"The model server of backend `local` is ready at {url} (")
        + r"\d+\.\d s\)\.\n",
        result.stderr,
    )
    assert port_is_free(port)


def test_launch_status_in_a_terminal(tmp_path: Path) -> None:
    out = io.StringIO()
    status = LaunchStatus(Console(file=out, force_terminal=True, width=200))
    log = tmp_path / "vllm.log"
    base = {"backend": "local", "url": "http://127.0.0.1:8000/v1", "log_path": log}
    for state, line in [
        ("starting", ""),
        ("waiting", "Loading safetensors checkpoint shards: 50% Completed | 1/2"),
        ("ready", ""),
        ("stopping", ""),
        ("stopped", ""),
    ]:
        status(LaunchProgress(state=state, launched=True, line=line, elapsed_s=12.0, **base))  # type: ignore[arg-type]
    status(LaunchProgress(state="waiting", launched=False, **base))  # type: ignore[arg-type]
    status(LaunchProgress(state="failed", launched=False, **base))  # type: ignore[arg-type]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert (
        "The model server of backend `local` is ready at http://127.0.0.1:8000/v1 (12.0 s)." in text
    )


@pytest.mark.parametrize("ending", ["cancelled", "server-killed"])
async def test_up_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ending: str
) -> None:
    port = free_port()
    config = write_project(tmp_path, backend_yaml("local", port, MOCK_LOOP))
    plan = plan_launch(load_config(config), "local")
    task = asyncio.create_task(_up(plan, Console(file=io.StringIO())))
    seen = ""
    while "Ctrl-C stops it." not in seen:
        assert not task.done()
        seen += capsys.readouterr().err
        await asyncio.sleep(0.01)
    ready = re.search(r"\(pid (\d+),", seen)
    assert ready is not None
    if ending == "cancelled":
        task.cancel()
        assert await task == 0
        assert capsys.readouterr().err.endswith("Stopped the model server of backend `local`.\n")
    else:
        os.kill(int(ready.group(1)), signal.SIGKILL)
        with pytest.raises(BackendError, match="was killed by signal 9 while serving"):
            await task
    assert port_is_free(port)


def test_up_without_backend_takes_the_only_one_or_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_runtime.cli.up import _choose

    one = "version: 1\nbackends:\n  a: {base_url: 'http://localhost:1/v1', model: m}\n"
    agents = "agents:\n  x: {instructions: hi}\n"
    (tmp_path / "one.yaml").write_text(one + agents)
    assert _choose(load_config(tmp_path / "one.yaml"), None) == "a"
    two = one + "  b: {base_url: 'http://localhost:2/v1', model: m}\ndefaults: {backend: a}\n"
    (tmp_path / "agents.yaml").write_text(two + agents)
    monkeypatch.chdir(tmp_path)
    result = invoke("up")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: several backends are declared ('a', 'b'); name the one to start: "
        "agent-runtime up BACKEND\n"
    )
