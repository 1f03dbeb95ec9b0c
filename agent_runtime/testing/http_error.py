"""vLLM's error envelope, as the mock answers bad requests."""

from __future__ import annotations

from typing import Any

__all__ = ["VLLMHTTPError", "bad_request", "not_found", "validation_error"]


class VLLMHTTPError(Exception):
    """An error answer: HTTP `status` with `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(self, status: int, message: str, *, type: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param

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


def bad_request(message: str, *, param: str | None = None) -> VLLMHTTPError:
    """A 400 as vLLM maps a `ValueError` raised while serving."""
    return VLLMHTTPError(400, message, type="BadRequestError", param=param)


def not_found(message: str, *, param: str | None = None) -> VLLMHTTPError:
    """A 404 as vLLM maps a not-found condition."""
    return VLLMHTTPError(404, message, type="NotFoundError", param=param)


_ROUTES = {
    "responses": ("create_responses", 48, "/v1/responses"),
    "chat_completions": ("create_chat_completion", 40, "/v1/chat/completions"),
}


def validation_error(
    api: str, errors: list[dict[str, Any]], *, param: str | None = None
) -> VLLMHTTPError:
    """A 400 for a body that fails vLLM's pydantic request model, worded as FastAPI + vLLM do.

    vLLM's handler writes `f"{exc} {exc.errors()}"`: FastAPI's summary of the errors with the
    endpoint it was raised in, then the Python repr of the error list.
    """
    function, line, path = _ROUTES[api]
    count = len(errors)
    listing = "\n".join(f"  {error!r}" for error in errors)
    trailer = (
        f'\n\n  File "/usr/local/lib/python3.12/dist-packages/vllm/entrypoints/utils.py", '
        f"line {line}, in {function}\n    POST {path}"
    )
    summary = f"{count} validation error{'s' if count != 1 else ''}:\n{listing}{trailer}"
    return VLLMHTTPError(400, f"{summary} {errors!r}", type="Bad Request", param=param)
