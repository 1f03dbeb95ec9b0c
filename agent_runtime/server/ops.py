"""Operations routes: `GET /health`, `GET /ready`, `GET /metrics` (no API key needed).

- `/health` — the process answers: `200 {"status": "ok"}` (a liveness probe; it checks nothing
  else, so a slow model server never gets the process restarted).
- `/ready` — every declared backend answers `GET {base_url}/models` (with its API key and
  headers) within `PROBE_TIMEOUT_S`: `200 {"status": "ready", "backends": {"local": "ok"}}`;
  else `503 {"status": "unavailable", "backends": {"local": "no answer: ..."}}` naming each
  backend that failed. A backend with `base_urls` is ready when one of its replicas answers
  (calls go around the others): `"ok; replica 2 of 3: no answer: ..."` names those that fail.
  While draining: `503 {"status": "draining"}`, so that a load balancer sends no new requests.
  In-process (`vllm-embedded`) backends count as ready.
- `/metrics` — the app's Prometheus metrics (`agent_runtime.server.metrics`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent_runtime.launch.probe import PROBE_TIMEOUT_S
from agent_runtime.redact import redact_text
from agent_runtime.server.state import server_state

if TYPE_CHECKING:
    import httpx2

    from agent_runtime.config import BackendSpec

__all__ = ["backend_status", "routes"]


async def health(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    """Readiness: every backend answers (503 naming those that do not), and not draining."""
    state = server_state(request)
    gate = state.gate
    if gate is not None and gate.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    statuses = await backend_status(state.runtime.config.spec.backends)
    ok = all(status == "ok" or status.startswith("ok;") for status in statuses.values())
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "backends": statuses},
        status_code=200 if ok else 503,
    )


async def metrics(request: Request) -> Response:
    """The app's metrics in Prometheus text format."""
    state = server_state(request)
    if state.metrics is None:
        return Response("# metrics are off\n", media_type="text/plain; version=0.0.4")
    body, content_type = state.metrics.render()
    return Response(body, headers={"Content-Type": content_type})


async def backend_status(
    backends: dict[str, BackendSpec], *, timeout_s: float = PROBE_TIMEOUT_S
) -> dict[str, str]:
    """Each backend's state: `ok`, or what went wrong (no secret or URL in it)."""
    import httpx2

    async with httpx2.AsyncClient(timeout=timeout_s) as http:
        names = list(backends)
        answers = await asyncio.gather(*(_probe(http, backends[name]) for name in names))
    return dict(zip(names, answers, strict=True))


async def _probe(http: httpx2.AsyncClient, spec: BackendSpec) -> str:
    urls = spec.urls
    if not urls:
        return "ok"  # in-process: ready when the runtime is
    answers = await asyncio.gather(*(_probe_url(http, spec, url) for url in urls))
    if len(answers) == 1:
        return answers[0]
    failed = [
        f"replica {index} of {len(answers)}: {answer}"
        for index, answer in enumerate(answers, 1)
        if answer != "ok"
    ]
    if not failed:
        return "ok"
    return "; ".join(["ok", *failed] if len(failed) < len(answers) else failed)


async def _probe_url(http: httpx2.AsyncClient, spec: BackendSpec, base_url: str) -> str:
    import httpx2

    headers = dict(spec.headers or {})
    key = spec.api_key.get_secret_value()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = base_url.rstrip("/") + "/models"
    try:
        response = await http.get(url, headers=headers)
    except httpx2.TimeoutException:
        return f"no answer within {http.timeout.read or PROBE_TIMEOUT_S:g} s"
    except httpx2.TransportError as exc:
        return f"unreachable: {redact_text(str(exc)) or type(exc).__name__}"
    if response.status_code != 200:
        return f"GET /models answered {response.status_code}"
    return "ok"


def routes() -> list[Route]:
    """`/health`, `/ready`, `/metrics`."""
    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
