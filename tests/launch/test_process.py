"""Managed servers (`launch: auto`): the mock vLLM server stands in for `vllm serve`.

Every test launches real processes on free ports: start, health wait, reuse, crash during
start-up, time-out, ports taken by other things, cancelling, clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent_runtime import BackendError, Runtime
from agent_runtime.config import load_config
from agent_runtime.launch import (
    ensure_server,
    plan_launch,
)
from agent_runtime.launch.process import _environment, _PortLock
from agent_runtime.testing import MockVLLM, Reply
from tests.launch.helpers import (
    MOCK,
    MODEL,
    Events,
    backend_yaml,
    free_port,
    healthy,
    plan_for,
    port_is_free,
    process_gone,
    python,
    wait_until,
    write_project,
)

# -- the whole lifecycle through a Runtime ----------------------------------------------------

FAKE_VLLM = Path(__file__).with_name("fake_vllm.py")
UNCLOSED = """
import asyncio, sys
from agent_runtime import Runtime

async def main() -> None:
    runtime = Runtime.from_yaml(sys.argv[1])
    await runtime.start()
    print((await runtime.run("weather", "hi")).final_output, flush=True)
    # no aclose(), no `async with`: the process just ends

asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["returns", "sys.exit"])
def test_a_runtime_never_closed_stops_its_server_at_exit(tmp_path: Path, how: str) -> None:
    port = free_port()
    command = [sys.executable, str(FAKE_VLLM), "{port}", str(tmp_path / "server")]
    path = write_project(tmp_path, backend_yaml("local", port, command))
    script = UNCLOSED if how == "returns" else UNCLOSED + "sys.exit(5)\n"
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0 if how == "returns" else 5, "ok\n")
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    server = int((tmp_path / "server" / "server.pid").read_text())
    wait_until(lambda: process_gone(server), timeout=30)
    assert port_is_free(port)


async def test_runtime_starts_the_server_runs_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    path = write_project(tmp_path, backend_yaml("local", port, [*MOCK, "--tool-loop"]))
    events = Events()
    async with Runtime.from_yaml(path, launch_progress=events) as runtime:
        assert events.states == ["starting", "waiting", "ready"]
        result = await runtime.run("weather", "Weather?")
        assert result.final_output == "Done: sunny in Tokyo"
        assert not port_is_free(port)
    assert port_is_free(port)
    assert events.states == ["starting", "waiting", "ready", "stopping", "stopped"]
    first = events.events[0]
    assert first.launched
    assert first.url == f"http://127.0.0.1:{port}/v1"
    assert first.command == shlex.join([*MOCK[:4], str(port), "--model", MODEL, "--tool-loop"])
    log = tmp_path / ".agent-runtime" / "vllm-local.log"
    assert first.log_path == log
    assert f"mock vLLM 0.33.0 serving {MODEL} at http://127.0.0.1:{port}/v1" in log.read_text()


async def test_a_running_server_is_used_and_left_running(tmp_path: Path) -> None:
    with MockVLLM(default=Reply(final="from the running server")) as mock:
        path = write_project(tmp_path, backend_yaml("local", mock.port, ["no-such-program"]))
        events = Events()
        async with Runtime.from_yaml(path, launch_progress=events) as runtime:
            result = await runtime.run("weather", "Hi")
        assert result.final_output == "from the running server"
        assert events.events == []
        assert [r.path for r in mock.requests][:2] == ["/health", "/v1/models"]
        assert await healthy(mock.root_url)


async def test_a_base_url_override_starts_nothing(tmp_path: Path) -> None:
    with MockVLLM(default=Reply(final="overridden")) as mock:
        path = write_project(tmp_path, backend_yaml("local", free_port(), ["no-such-program"]))
        async with Runtime.from_yaml(path, base_url=mock.url) as runtime:
            assert (await runtime.run("weather", "Hi")).final_output == "overridden"
        assert [r.path for r in mock.requests] == ["/v1/responses"]


async def test_backends_on_one_url_share_the_server(tmp_path: Path) -> None:
    port = free_port()
    path = write_project(
        tmp_path,
        backend_yaml("responses", port, [*MOCK, "--tool-loop"]),
        backend_yaml("chat", port, ["no-such-program"], api="chat_completions"),
    )
    events = Events()
    async with Runtime.from_yaml(path, launch_progress=events):
        assert [e.backend for e in events.events if e.state == "starting"] == ["responses"]
    assert port_is_free(port)


async def test_a_failed_start_stops_the_servers_already_started(tmp_path: Path) -> None:
    good, bad = free_port(), free_port()
    path = write_project(
        tmp_path,
        backend_yaml("good", good, [*MOCK, "--tool-loop"]),
        backend_yaml("bad", bad, python("raise SystemExit(3)")),
    )
    runtime = Runtime.from_yaml(path)
    with pytest.raises(BackendError, match="backend `bad` exited with code 3 during start-up"):
        async with runtime:
            pytest.fail("not reached")
    assert port_is_free(good)


