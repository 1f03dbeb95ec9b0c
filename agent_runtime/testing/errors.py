"""vLLM's error envelope, as the mock answers bad requests."""

from __future__ import annotations

from typing import Any

__all__ = ["VLLMHTTPError", "bad_request", "not_found"]


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
