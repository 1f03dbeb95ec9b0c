"""What crosses the wire to a model server, checked: request text that is not valid Unicode,
header values HTTP cannot carry, answers that are not what the API returns, answers too large.

- **Request text**: a lone surrogate (`"\\ud800"`: a file name read with `surrogateescape`, a
  model's broken escape) cannot be encoded as UTF-8. `valid_text` replaces each with U+FFFD,
  so the body is valid UTF-8 JSON that any server parses (an escaped `\\ud800` would be valid
  JSON that strict parsers still reject).
- **Header values**: an API key or header value with a line break, a control character or a
  character that is not ASCII cannot be sent at all (`.env` files saved with CRLF line ends
  leave a `\\r` at the end of each value). `header_problem` says which header and what is
  wrong, never the value; such a request is not retried.
- **Unexpected answers**: an HTTP 200 whose body is HTML, empty, invalid JSON, an error
  envelope or JSON of another shape (a proxy, a web server, a wrong `base_url`) is an
  `InvalidAnswerError`, retried like a broken-off answer; its message says what came back
  (content type, size, the first characters, made printable) and what to check.
- **Tool-call arguments nested too deeply** for Python's JSON reader (a model that writes
  100,000 brackets) make it raise `RecursionError`, which the Agents SDK does not catch:
  `readable_arguments` puts a short note that is not JSON in their place, so the call goes back
  to the model as arguments that are not valid JSON and the run goes on.
- **Size**: every response body the HTTP client of a backend receives counts against its
  `max_response_bytes` as it arrives: the whole body of an answer, all the events of a
  streamed one together (an endless stream ends too), an error body; bytes as received, before
  any decompression. Past the limit the call ends with a `BackendError` (not retried) naming
  it; a `Content-Length` above it ends the call before anything is read. An `http_client`
  passed in by the caller is used as it is, with its own limits.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import BackendError
from agent_runtime.text import valid_unicode_json

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "InvalidAnswerError",
    "RequestHeaderError",
    "describe_answer",
    "header_problem",
    "readable_arguments",
    "response_size_limit",
    "valid_text",
]

_BRACKETS_BEFORE_CHECK = 500
"""Arguments with fewer opening brackets cannot nest deep enough to matter: not parsed here."""

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""Most bytes one response body (an answer, a whole stream) may have by default: a streamed
answer of gpt-oss's full 131,072-token context is about 37 MB of events; a non-streamed one is
a few MB at most."""

SHOWN_CHARS = 200
"""How much of an unexpected body an error message shows."""


# -- request text ---------------------------------------------------------------------------------


def valid_text(value: Any) -> Any:
    """`value` (plain JSON values) with every string made valid Unicode (`valid_unicode_json`):
    a surrogate pair written as two code points is joined, a lone surrogate becomes U+FFFD."""
    return valid_unicode_json(value)


# -- header values --------------------------------------------------------------------------------

_LINE_ENDS = "a .env file saved with Windows (CRLF) line ends leaves one at the end of each value"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def header_problem(headers: Mapping[str, object]) -> str | None:
    """What makes one of `headers` unsendable, in words that never include a value (the API
    key is the value of `Authorization` after `Bearer `); None when all can be sent."""
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            return (
                f"the header name {name!r} has characters header names cannot have (letters, "
                "digits and !#$%&'*+-.^_`|~ only)"
            )
        if not isinstance(value, str):
            continue
        if name.lower() == "authorization" and value.startswith("Bearer "):
            problem = _value_problem("the API key", value.removeprefix("Bearer "))
        else:
            problem = _value_problem(f"the value of header `{name}`", value)
        if problem is not None:
            return problem
    return None


def _value_problem(what: str, value: str) -> str | None:
    if value[:1] in (" ", "\t") or value[-1:] in (" ", "\t"):
        where = "starts" if value[:1] in (" ", "\t") else "ends"
        return f"{what} {where} with a space or tab, which HTTP headers cannot carry"
    for index, char in enumerate(value):
        code = ord(char)
        if (code < 0x20 and char != "\t") or code == 0x7F:
            where = "at its end" if index == len(value) - 1 else f"at character {index + 1}"
            kind = {"\r": "a carriage return (\\r)", "\n": "a line feed (\\n)"}.get(
                char, f"a control character (U+{code:04X})"
            )
            hint = f" ({_LINE_ENDS}: convert it with `dos2unix`)" if char in "\r\n" else ""
            return f"{what} contains {kind} {where}, which HTTP headers cannot carry{hint}"
        if code > 0x7E:
            return (
                f"{what} contains a character that is not ASCII (U+{code:04X}) at character "
                f"{index + 1}, which HTTP headers cannot carry (a stray character copied with "
                "it: a non-breaking space, a typographic quote?)"
            )
    return None


