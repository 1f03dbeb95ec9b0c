"""Helpers for the ops tests (guard, errors, metrics, health, access log, chat): a served app on
127.0.0.1 (uvicorn on port 0 in the test's loop), and a mock reply that waits for the test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from starlette.applications import Starlette

from agent_runtime import Runtime
from agent_runtime.server import create_app
from agent_runtime.server.options import ServeOptions
from agent_runtime.server.state import ServerState
from agent_runtime.testing import Reply
from agent_runtime.testing.recording import RecordedRequest
from tests.helpers import PROJECT

AGENTS_YAML = PROJECT / "agents.yaml"
WAIT_S = 10.0
"""The longest any test waits for something that should happen at once."""


def state_of(app: Starlette) -> ServerState:
    state = app.state.server
    assert isinstance(state, ServerState)
    return state


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in this loop; yields its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="auto"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=None))
    try:
        async with asyncio.timeout(WAIT_S):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(WAIT_S):
            await task


@contextlib.asynccontextmanager
async def served(
    mock_url: str,
    tmp_path: Path,
    options: ServeOptions | None = None,
    config: Path = AGENTS_YAML,
) -> AsyncIterator[tuple[str, Starlette]]:
    """The test project's agents served with `options`, their backends at `mock_url`."""
    async with Runtime.from_yaml(
        config, environ={"MOCK_URL": mock_url, "STATE_DIR": str(tmp_path)}
    ) as runtime:
        app = create_app(runtime, options or ServeOptions())
        async with serving(app) as url:
            yield url, app


@dataclass
class Held:
    """A mock reply that waits until the test releases it (`arrived` is set meanwhile)."""

    reply: Reply
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    count: int = 0

    def responder(self) -> Callable[[RecordedRequest], Any]:
        async def respond(request: RecordedRequest) -> Reply:
            self.count += 1
            self.arrived.set()
            await asyncio.to_thread(self.release.wait, WAIT_S)
            return self.reply

        return respond

    async def wait_arrived(self) -> None:
        assert await asyncio.to_thread(self.arrived.wait, WAIT_S), "the mock got no request"


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for a condition the server makes true once a request has ended."""
    async with asyncio.timeout(WAIT_S):
        while not condition():  # noqa: ASYNC110 - the server's state has no event to wait on
            await asyncio.sleep(0.005)
    assert condition(), what


def metric(app: Starlette, line: str) -> bool:
    """Whether the app's /metrics text has this sample line."""
    return line in state_of(app).metrics.render()[0].decode().splitlines()


async def post(url: str, **kwargs: Any) -> httpx2.Response:
    """One raw POST (bodies the openai client would not send)."""
    async with httpx2.AsyncClient(timeout=WAIT_S) as http:
        return await http.post(url, **kwargs)


async def get(url: str, **kwargs: Any) -> httpx2.Response:
    """One raw GET."""
    async with httpx2.AsyncClient(timeout=WAIT_S) as http:
        return await http.get(url, **kwargs)
