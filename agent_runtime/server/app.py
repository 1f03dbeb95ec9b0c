"""The served app: every agent of a `Runtime` as an OpenAI-compatible model, as one ASGI app.

```python
from agent_runtime import Runtime
from agent_runtime.server import create_app

runtime = Runtime.from_yaml("agents.yaml")
app = create_app(runtime)            # mount it in your own service; you open and close runtime
```

`create_app_from_yaml("agents.yaml")` makes an app that owns its runtime: started and closed
with the app (its lifespan). Routes: the Responses API (`responses`), Chat Completions
(`chat`), `GET /v1/models` (`models`), `/health`, `/ready`, `/metrics` (`ops`), the dev UI
at `/` (`ui`, when `options.ui`). In front of them: the access log, CORS when configured, and
the guard (API keys, body size, draining: `guard`). Errors are OpenAI-shaped (`errors`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from agent_runtime.runtime import Runtime
from agent_runtime.server import chat, models, ops, responses, ui
from agent_runtime.server.errors import exception_handlers
from agent_runtime.server.guard import Gate, middleware
from agent_runtime.server.metrics import Metrics
from agent_runtime.server.options import ServeOptions
from agent_runtime.server.state import ServerState
from agent_runtime.server.store import ResponseStore

__all__ = ["create_app", "create_app_from_yaml"]


def create_app(
    runtime: Runtime, options: ServeOptions | None = None, *, owns_runtime: bool = False
) -> Starlette:
    """An ASGI app serving `runtime`'s agents.

    Args:
        runtime: the agents to serve. The app uses it and leaves it open: the caller opens
            and closes it (`async with runtime`), unless `owns_runtime`.
        options: the server's settings (default: `ServeOptions()`).
        owns_runtime: start the runtime when the app starts and close it when the app stops.

    The app's state (`app.state.server`, a `ServerState`) holds the runtime, the options, the
    kept responses, the metrics and the run gate; two apps share nothing.
    """
    options = options or ServeOptions()
    metrics = Metrics()
    state = ServerState(
        runtime=runtime,
        options=options,
        store=ResponseStore(options.store_limit),
        metrics=metrics,
        gate=Gate(options, metrics=metrics),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if owns_runtime:
                await runtime.start()
                stack.push_async_callback(runtime.aclose)
            stack.callback(metrics.watch(runtime))  # model and tool calls in the metrics
            stack.push_async_callback(responses.cancel_all, state)
            yield

    app = Starlette(
        routes=_routes(options),
        middleware=middleware(state),
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.server = state
    return app


def create_app_from_yaml(
    path: str | Path,
    options: ServeOptions | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **runtime_options: Any,
) -> Starlette:
    """An app that owns a `Runtime.from_yaml(path, environ=..., **runtime_options)`: started
    and closed with the app. Raises `ConfigError` at once for a bad agents.yaml."""
    runtime = Runtime.from_yaml(path, environ=environ, **runtime_options)
    return create_app(runtime, options, owns_runtime=True)


def _routes(options: ServeOptions) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        *ops.routes(),
        *models.routes(),
        *responses.routes(),
        *chat.routes(),
    ]
    if options.ui:
        found += ui.routes()
    return found