class RequestHeaderError(Exception):
    """A request cannot be sent: a header value has characters HTTP does not allow. The
    message names the header and the problem, never the value."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)

    def backend_error(self, backend: str, url: str) -> BackendError:
        """The error for the run: not retried, since the same request would fail again."""
        return BackendError(
            f"cannot send requests to the model server of backend `{backend}` at {url}: "
            f"{self.problem}. No request was sent: fix the value where it is set (agents.yaml, "
            "a .env file, an environment variable, --api-key).",
            url=url,
        )


# -- answers that are not what the API returns ---------------------------------------------------


class InvalidAnswerError(Exception):
    """An HTTP 200 whose body is not the API's answer (worth asking again: a proxy or a
    restarting server may answer properly next time); the message says what came back."""


_FIX = (
    "Check that `base_url` is the address of vLLM's OpenAI-compatible API (http://HOST:PORT/v1) "
    "and not of a proxy, a web page or another service"
)


def describe_answer(
    path: str, status: int, content_type: str | None, body: bytes, *, expected: str
) -> str:
    """Why `body` is not a `expected` answer: what came back and what to check."""
    kind = content_type or "no content type"
    size = f"{len(body):,} byte{'s' if len(body) != 1 else ''}"
    if not body.strip():
        return f"`{path}` answered HTTP {status} with an empty body ({kind}). {_FIX}"
    text = body.decode("utf-8", "replace")
    shown = repr(text[:SHOWN_CHARS]) + ("…" if len(text) > SHOWN_CHARS else "")
    seen = f"({kind}, {size}): {shown}"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        why = "is not JSON" if "json" not in kind.lower() else f"is not valid JSON ({exc})"
        return f"`{path}` answered HTTP {status} with a body that {why} {seen}. {_FIX}"
    error = _error_message(data)
    if error is not None:
        return (
            f"`{path}` answered HTTP {status} with an error instead of an answer: {error!r} {seen}"
        )
    return f"`{path}` answered HTTP {status} with JSON that is not {expected} {seen}. {_FIX}"


def _error_message(data: object) -> str | None:
    """The message of an error envelope (`{"error": {...}}`, `{"object": "error", ...}`,
    `{"detail": ...}`), or None for other JSON."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if error is None and data.get("object") == "error":
        error = data
    if error is None and "detail" in data:
        error = data["detail"]
    if isinstance(error, dict):
        message = error.get("message")
        return str(message) if message is not None else json.dumps(error)[:SHOWN_CHARS]
    if isinstance(error, str):
        return error
    return None


# -- size ---------------------------------------------------------------------------------------


def _size(limit: int) -> str:
    mib = limit / (1024 * 1024)
    return f"max_response_bytes={limit}" + (f" ({mib:g} MiB)" if mib >= 1 else "")


def response_size_limit(
    limit: int, *, backend: str, url: str
) -> Callable[[httpx2.Response], Awaitable[None]]:
    """An `httpx2` response hook that ends a response whose body passes `limit` bytes."""

    def too_large(what: str) -> BackendError:
        return BackendError(
            f"the model server of backend `{backend}` at {url} {what} than {_size(limit)}; "
            "the call was stopped. Raise the backend's `max_response_bytes` in agents.yaml if "
            "answers this large are expected; otherwise check what answers at its base_url.",
            url=url,
        )

    async def hook(response: httpx2.Response) -> None:
        import httpx2

        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise too_large(f"announced an answer of {int(length):,} bytes, more")
        stream = response.stream
        if isinstance(stream, httpx2.AsyncByteStream):
            response.stream = _limited_stream_class()(stream, limit, too_large)

    return hook


_Limited = Callable[
    ["httpx2.AsyncByteStream", int, Callable[[str], BackendError]], "httpx2.AsyncByteStream"
]


@functools.cache
def _limited_stream_class() -> _Limited:
    """A response body that raises once more than `limit` bytes have arrived (the class is
    built on first use: importing this module does not import httpx2)."""
    import httpx2

    class LimitedStream(httpx2.AsyncByteStream):
        def __init__(
            self,
            stream: httpx2.AsyncByteStream,
            limit: int,
            error: Callable[[str], BackendError],
        ) -> None:
            self._stream = stream
            self._limit = limit
            self._error = error

        async def __aiter__(self) -> AsyncIterator[bytes]:
            seen = 0
            async for chunk in self._stream:
                seen += len(chunk)
                if seen > self._limit:
                    raise self._error("sent an answer larger")
                yield chunk

        async def aclose(self) -> None:
            await self._stream.aclose()

    return LimitedStream


# -- tool-call arguments ---------------------------------------------------------------------


def readable_arguments(output: Sequence[Any]) -> None:
    """Replace, in place, the arguments of each function call in `output` that are nested too
    deeply to parse with a note that is not JSON (see the module's docstring)."""
    for item in output:
        arguments = getattr(item, "arguments", None)
        if getattr(item, "type", None) != "function_call" or not isinstance(arguments, str):
            continue
        if arguments.count("[") + arguments.count("{") < _BRACKETS_BEFORE_CHECK:
            continue
        try:
            json.loads(arguments)
        except RecursionError:
            item.arguments = (
                f"(arguments nested too deeply to read: {len(arguments):,} characters, left out)"
            )
        except ValueError:
            pass  # not JSON: the SDK and the tool say so to the model
