"""What a `doctor` check is, the backend it runs against, and the checks over plain HTTP.

A `Check` is one line of the report: passed, failed (required or a warning) or not run. A
`Target` is a backend with the command-line overrides applied; it knows which checks its
backend depends on, words the fixes that name its settings, and how long a request may still
take (`--timeout` for the whole request, never past the command's `--deadline`).
`check_server`, `check_version` and `check_model` make the first four checks (reachable,
health, version, model) with an httpx2 client the caller opens.

What a server sends is data: an answer that is not what vLLM sends (HTML, invalid JSON, an
error object with status 200) fails its check with a short, quoted view of what came back.

httpx2 is imported inside the functions, so that importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from agent_runtime.launch.probe import served_models

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "CHECKED_RELEASES",
    "CHECKS",
    "Api",
    "Check",
    "Need",
    "Target",
    "check_model",
    "check_server",
    "check_version",
    "preview",
]

Api = Literal["responses", "chat_completions"]

CHECKS = (
    "reachable",
    "health",
    "version",
    "model",
    "responses tool call",
    "chat tool call",
    "reasoning",
)

CHECKED_RELEASES = ("0.22.1", "0.33.0")
"""The vLLM releases agent-runtime (its mock server, its embedded backend) follows."""

_SERVE_FLAGS = (
    "--tool-call-parser openai --enable-auto-tool-choice --reasoning-parser openai_gptoss"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """The outcome of one check.

    Attributes:
        name: one of `CHECKS`.
        ok: True passed, False failed, None not run.
        detail: what was seen (or why the check was not run).
        fix: what to do about a failure.
        required: whether a failure fails the command (False: a warning).
        blocks: set when the later checks cannot run; says why.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str | None = None
    required: bool = True
    blocks: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON: name, ok, required, detail, fix."""
        return {
            "name": self.name,
            "ok": self.ok,
            "required": self.required,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    """A configured feature that needs a vLLM release at least this new."""

    release: tuple[int, ...]
    what: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A backend with the command-line overrides applied."""

    name: str
    kind: str
    api: Api
    base_url: str
    model: str
    api_key: str
    headers: Mapping[str, str]
    reasoning_field: str
    source: str
    timeout_s: float
    needs: tuple[Need, ...] = ()
    deadline: float = math.inf
    """When the command must end (`time.monotonic()`)."""
    deadline_s: float = math.inf
    """`--deadline`, for messages."""

    def budget(self) -> float:
        """How long the next request may take: `timeout_s`, or less near the deadline."""
        return max(0.0, min(self.timeout_s, self.deadline - time.monotonic()))

    def overdue(self) -> bool:
        """Whether the command's deadline has passed."""
        return time.monotonic() >= self.deadline

    def late(self, what: str = "no answer") -> str:
        """Why a request was given up: its own timeout, or the command's deadline."""
        if self.overdue():
            return f"{what} before doctor's deadline ({self.deadline_s:g} s, --deadline)"
        return f"{what} within {self.timeout_s:g} s"

    @property
    def root(self) -> str:
        """The server root (vLLM serves `/health` there, not under `/v1`)."""
        return self.base_url.rstrip("/").removesuffix("/v1")

    def path(self, suffix: str) -> str:
        """`suffix` under base_url, as a path for messages (`/v1/models`)."""
        return urlsplit(self.base_url).path.rstrip("/") + suffix

    def required(self, check: str) -> bool:
        """Whether a failure of `check` fails the command for this backend."""
        if check == "health":
            return self.kind == "vllm"
        if check == "version":
            return False
        if check == "responses tool call":
            return self.api == "responses"
        if check == "chat tool call":
            return self.api == "chat_completions"
        return True

    def base_url_fix(self) -> str:
        base = self.base_url.rstrip("/")
        if not base.endswith("/v1"):
            return (
                f"set `base_url:` of backend '{self.name}' to {base}/v1 "
                "(vLLM serves the API under /v1)"
            )
        return "point `base_url:` at vLLM's root URL plus /v1, e.g. http://localhost:8000/v1"

    def serve_command(self) -> str:
        if self.model.startswith("openai/gpt-oss-"):
            return f"vllm serve {self.model} {_SERVE_FLAGS}"
        return f"vllm serve openai/gpt-oss-20b --served-model-name {self.model} {_SERVE_FLAGS}"

    def key_fix(self) -> str:
        return (
            f"set `api_key:` of backend '{self.name}' in {self.source} (or pass --api-key) to a "
            "key vLLM was started with (vllm serve ... --api-key KEY)"
        )


async def check_server(http: httpx2.AsyncClient, target: Target) -> tuple[Check, Check | None]:
    """The reachable and health checks, from one `GET /health`; no health check when unreachable."""
    import httpx2

    where = f"GET {urlsplit(target.root).path}/health"
    try:
        async with asyncio.timeout(target.budget()):
            response = await http.get(f"{target.root}/health")
    except TimeoutError:
        return Check(
            name="reachable",
            ok=False,
            detail=f"{where} at {target.root}: {target.late()}",
            fix="see the server's log; a slow or overloaded server may need more time: "
            "--timeout SECONDS (each request), --deadline SECONDS (the whole command)",
            blocks="the server does not answer",
        ), None
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.UnsupportedProtocol) as exc:
        why = _why(exc, target, "no connection")
        fix = (
            f"start vLLM ({target.serve_command()}), or point backend '{target.name}' at a "
            f"running server (`base_url:` in {target.source}, or --base-url)"
        )
        return Check(
            name="reachable",
            ok=False,
            detail=f"cannot connect to {target.base_url}: {why}",
            fix=fix,
            blocks="server unreachable",
        ), None
    except httpx2.HTTPError as exc:
        reachable = Check(name="reachable", ok=True, detail=f"connected to {target.root}")
        fix = "the server accepts connections but does not answer: see its log, restart it"
        detail = f"{where}: {_why(exc, target)}"
        health = Check(
            name="health", ok=False, detail=detail, fix=fix, required=target.required("health")
        )
        return reachable, health
    reachable = Check(name="reachable", ok=True, detail=f"connected to {target.root}")
    required = target.required("health")
    status = response.status_code
    if status == 200:
        return reachable, Check(name="health", ok=True, detail=f"{where} → 200", required=required)
    if status == 404:
        detail = f"{where} → 404: this server has no /health; is it vLLM?"
        fix = target.base_url_fix()
    elif status == 503:
        detail = f"{where} → 503: the engine is not ready or has died"
        fix = "wait until vLLM's log says it is ready; if it stays 503, see the log and restart"
    else:
        detail = f"{where} → {status}"
        fix = "see the server's log"
    return reachable, Check(name="health", ok=False, detail=detail, fix=fix, required=required)


