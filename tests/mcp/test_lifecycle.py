"""MCP servers start with the runtime (or its first run), are shared by its runs, and stop with
it: `aclose()`, the end of `run_sync`, Ctrl-C and SIGTERM leave no process of theirs behind
(their children included)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_runtime.runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers
from tests.mcp.conftest import alive, descendants, stdio, write_config

AGENT = {"helper": {"instructions": "Use the tools.", "mcp_servers": ["test"]}}


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def pids(text: str) -> list[int]:
    return [int(part) for part in text.split()]


async def test_started_with_the_runtime_shared_and_stopped(mock: MockVLLM, tmp_path: Path) -> None:
    path = write_config(tmp_path, mock.url, {"test": stdio("--child")}, AGENT)
    for _ in range(2):
        mock.add(Reply(calls=[call("pid")]), Reply(final="ok"))
    async with Runtime.from_yaml(path) as runtime:
        started = descendants(os.getpid())
        assert len(started) >= 2  # the server and its child, before any run
        await runtime.run("helper", "first")
        await runtime.run("helper", "second")
    first, second = helpers.outputs_sent(mock, 1), helpers.outputs_sent(mock, 3)
    assert first == second  # one server for both runs
    server, child = pids(first[0])
    assert {server, child} <= started
    assert not alive(server)
    assert not alive(child)


def test_run_sync_stops_the_servers_it_started(mock: MockVLLM, tmp_path: Path) -> None:
    path = write_config(tmp_path, mock.url, {"test": stdio("--child")}, AGENT)
    mock.add(Reply(calls=[call("pid")]), Reply(final="ok"))
    runtime = Runtime.from_yaml(path)
    try:
        assert runtime.run_sync("helper", "go").final_output == "ok"
        server, child = pids(helpers.outputs_sent(mock, 1)[0])
        assert not alive(server)  # stopped by run_sync itself, before aclose()
        assert not alive(child)
    finally:
        asyncio.run(runtime.aclose())


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        pytest.param(signal.SIGINT, 130, id="ctrl-c"),
        pytest.param(signal.SIGTERM, 143, id="sigterm"),
    ],
)
def test_the_cli_stopped_mid_call_leaves_no_process(
    mock: MockVLLM, tmp_path: Path, sent: signal.Signals, code: int
) -> None:
    marker = tmp_path / "hanging"
    path = write_config(
        tmp_path,
        mock.url,
        {"test": stdio("--child", env={"HANG_MARKER": str(marker)})},
        AGENT,
    )
    mock.add(Reply(calls=[call("hang")]))
    with (tmp_path / "cli.log").open("wb") as log:
        cli = subprocess.Popen(
            [sys.executable, "-m", "agent_runtime", "run", "-c", str(path), "helper", "go"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: marker.exists() and len(marker.read_text().split()) == 2)
        server, child = pids(marker.read_text())
        assert {server, child} <= descendants(cli.pid)
        cli.send_signal(sent)
        assert cli.wait(timeout=30) == code, (tmp_path / "cli.log").read_text()
    finally:
        cli.kill()
        cli.wait(timeout=10)
    wait_for(lambda: not alive(server) and not alive(child), timeout=10)
