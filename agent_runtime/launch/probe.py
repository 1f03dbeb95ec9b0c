"""A model server seen from outside: what its URL answers, what its log says, and the words
for each problem (`agent_runtime.launch.process` decides what to do about them).

httpx2 is imported when a URL is probed, so importing this module costs nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx2

    from agent_runtime.launch.plan import LaunchPlan

__all__ = [
    "LOG_LINES",
    "PROBE_TIMEOUT_S",
    "Answer",
    "exited",
    "latest_line",
    "log_tail",
    "not_started",
    "probe",
    "served_models",
    "taken",
    "timed_out",
]

LOG_LINES = 20
"""How many lines of a failed server's log an error shows."""

PROBE_TIMEOUT_S = 2.0
"""How long one probe waits for an answer (vLLM can be slow to answer while busy)."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Answer:
    """What the URL answered: ready, nothing (absent), no answer yet (silent), 503 (starting),
    something that is not vLLM (foreign), another model (other_model), a refused key."""

    kind: Literal["ready", "absent", "silent", "starting", "foreign", "other_model", "unauthorized"]
    detail: str = ""
    served: tuple[str, ...] = ()


async def probe(http: httpx2.AsyncClient, plan: LaunchPlan) -> Answer:
    """`GET /health`, then `GET /v1/models`: is the backend's model served at its URL?"""
    import httpx2

    health = f"GET {urlsplit(plan.root_url).path}/health"
    try:
        response = await http.get(f"{plan.root_url}/health")
    except httpx2.ConnectError:
        return Answer("absent")
    except httpx2.TransportError as exc:
        return Answer("silent", f"{health}: no answer ({_why(exc)})")
    if response.status_code == 503:
        return Answer("starting", f"{health} → 503")
    if response.status_code != 200:
        return Answer("foreign", f"{health} → {response.status_code}")
    models = f"GET {urlsplit(plan.base_url).path}/models"
    try:
        response = await http.get(f"{plan.base_url}/models")
    except httpx2.TransportError as exc:
        return Answer("silent", f"{models}: no answer ({_why(exc)})")
    if response.status_code in (401, 403):
        return Answer("unauthorized", f"{models} → {response.status_code}")
    names = served_models(response) if response.status_code == 200 else None
    served = None if names is None else tuple(names)
    if served is None:
        what = "200, but not a list of models" if response.status_code == 200 else ""
        return Answer("foreign", f"{models} → {what or response.status_code}")
    if plan.model not in served:
        return Answer("other_model", served=served)
    return Answer("ready")


def _why(exc: httpx2.TransportError) -> str:
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return f"nothing within {PROBE_TIMEOUT_S:g} s"
    return str(exc) or type(exc).__name__


def served_models(response: httpx2.Response) -> dict[str, int | None] | None:
    """A `/v1/models` answer's model names -> their max_model_len, or None when the body is
    no model list."""
    try:
        body = response.json()
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    names: dict[str, int | None] = {}
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            length = entry.get("max_model_len")
            names[entry["id"]] = length if isinstance(length, int) else None
    return names


def taken(plan: LaunchPlan, answer: Answer, *, own: bool = False) -> str:
    """Why the server at the backend's port cannot be used (`own`: the one started here)."""
    served = ", ".join(repr(name) for name in answer.served) or "no model"
    if own:
        what = {
            "other_model": f"serves {served}, not {plan.model!r}",
            "unauthorized": f"rejected the API key ({answer.detail})",
        }.get(answer.kind, f"does not answer like vLLM ({answer.detail})")
        return (
            f"the server started for backend `{plan.backend}` {what}. Check `launch_command` "
            "and `serve_args`."
        )
    fix = "Stop it, or choose another port in `base_url`."
    if answer.kind == "other_model":
        what = f"a server that serves {served}, not {plan.model!r}"
        fix = "Stop it, choose another port in `base_url`, or set `model:` to what it serves."
    elif answer.kind == "unauthorized":
        what = f"a server that rejected the API key ({answer.detail})"
        fix = (
            f"Set `api_key:` of backend `{plan.backend}` to the key it was started with, or "
            "stop it."
        )
    elif answer.kind == "starting":
        what = f"a server that is not healthy ({answer.detail}: a vLLM whose engine has died?)"
    else:
        what = f"something that is not vLLM ({answer.detail})"
    return (
        f"cannot start the model server of backend `{plan.backend}`: port {plan.port} is taken "
        f"by {what}. {fix}"
    )


