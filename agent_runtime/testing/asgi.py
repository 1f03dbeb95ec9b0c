"""The ASGI plumbing of the mock server: reading a request, sending answers, dropping connections.

Every answer goes through `start_response` so that the `RecordedRequest` knows the status that
was sent; `DisconnectWatch` notices a client that goes away while an answer is delayed or
streamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from agent_runtime.testing.http_error import VLLMHTTPError
from agent_runtime.testing.recording import RecordedRequest

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


class Disconnected(Exception):
    """The client went away before the answer was complete."""


async def read_body(receive: Receive) -> bytes:
    """The whole request body, however many messages it comes in."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def start_response(
    send: Send,
    record: RecordedRequest,
    status: int,
    headers: list[tuple[bytes, bytes]],
    length: int | None = None,
) -> None:
    """Send the status and headers (with `content-length` when given), recording the status."""
    record.status = status
    if length is not None:
        headers = [*headers, (b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def send_response(
    send: Send,
    record: RecordedRequest,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Send a whole answer in one body message."""
    await start_response(send, record, status, headers, len(body))
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, record: RecordedRequest, status: int, payload: Any) -> None:
    """Send `payload` as a whole JSON answer."""
    await send_response(send, record, status, json.dumps(payload).encode(), JSON_HEADERS)


async def send_error(send: Send, record: RecordedRequest, error: VLLMHTTPError) -> None:
    """Answer with vLLM's error envelope for `error`, and keep its body on the record."""
    record.error = error.body()
    headers = [*JSON_HEADERS, (b"x-should-retry", b"false")] if error.final else JSON_HEADERS
    body = json.dumps(record.error).encode()
    await send_response(send, record, error.status, body, headers)


async def flush(send: Send, buffer: list[bytes]) -> None:
    """Send what `buffer` holds as one chunk of a streamed body, and empty it."""
    if buffer:
        await send({"type": "http.response.body", "body": b"".join(buffer), "more_body": True})
        buffer.clear()


def abort(send: Send, record: RecordedRequest) -> None:
    """Close the TCP connection at once, without finishing the HTTP exchange."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not served by uvicorn")
    if record.status is None:
        record.status = 0
    transport.abort()


class DisconnectWatch:
    """Notices a client disconnect while the answer is delayed or streamed."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._event = asyncio.Event()

    @property
    def disconnected(self) -> bool:
        """Whether the client has gone away (starts listening on first use)."""
        self._ensure()
        return self._event.is_set()

    def _ensure(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._event.set()
                return

    async def sleep(self, seconds: float) -> None:
        """Sleep, but raise `Disconnected` as soon as the client goes away."""
        if seconds <= 0:
            if self.disconnected:
                raise Disconnected
            return
        self._ensure()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        if self._event.is_set():
            raise Disconnected

    def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
