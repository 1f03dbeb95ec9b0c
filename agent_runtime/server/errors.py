"""Every error the server answers, in OpenAI's shape: never a traceback, never an HTML page.

```json
{"error": {"message": "...", "type": "invalid_request_error", "param": "model", "code": null}}
```

| status | type                  | code                | when                                     |
|--------|-----------------------|---------------------|------------------------------------------|
| 400    | invalid_request_error | null                | body not JSON, or a bad field (`param`)  |
| 401    | invalid_request_error | invalid_api_key     | keys set; none valid in the request      |
| 404    | invalid_request_error | model_not_found     | unknown agent (the message lists them)   |
| 404    | invalid_request_error | not_found           | unknown path                             |
| 405    | invalid_request_error | method_not_allowed  | known path, another method               |
| 413    | invalid_request_error | request_too_large   | body past `max_body_bytes`               |
| 429    | rate_limit_error      | too_many_runs       | `max_runs_per_key` runs in flight        |
| 502    | server_error          | backend_error       | the model server failed (retried)        |
| 502    | server_error          | backend_unavailable | the model server cannot be reached       |
| 503    | server_error          | draining            | shutting down (`Retry-After`)            |
| 504    | server_error          | backend_timeout     | the model server timed out               |
| 500    | server_error          | run_error           | a run failed otherwise                   |
| 500    | server_error          | server_error        | a bug: short message; details in the log |

429 and 503 carry `Retry-After`; 401 carries `WWW-Authenticate: Bearer`.

A run that hits its limit (`RunLimitError`: max turns, time budget) is not an HTTP error for the
Responses API: the response ends `incomplete` (that is the handler's call); `run_error` maps it
to 500 `run_limit` for the faces that have no such status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agent_runtime.errors import (
    AgentRuntimeError,
    BackendError,
    BackendUnavailableError,
    ConfigError,
    RunError,
    RunLimitError,
)
from agent_runtime.redact import own_logger, redact_text
from agent_runtime.results import RunResult

__all__ = [
    "APIError",
    "ApprovalRequiredError",
    "error_body",
    "error_response",
    "exception_handlers",
    "invalid_json",
    "refuse_approvals",
    "run_error",
    "unknown_agent",
    "validation_error",
]

logger = own_logger(__name__)


class ApprovalRequiredError(RunError):
    """A served run stopped for a person to approve a tool call (`approval: always`): served
    agents cannot wait for that yet, so the run ends failed with this error."""


def refuse_approvals(result: RunResult) -> RunResult:
    """`result`, unless the run stopped for approval: then `ApprovalRequiredError`, saying
    which calls and what to change (the run ends failed).

    Raises:
        ApprovalRequiredError: `result` has `pending_approvals`.
    """
    if not result.pending_approvals:
        return result
    calls = ", ".join(f"`{call.name}` (agent `{call.agent}`)" for call in result.pending_approvals)
    raise ApprovalRequiredError(
        f"the run stopped for a person to approve a call of {calls}, declared with "
        "`approval: always` in agents.yaml; a served agent cannot wait for an approval. Set "
        "`approval: never` on the tools of the agents you serve, or run the agent where a "
        "person can answer (`agent-runtime run`, or `Runtime.run` then `Runtime.resume`)."
    )


_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


class APIError(Exception):
    """An error answered to the client as `{"error": {...}}` with `status`.

    Args:
        status: the HTTP status.
        message: what is wrong and how to fix it (shown to the client as is).
        type: OpenAI's error type (`invalid_request_error`, `rate_limit_error`,
            `server_error`, ...).
        param: the dotted path of the request field at fault, if any.
        code: a short machine-readable code (`invalid_api_key`, `model_not_found`, ...).
        headers: extra response headers (`Retry-After`, `WWW-Authenticate`).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body: `{"error": {"message", "type", "param", "code"}}`."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)

    def response(self) -> JSONResponse:
        """The error as a Starlette response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)

    def encoded(self) -> bytes:
        """The JSON body as bytes (for pure ASGI code that sends it itself)."""
        return json.dumps(self.body(), ensure_ascii=False).encode()


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(exc: APIError) -> JSONResponse:
    """`exc` as a response (same as `exc.response()`)."""
    return exc.response()


def run_error(exc: AgentRuntimeError) -> APIError:
    """The HTTP error for an error that ended a run (or stopped it from starting).

    `BackendUnavailableError` whose cause is a timeout → 504 `backend_timeout`; other
    `BackendUnavailableError` → 502 `backend_unavailable`; `BackendError` → 502
    `backend_error` (504 when the message says the server timed out); `ConfigError`
    (a bad run option) → 400 naming the option; `RunLimitError` → 500 `run_limit`;
    `ApprovalRequiredError` → 500 `approval_required`; `RunError` and anything else → 500
    `run_error`. The message is the error's own, already
    redacted by the runtime (and redacted once more here).
    """
    message = redact_text(str(exc))
    if isinstance(exc, BackendError):
        if _timed_out(exc):
            return APIError(504, message, type="server_error", code="backend_timeout")
        code = (
            "backend_unavailable" if isinstance(exc, BackendUnavailableError) else "backend_error"
        )
        return APIError(502, message, type="server_error", code=code)
    if isinstance(exc, ConfigError):
        problem = exc.problems[0]
        return APIError(400, problem.message, param=problem.path or None)
    if isinstance(exc, RunLimitError):
        return APIError(500, message, type="server_error", code="run_limit")
    if isinstance(exc, ApprovalRequiredError):
        return APIError(500, message, type="server_error", code="approval_required")
    if isinstance(exc, RunError):
        return APIError(500, message, type="server_error", code="run_error")
    return APIError(500, message, type="server_error", code="run_error")


def _timed_out(exc: BaseException) -> bool:
    """Whether a backend error comes from a timeout (its cause chain, or its words)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return True
        current = current.__cause__ or current.__context__
    text = str(exc).lower()
    return "timed out" in text or "timeout" in text


