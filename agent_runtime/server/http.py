"""uvicorn's HTTP/1.1 protocol, writing a response's head and its first body chunk together.

uvicorn writes the status line and headers of a response as soon as the app sends
`http.response.start`, and the body in a second write. Each write to a socket the client waits
on wakes the client; on a small machine the second wake-up of a request costs ~0.4 ms of the
server's time (the client runs, reads the head alone, and sleeps again before the body comes).
`http_protocol()` gives uvicorn's protocol with a transport that holds a response head until
the next write (the body, which Starlette sends right after it) and sends both in one write. A
head followed by nothing in the same turn of the event loop (a stream whose first event is not
ready yet) is sent on the loop's next turn, so a client always sees its headers at once.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

__all__ = ["http_protocol"]

_HEADS = (b"HTTP/1.1 ", b"HTTP/1.0 ")
_HEAD_END = b"\r\n\r\n"


class _HeadWithBody:
    """An `asyncio.Transport` in front of another, holding a response head (a write that is
    a status line and headers) until the next write or the loop's next turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held + bytes(data))
        elif bytes(data[:9]) in _HEADS and bytes(data[-4:]) == _HEAD_END:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now."""
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, lines: Any) -> None:
        self.flush()
        self._transport.writelines(lines)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@functools.cache
def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol (h11's where httptools is missing) with `_HeadWithBody`
    in front of each connection's transport: pass it as `uvicorn.Config(http=...)`."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover - httptools is a dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class Protocol(Base):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            wrapped: Any = _HeadWithBody(transport, asyncio.get_running_loop())
            super().connection_made(wrapped)

    return Protocol