def _why(exc: httpx2.HTTPError, target: Target, timed_out: str = "no answer") -> str:
    """An httpx2 failure in words; a timeout says how long it waited."""
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return target.late(timed_out)
    return str(exc) or type(exc).__name__


async def check_model(http: httpx2.AsyncClient, target: Target) -> Check:
    """The model check: `GET /v1/models` lists the backend's model."""
    import httpx2

    where = f"GET {target.path('/models')}"
    try:
        async with asyncio.timeout(target.budget()):
            response = await http.get(target.base_url.rstrip("/") + "/models")
    except (httpx2.HTTPError, TimeoutError) as exc:
        why = target.late() if isinstance(exc, TimeoutError) else _why(exc, target)
        return Check(
            name="model",
            ok=False,
            detail=f"{where}: {why}",
            fix="see the server's log",
            blocks=f"{where} failed",
        )
    status = response.status_code
    if status in (401, 403):
        sent = (
            "the server wants an API key (api_key is EMPTY)"
            if target.api_key == "EMPTY"
            else "the API key was rejected"
        )
        return Check(
            name="model",
            ok=False,
            detail=f"{where} → {status}: {sent}",
            fix=target.key_fix(),
            blocks="the API key was rejected",
        )
    names = served_models(response) if status == 200 else None
    if names is None:
        what = (
            f"{status}" if status != 200 else f"200, but not a list of models: {preview(response)}"
        )
        return Check(
            name="model",
            ok=False,
            detail=f"{where} → {what}",
            fix=target.base_url_fix(),
            blocks=f"{where} failed",
        )
    if target.model not in names:
        served = ", ".join(repr(name) for name in names) or "nothing"
        return Check(
            name="model",
            ok=False,
            detail=f"{target.model!r} is not served; the server serves {served}",
            fix=(
                f"set `model:` of backend '{target.name}' to {' or '.join(map(repr, names))} "
                f"(or pass --model), or start vLLM with --served-model-name {target.model}"
            ),
            blocks="the model is not served",
        )
    length = names[target.model]
    extra = f" (max_model_len {length})" if length is not None else ""
    return Check(name="model", ok=True, detail=f"{target.model} is served{extra}")


async def check_version(http: httpx2.AsyncClient, target: Target) -> Check:
    """The version check: which vLLM answers (`GET /version`), and whether it is new enough for
    what agents.yaml asks of it (a warning when not: the server still answers)."""
    import httpx2

    where = f"GET {urlsplit(target.root).path}/version"
    try:
        async with asyncio.timeout(target.budget()):
            response = await http.get(f"{target.root}/version")
        body = response.json() if response.status_code == 200 else None
    except TimeoutError:
        detail = f"{where}: {target.late()}"
        return Check(
            name="version", ok=False, detail=detail, fix="see the server's log", required=False
        )
    except (httpx2.HTTPError, ValueError):
        body = None
    version = body.get("version") if isinstance(body, dict) else None
    if not isinstance(version, str):
        if target.kind != "vllm":
            return Check(
                name="version", ok=None, detail="not run: not a vLLM server", required=False
            )
        return Check(
            name="version",
            ok=False,
            detail=f"{where} gives no vLLM version: is it vLLM?",
            fix=target.base_url_fix(),
            required=False,
        )
    from packaging.version import InvalidVersion, Version

    try:
        release = Version(version).release
    except InvalidVersion:
        release = ()
    missing = [need for need in target.needs if release < need.release]
    oldest = Version(CHECKED_RELEASES[0]).release
    if release < oldest:
        missing.append(
            Need(
                release=oldest[:2],
                what="agent-runtime follows vLLM "
                + " and ".join(CHECKED_RELEASES)
                + "; older servers answer differently",
            )
        )
    if not missing:
        return Check(name="version", ok=True, detail=f"vLLM {version}", required=False)
    newest = max(need.release for need in missing)
    return Check(
        name="version",
        ok=False,
        detail=f"vLLM {version}: " + "; ".join(need.what for need in missing),
        fix=f"upgrade vLLM to {newest[0]}.{newest[1]} or later (pip install -U vllm; "
        f"{CHECKED_RELEASES[-1]} is the release checked)",
        required=False,
    )


def preview(response: httpx2.Response, limit: int = 100) -> str:
    """What came back, for a message: the content type and the start of the body, quoted (so
    control characters are escaped), with how much was left out."""
    kind = response.headers.get("content-type", "no content type")
    text = response.text
    shown = repr(text[:limit]) if text else "an empty body"
    if len(text) > limit:
        shown += f"… [{len(text) - limit:,} more characters]"
    return f"{shown} ({kind})"