def not_started(plan: LaunchPlan, answer: Answer, *, source: str, startable: bool) -> str:
    """Why `agent-runtime up` of a backend with `launch: never` has no server to show, and what
    to do (`source`: the agents.yaml; `startable`: `launch: auto` could start a server at the
    backend's base_url)."""
    never = (
        f"`agent-runtime up` starts no server for backend `{plan.backend}`, whose `launch` is "
        "`never` (the default)"
    )
    if answer.kind == "absent":
        if startable:
            return (
                f"{never}, and nothing answers at {plan.base_url}. Set `launch: auto` for it in "
                f"{source} to let agent-runtime start the server, or start it yourself: "
                f"`{plan.shown_command}`."
            )
        return (
            f"{never}, and nothing answers at {plan.base_url}. Start the server yourself: "
            f"`{plan.shown_command}`."
        )
    served = ", ".join(repr(name) for name in answer.served) or "no model"
    seen = {
        "starting": f"{answer.detail}: still loading, or its engine has died",
        "other_model": f"it serves {served}, not {plan.model!r}",
        "unauthorized": f"it rejected the API key: {answer.detail}",
    }.get(answer.kind, answer.detail)
    return (
        f"{never}, and the server at {plan.base_url} is not ready for it ({seen}). "
        f"`agent-runtime doctor --backend {plan.backend}` says what to fix."
    )


def exited(plan: LaunchPlan, code: int) -> str:
    """The server started here ended during start-up."""
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return (
        f"the model server of backend `{plan.backend}` {how} during start-up "
        f"({plan.shown_command}). {_tail_text(plan.log_path)}"
    )


def timed_out(plan: LaunchPlan, answer: Answer, *, own: bool) -> str:
    """The server (started here: `own`) was not ready within `startup_timeout_s`."""
    limit = f"{plan.startup_timeout_s:g} s (startup_timeout_s)"
    if not own:
        seen = f" ({answer.detail})" if answer.detail else ""
        return (
            f"cannot start the model server of backend `{plan.backend}`: something holds port "
            f"{plan.port} but was not ready within {limit}{seen}. Stop it, or choose another "
            "port in `base_url`."
        )
    seen = f" Last answer: {answer.detail}." if answer.detail else ""
    return (
        f"the model server of backend `{plan.backend}` was not ready within {limit} and was "
        f"stopped.{seen} Raise `startup_timeout_s` if the model needs longer to load. "
        f"{_tail_text(plan.log_path)}"
    )


def _tail_text(path: Path) -> str:
    lines = log_tail(path)
    if not lines:
        return f"Its log ({path}) is empty."
    body = "\n".join(f"  {line}" for line in lines)
    return f"The last lines of its log ({path}):\n{body}"


def log_tail(path: Path, lines: int = LOG_LINES) -> list[str]:
    """The last `lines` non-blank lines of a server log, as a terminal would show them
    (progress bars redrawn with `\\r` give their last state; colours removed)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - 65536))
            data = log.read()
    except OSError:
        return []
    text = _ANSI.sub("", data.decode("utf-8", errors="replace"))
    shown = [line.rstrip("\r").rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    return [line for line in shown if line.strip()][-lines:]


def latest_line(path: Path) -> str:
    """The last non-blank line of a server log ("" when there is none)."""
    tail = log_tail(path, 1)
    return tail[0] if tail else ""
