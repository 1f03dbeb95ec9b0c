"""The dev UI at `/`: one page that talks to the server's own Responses API.

Pick an agent, chat with it, and watch the run as it streams: reasoning, the agent's tool calls with
their arguments, results and timings, handoffs, the answer, usage. Conversations are kept in the
browser (localStorage) and continue on the server with `previous_response_id`. The API key, when
the server needs one, is typed into the page and kept for the browser tab only (sessionStorage).

The page is a single static file; model and tool text is only ever inserted as text, never as
HTML, and the page's Content-Security-Policy lets it talk to this server only.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

__all__ = ["routes"]

_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@functools.cache
def _page() -> str:
    return (resources.files("agent_runtime.server") / "static" / "index.html").read_text("utf-8")


async def _index(request: Request) -> HTMLResponse:
    return HTMLResponse(
        _page(),
        headers={
            "Content-Security-Policy": _POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        },
    )


def routes() -> list[BaseRoute]:
    """The UI's routes (`GET /`)."""
    return [Route("/", _index, methods=["GET"])]