# -- failures ---------------------------------------------------------------------------------


async def test_a_crash_during_start_up_shows_the_end_of_the_log(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "for i in range(30): print(f'loading shard {i}')\n"
        "print('torch.OutOfMemoryError: CUDA out of memory', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    plan = plan_for(tmp_path, python(code))
    events = Events()
    with pytest.raises(BackendError) as info:
        await ensure_server(plan, progress=events)
    shards = "\n".join(f"  loading shard {i}" for i in range(11, 30))
    assert str(info.value) == (
        f"the model server of backend `local` exited with code 1 during start-up "
        f"({plan.shown_command}). The last lines of its log ({plan.log_path}):\n"
        f"{shards}\n  torch.OutOfMemoryError: CUDA out of memory"
    )
    assert info.value.url == plan.base_url
    assert events.states[0] == "starting"
    assert events.states[-1] == "failed"


async def test_a_crash_with_an_empty_log(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    with pytest.raises(BackendError) as info:
        await ensure_server(plan)
    assert str(info.value) == (
        f"the model server of backend `local` was killed by signal 9 during start-up "
        f"({plan.shown_command}). Its log ({plan.log_path}) is empty."
    )


async def test_start_up_time_out_stops_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import os, sys, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "print('still loading', flush=True)\n"
        "time.sleep(60)\n"
    )
    plan = plan_for(tmp_path, python(code), startup_timeout_s=1)
    with pytest.raises(BackendError) as info:
        await ensure_server(plan)
    assert str(info.value) == (
        "the model server of backend `local` was not ready within 1 s (startup_timeout_s) and "
        "was stopped. Raise `startup_timeout_s` if the model needs longer to load. The last "
        f"lines of its log ({plan.log_path}):\n  still loading"
    )
    assert process_gone(int(pid_file.read_text()))


async def test_stop_kills_the_process_group_and_what_ignores_sigterm(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    plan = plan_for(tmp_path, python(code), startup_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(BackendError, match="was not ready within 1 s"):
        await ensure_server(plan, stop_timeout_s=0.2)
    assert time.monotonic() - started < 10
    leader, child = map(int, pids.read_text().split())
    assert process_gone(leader)
    wait_until(lambda: process_gone(child))


async def test_cancelling_the_start_up_stops_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
    plan = plan_for(tmp_path, python(code))
    events = Events()
    task = asyncio.create_task(ensure_server(plan, progress=events))
    await events.waiting.wait()
    wait_until(pid_file.exists)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert process_gone(int(pid_file.read_text()))
    assert [e.state for e in events.events][-3:] == ["failed", "stopping", "stopped"]
    assert port_is_free(plan.port)


@contextlib.contextmanager
def http_server(status: int) -> Iterator[int]:
    """A plain HTTP server that answers every GET with `status`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "what"),
    [
        pytest.param(404, "something that is not vLLM (GET /health → 404)", id="404"),
        pytest.param(
            503,
            "a server that is not healthy (GET /health → 503: a vLLM whose engine has died?)",
            id="503",
        ),
    ],
)
async def test_a_port_taken_by_something_else(tmp_path: Path, status: int, what: str) -> None:
    with http_server(status) as port:
        path = write_project(tmp_path, backend_yaml("local", port, ["no-such-program"]))
        with pytest.raises(BackendError) as info:
            await ensure_server(plan_launch(load_config(path), "local"))
    assert str(info.value) == (
        f"cannot start the model server of backend `local`: port {port} is taken by {what}. "
        "Stop it, or choose another port in `base_url`."
    )


async def test_a_port_taken_by_a_server_of_another_model(tmp_path: Path) -> None:
    with MockVLLM(model="Qwen/Qwen3-8B") as mock:
        path = write_project(tmp_path, backend_yaml("local", mock.port, ["no-such-program"]))
        with pytest.raises(BackendError) as info:
            await ensure_server(plan_launch(load_config(path), "local"))
    assert str(info.value) == (
        f"cannot start the model server of backend `local`: port {mock.port} is taken by a "
        f"server that serves 'Qwen/Qwen3-8B', not '{MODEL}'. Stop it, choose another port in "
        "`base_url`, or set `model:` to what it serves."
    )


async def test_a_port_taken_by_a_server_that_wants_another_key(tmp_path: Path) -> None:
    with MockVLLM(api_key="right") as mock:
        backend = backend_yaml("local", mock.port, ["no-such-program"], api_key="wrong")
        path = write_project(tmp_path, backend)
        with pytest.raises(BackendError) as info:
            await ensure_server(plan_launch(load_config(path), "local"))
        assert mock.requests[-1].headers["authorization"] == "Bearer wrong"
    assert str(info.value) == (
        f"cannot start the model server of backend `local`: port {mock.port} is taken by a "
        "server that rejected the API key (GET /v1/models → 401). Set `api_key:` of backend "
        "`local` to the key it was started with, or stop it."
    )


async def test_a_port_held_by_something_that_never_answers(tmp_path: Path) -> None:
    with socket.socket() as holder:  # accepts connections (the backlog), never answers
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        backend = backend_yaml("local", port, ["no-such-program"], startup_timeout_s=0.5)
        path = write_project(tmp_path, backend)
        events = Events()
        with pytest.raises(BackendError) as info:
            await ensure_server(plan_launch(load_config(path), "local"), progress=events)
    assert str(info.value) == (
        f"cannot start the model server of backend `local`: something holds port {port} but "
        "was not ready within 0.5 s (startup_timeout_s) (GET /health: no answer (nothing "
        "within 2 s)). Stop it, or choose another "
        "port in `base_url`."
    )
    assert not events.events[0].launched
    assert events.events[0].log_path is None


async def test_a_server_another_process_starts_is_waited_for(tmp_path: Path) -> None:
    port = free_port()
    path = write_project(tmp_path, backend_yaml("local", port, ["no-such-program"]))
    plan = plan_launch(load_config(path), "local")
    lock = _PortLock.take(port)  # as another agent-runtime process starting a server there
    assert lock is not None
    events = Events()
    task = asyncio.create_task(ensure_server(plan, progress=events))
    await events.waiting.wait()
    with MockVLLM(port=port) as mock:
        server = await task
        assert not server.launched
        await server.stop()
        assert await healthy(mock.root_url)
    lock.release()
    assert events.states == ["starting", "waiting", "ready"]
    assert not events.events[0].launched


async def test_when_the_other_process_gives_up_the_server_is_started_here(
    tmp_path: Path,
) -> None:
    plan = plan_for(tmp_path, [*MOCK, "--tool-loop"])
    lock = _PortLock.take(plan.port)
    assert lock is not None
    events = Events()
    task = asyncio.create_task(ensure_server(plan, progress=events))
    await events.waiting.wait()
    lock.release()
    server = await task
    try:
        assert server.launched
        assert [e.launched for e in events.events if e.state == "starting"] == [False, True]
        assert _PortLock.take(plan.port) is None  # held by the server started here
    finally:
        await server.stop()
    assert port_is_free(plan.port)


async def test_vllm_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if (Path(sys.executable).parent / "vllm").exists():
        pytest.skip("vllm is installed here")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendError) as info:
        await ensure_server(plan_for(tmp_path, None))
    assert str(info.value) == (
        "cannot start the model server of backend `local`: `vllm` is not installed (not found "
        "on PATH). Install it with `uv pip install vllm` (or `pip install "
        "'agent-runtime[vllm]'`), or start the server yourself and set `launch: never`."
    )


async def test_a_launch_command_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as info:
        await ensure_server(plan_for(tmp_path, ["./serve-gpt-oss.sh", "{port}"]))
    assert str(info.value) == (
        "cannot start the model server of backend `local`: `./serve-gpt-oss.sh` (the first "
        "element of `launch_command`) was not found. Install it, or fix `launch_command`."
    )


async def test_a_launch_command_relative_to_the_yaml_folder(tmp_path: Path) -> None:
    script = tmp_path / "serve.sh"
    script.write_text(f'#!/bin/sh\nexec {shlex.join(MOCK[:3])} --port "$1" --tool-loop\n')
    script.chmod(0o755)
    plan = plan_for(tmp_path, ["./serve.sh", "{port}"])
    server = await ensure_server(plan)
    try:
        assert server.launched
        assert server.returncode is None
        assert repr(server) == f"<ManagedServer 'local' at {plan.base_url} (pid {server.pid})>"
    finally:
        await server.stop()
    assert server.returncode is not None
    assert port_is_free(plan.port)
    await server.stop()  # again: nothing happens
    lock = _PortLock.take(plan.port)  # released, its file removed
    assert lock is not None
    assert lock.path.exists()
    lock.release()
    assert not lock.path.exists()


async def test_a_launched_server_of_another_model_is_stopped(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, [*MOCK[:-1], "other-model", "--tool-loop"])
    with pytest.raises(BackendError) as info:
        await ensure_server(plan)
    assert str(info.value) == (
        f"the server started for backend `local` serves 'other-model', not '{MODEL}'. "
        "Check `launch_command` and `serve_args`."
    )
    assert port_is_free(plan.port)


def test_the_server_gets_the_backends_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "from-the-shell")
    assert "VLLM_API_KEY" not in _environment(plan_for(tmp_path, None))
    keyed = plan_for(tmp_path, None, api_key="k1")
    assert _environment(keyed)["VLLM_API_KEY"] == "k1"
    assert _environment(keyed)["PYTHONUNBUFFERED"] == "1"
