"""One line per request on the logger `agent_runtime.server.access`, at INFO:

```
POST /v1/responses 200 812.4ms 2345B client=127.0.0.1:50312 key=key_3f9a1c2e agent=weather-haiku
```

method, path (never the query string), status, time until the last byte was sent, bytes of
the response body, the client's address, the fingerprint of its API key (`key=-` without keys;
never the key itself) and the agent, when the route named one (`note_agent`). A request whose
client left before an answer shows status `499`; one whose app raised before answering, `500`.
The logger comes from `agent_runtime.redact.own_logger`, so that a secret in a path is masked
too. Run uvicorn with `access_log=False` to get this line instead of uvicorn's own.
"""

from __future__ import annotations

import time

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.redact import own_logger
from agent_runtime.server.guard import key_id

__all__ = ["AGENT_SCOPE", "LOGGER_NAME", "AccessLog", "note_agent"]

LOGGER_NAME = "agent_runtime.server.access"
AGENT_SCOPE = "agent_runtime.agent"
"""The scope entry where a route notes the agent of a request (`note_agent`)."""

logger = own_logger(LOGGER_NAME)


def note_agent(conn: HTTPConnection | Scope, agent: str) -> None:
    """Name the agent of this request in its access-log line."""
    scope = conn.scope if isinstance(conn, HTTPConnection) else conn
    scope[AGENT_SCOPE] = agent


class AccessLog:
    """ASGI middleware writing the access-log line of each HTTP request when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0
        disconnected = False

        async def watch_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
            return message

        async def watch_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, watch_receive, watch_send)
        except BaseException:
            if not status:
                status = 499 if disconnected else 500
            raise
        finally:
            if not status and disconnected:
                status = 499
            if logger.isEnabledFor(20):  # INFO
                logger.info("%s", _line(scope, status, started, size))


def _line(scope: Scope, status: int, started: float, size: int) -> str:
    client = scope.get("client")
    where = f"{client[0]}:{client[1]}" if client else "-"
    key = key_id(scope) or "-"
    agent = scope.get(AGENT_SCOPE) or "-"
    took = (time.perf_counter() - started) * 1000
    return (
        f"{scope.get('method', '-')} {scope.get('path', '')} {status or '-'} {took:.1f}ms "
        f"{size}B client={where} key={key} agent={agent}"
    )
