"""Serving an app for tests: uvicorn on 127.0.0.1 (port 0) in a thread of its own, and the
test project's Runtime against a mock vLLM.

```python
async with MockVLLM() as mock, served(project_app(mock, tmp_path)) as url:
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x")
```
The app runs in its own event loop (as under `agent-runtime serve`): the app built by
`project_app` owns its runtime, started and closed by the app's lifespan in that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from tests import helpers

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from agent_runtime.server import ServeOptions
    from agent_runtime.testing import MockVLLM

PROJECT = helpers.PROJECT / "agents.yaml"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def project_app(
    mock: MockVLLM, state_dir: Path, options: ServeOptions | None = None, **runtime: Any
) -> Starlette:
    """An app serving tests/project/agents.yaml against `mock`; it owns its runtime."""
    from agent_runtime.server import create_app_from_yaml

    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(state_dir)}
    return create_app_from_yaml(PROJECT, options, environ=environ, **runtime)


@contextlib.asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 on a free port while the block runs; gives its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        log_config=None,  # uvicorn's default would reconfigure every logging handler
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    started = threading.Event()

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            started.set()

    server = _Server(config)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            started.set()

    thread = threading.Thread(target=run, name=f"served:{port}", daemon=True)
    thread.start()
    await asyncio.to_thread(started.wait, START_TIMEOUT_S)
    if not server.started:
        server.should_exit = True
        await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
        raise RuntimeError("the app did not start; see the log above")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
