"""vLLM's error envelope, as the mock answers bad requests.

Every refusal is `{"error": {"message", "type", "param", "code"}}` with the HTTP status as `code`.
How a body failing vLLM's pydantic request model is worded changed in vLLM 0.33 (the profile's
`validation_errors`), and so did naming the parameter at fault (`error_parameters`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_runtime.testing.profile import VLLMProfile

__all__ = [
    "SITE_PACKAGES",
    "VLLMHTTPError",
    "VLLMValidationError",
    "bad_request",
    "media_type_error",
    "not_found",
    "parameter_error",
    "validation_error",
]

SITE_PACKAGES = "<site-packages>"
"""vLLM's installation folder as listed errors show it (0.22 names the endpoint's file):
it depends on the installation, and the recorded answers write it so."""

_SHOWN_ERRORS = 10
_MEDIA_TYPE = "Unsupported Media Type: Only 'application/json' is allowed"
_ROUTES = {
    "responses": ("create_responses", 48, "/v1/responses"),
    "chat_completions": ("create_chat_completion", 40, "/v1/chat/completions"),
}


class VLLMHTTPError(Exception):
    """An error answer: HTTP `status` with `{"error": {"message", "type", "param", "code"}}`.

    `final` marks an error that asking again cannot mend: the answer then carries
    `x-should-retry: false`, which the `openai` client obeys instead of retrying a 5xx.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str,
        param: str | None = None,
        final: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.final = final

    def body(self) -> dict[str, Any]:
        """The JSON body vLLM sends for this error (HTTP status equals `code`)."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.status,
            }
        }


class VLLMValidationError(ValueError):
    """vLLM's `ValueError` naming the request parameter at fault.

    Its text ends with ` (parameter=...)` when it names one, as vLLM's does.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter

    def __str__(self) -> str:
        return f"{self.message} (parameter={self.parameter})" if self.parameter else self.message


def bad_request(message: str, *, param: str | None = None) -> VLLMHTTPError:
    """A 400 as vLLM maps a `ValueError` raised while serving."""
    return VLLMHTTPError(400, message, type="BadRequestError", param=param)


def not_found(message: str, *, param: str | None = None) -> VLLMHTTPError:
    """A 404 as vLLM maps a not-found condition."""
    return VLLMHTTPError(404, message, type="NotFoundError", param=param)


def parameter_error(profile: VLLMProfile, message: str, parameter: str) -> VLLMHTTPError:
    """A 400 `BadRequestError` for a bad `parameter`: vLLM 0.33 names it (in `param` and at
    the end of the message), before it does not."""
    if profile.error_parameters:
        error = VLLMValidationError(message, parameter=parameter)
        return bad_request(str(error), param=parameter)
    return bad_request(message)


def media_type_error(profile: VLLMProfile) -> VLLMHTTPError:
    """The 400 for a body that is not `application/json` (vLLM's check runs before FastAPI's
    endpoint, so a listed message names no file)."""
    return _validation_error(profile, [_MEDIA_TYPE], route=None)


def validation_error(api: str, profile: VLLMProfile, errors: Sequence[Any]) -> VLLMHTTPError:
    """A 400 for a body that fails vLLM's pydantic request model, worded as `profile`'s vLLM.

    Args:
        api: `responses` or `chat_completions`: the endpoint listed errors name.
        profile: the vLLM whose wording to use.
        errors: FastAPI's errors (pydantic's, `loc` starting with `body`, without `url`).
    """
    return _validation_error(profile, errors, route=_ROUTES[api])


def _validation_error(
    profile: VLLMProfile, errors: Sequence[Any], *, route: tuple[str, int, str] | None
) -> VLLMHTTPError:
    raised = _raised(errors)
    if profile.validation_errors == "summarised":
        if isinstance(raised, VLLMValidationError) and raised.parameter:
            return bad_request(str(raised), param=raised.parameter)
        return _summarised(errors)
    return _listed(errors, raised, route)


def _raised(errors: Sequence[Any]) -> Exception | None:
    """The exception a model validator raised (pydantic keeps it in the error's `ctx`)."""
    for error in errors:
        if isinstance(error, dict) and error.get("type") == "value_error":
            raised = error.get("ctx", {}).get("error")
            if isinstance(raised, Exception):
                return raised
    return None


def _listed(
    errors: Sequence[Any], raised: Exception | None, route: tuple[str, int, str] | None
) -> VLLMHTTPError:
    """0.22: `f"{exc} {exc.errors()}"` of FastAPI's `RequestValidationError`."""
    count = len(errors)
    listing = "\n".join(f"  {error}" for error in errors)
    summary = f"{_count(count)}:\n{listing}"
    if route is not None:
        function, line, path = route
        summary += (
            f'\n\n  File "{SITE_PACKAGES}/vllm/entrypoints/utils.py", line {line}, in {function}'
            f"\n    POST {path}"
        )
    param = raised.parameter if isinstance(raised, VLLMValidationError) else None
    return VLLMHTTPError(400, f"{summary} {list(errors)!r}", type="Bad Request", param=param)


def _summarised(errors: Sequence[Any]) -> VLLMHTTPError:
    """vLLM 0.33: the first errors with dotted locations and summarised inputs."""
    shown = [_summary(error) for error in errors[:_SHOWN_ERRORS]]
    lines = [f"  {line if isinstance(line, str) else repr(line)}" for line in shown]
    hidden = len(errors) - len(shown)
    if hidden:
        lines.append(f"  ...and {hidden} more error{'s' if hidden != 1 else ''}")
    first = shown[0] if shown else None
    param = first["loc"] if isinstance(first, dict) else None
    message = f"{_count(len(errors))}:\n" + "\n".join(lines)
    return VLLMHTTPError(400, message, type="Bad Request", param=param)


def _summary(error: Any) -> Any:
    """One error as vLLM 0.33 lists it: `loc` dotted, the input summarised."""
    if not isinstance(error, dict):
        return str(error)
    summary = {
        "type": error.get("type"),
        "loc": ".".join(str(part) for part in error.get("loc", ()) if not _union_tag(part)),
        "msg": error.get("msg"),
        "input": _brief(error.get("input")),
    }
    if "ctx" in error:
        summary["ctx"] = error["ctx"]
    return summary


def _union_tag(part: Any) -> bool:
    """Pydantic's location step naming a union member that is not a model (`str`,
    `list[...]`): vLLM 0.33 leaves it out, and keeps model names (`EasyInputMessageParam`)."""
    return isinstance(part, str) and (
        "[" in part or part in {"str", "int", "float", "bool", "bytes", "dict", "list", "none"}
    )


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return f"<dict of {len(value)} items>"
    if isinstance(value, list | tuple):
        return f"<list of {len(value)} items>"
    return str(value)


def _count(count: int) -> str:
    return f"{count} validation error{'s' if count != 1 else ''}"
