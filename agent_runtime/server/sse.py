"""Server-sent events as an ASGI response, shared by the Responses and Chat Completions routes.

A stream of a run must end the run as soon as nobody reads it: `EventStreamResponse` watches for
the client's disconnect while it writes (on any ASGI version, not only those that raise on a
write to a closed connection), then closes its chunk iterator, which cancels the run behind it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from agent_runtime.server.disconnect import disconnected

__all__ = ["EventStreamResponse", "json_text"]

json_text = json.JSONEncoder(ensure_ascii=False).encode
"""`json.dumps(value, ensure_ascii=False)` without making an encoder each time (a stream
encodes one document per event)."""


class EventStreamResponse(Response):
    """`text/event-stream` chunks, each in one write, as they come. A client that disconnects
    stops the chunks (their iterator is closed at once); `on_close` runs in every case."""

    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        super().__init__(
            None,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            media_type=self.media_type,
        )
        # A stream has no length: Response's `content-length: 0` must go.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.chunks = chunks
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            pump = asyncio.ensure_future(self._send_all(send))
            gone = asyncio.ensure_future(disconnected(receive))
            try:
                await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, gone):
                    task.cancel()
                await asyncio.wait({pump, gone})
            failure = None if pump.cancelled() else pump.exception()
            if failure is not None:
                raise failure
        finally:
            try:
                aclose = getattr(self.chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                if self.on_close is not None:
                    await self.on_close()

    async def _send_all(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.chunks:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away while we wrote
            return