def validation_error(exc: Any) -> APIError:
    """400 for a pydantic `ValidationError` of a request body: the first problem, its field as
    `param` (dotted path: `input[0].content`), every problem in the message."""
    problems = exc.errors(include_url=False)
    if not problems:
        return APIError(400, "the request body is not valid.")
    lines = []
    for problem in problems:
        where = _dotted(problem.get("loc", ()))
        text = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
        if problem.get("type") == "extra_forbidden":
            text = "unknown field"
        lines.append(f"{where}: {text}" if where else text)
    first = _dotted(problems[0].get("loc", ()))
    message = "; ".join(lines)
    return APIError(400, f"invalid request body: {message}.", param=first or None)


def _dotted(loc: Any) -> str:
    """pydantic's `loc` as a dotted path: `("input", 0, "content")` → `input[0].content`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def unknown_agent(name: object, agents: Sequence[str], *, param: str = "model") -> APIError:
    """404 `model_not_found` for a `model` that names no served agent, listing the agents."""
    from agent_runtime.text import did_you_mean

    listing = ", ".join(agents) or "none"
    hint = did_you_mean(name, list(agents), quote="'") or "."
    return APIError(
        404,
        f"no agent named {name!r}{hint} The models here are the agents: {listing}.",
        param=param,
        code="model_not_found",
    )


def invalid_json(exc: ValueError) -> APIError:
    """400 for a body that is not JSON (or not a JSON object)."""
    return APIError(
        400,
        f"the request body is not valid JSON: {exc}. Send a JSON object with "
        "`Content-Type: application/json`.",
    )


Handler = Callable[[Request, Exception], Awaitable[Response]]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 404:
        message = f"no route for {request.method} {request.url.path}."
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    code = _STATUS_CODES.get(status)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return APIError(status, message, type=kind, code=code, headers=exc.headers).response()


async def _validation(request: Request, exc: Exception) -> Response:
    return validation_error(exc).response()


async def _runtime_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentRuntimeError)
    return run_error(exc).response()


async def _other(request: Request, exc: Exception) -> Response:
    logger.error(
        "%s %s failed: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        redact_text(str(exc)),
        exc_info=exc,
    )
    return APIError(
        500,
        f"the server failed on {request.method} {request.url.path} "
        f"({type(exc).__name__}); the server's log has the details.",
        type="server_error",
        code="server_error",
    ).response()


def exception_handlers() -> dict[Any, Handler]:
    """Handlers for `Starlette(exception_handlers=...)`: `APIError`, Starlette's
    `HTTPException` (404/405...), pydantic's `ValidationError` (400 naming the field),
    `AgentRuntimeError` (`run_error`), and any other `Exception` (500 `server_error`: the
    short message to the client, the traceback to the log)."""
    import pydantic

    return {
        APIError: _api_error,
        HTTPException: _http_error,
        pydantic.ValidationError: _validation,
        AgentRuntimeError: _runtime_error,
        Exception: _other,
    }
