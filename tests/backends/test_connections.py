"""Streamed runs keep their connection to the model server: each finished stream is read to its
end, so the HTTP client puts the connection back in its pool instead of closing it (a new TCP
connection per streamed model call otherwise)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers


@pytest.fixture
async def connects() -> AsyncIterator[list[Any]]:
    """The TCP connections the test's event loop opens, as they are opened."""
    loop = asyncio.get_running_loop()
    opened: list[Any] = []
    original = loop.sock_connect

    async def sock_connect(sock: socket.socket, address: Any) -> None:
        opened.append(address)
        await original(sock, address)

    loop.sock_connect = sock_connect  # type: ignore[method-assign]
    try:
        yield opened
    finally:
        del loop.sock_connect


@pytest.mark.parametrize("agent", ["weather-haiku", "chat-haiku"])
async def test_streamed_runs_reuse_one_connection(
    connects: list[Any], tmp_path: Path, agent: str
) -> None:
    script = [Reply(calls=[call("get_weather", city="Oslo")]), Reply(final="Cold.")] * 5
    async with MockVLLM(script) as mock:
        environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
        async with Runtime.from_yaml(helpers.PROJECT / "agents.yaml", environ=environ) as runtime:
            for _ in range(5):
                events = [event async for event in runtime.stream(agent, "Weather in Oslo?")]
                assert events[-1].result.final_output == "Cold."
    to_mock = [address for address in connects if address[1] == mock.port]
    assert len(to_mock) == 1  # ten model calls, one connection
