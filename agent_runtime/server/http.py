"""uvicorn's HTTP/1.1 protocol, sending what a response writes in one turn of the event loop
in one write.

uvicorn writes the status line and headers of a response as soon as the app sends
`http.response.start`, the body in a second write, and each chunk of a stream in a write of its
own. Each write to a socket the client waits on wakes the client: on a small machine a wake-up
costs the server ~0.05-0.4 ms (the client runs, reads a piece, and sleeps again before the next
comes). A run's stream makes many events at once (the model server's bytes arrive in packets of
several tokens, and one run event becomes several Responses events). `http_protocol()` gives
uvicorn's protocol with a transport that gathers the writes made during one turn of the event
loop and sends them together at its end: a head with its body, a stream's events as they come
out of one packet. Nothing waits longer than that turn: a stream whose next event is not ready
has sent all it had.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

__all__ = ["http_protocol"]


class _OneWritePerTurn:
    """An `asyncio.Transport` in front of another, sending the writes made during one turn of
    the event loop as one write, at the loop's next turn (or before the transport ends)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def flush(self) -> None:
        """Send the writes held now."""
        if self._held:
            held = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held = []
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
        self._held = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@functools.cache
def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol (h11's where httptools is missing) with `_OneWritePerTurn`
    in front of each connection's transport: pass it as `uvicorn.Config(http=...)`."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover - httptools is a dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class Protocol(Base):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            wrapped: Any = _OneWritePerTurn(transport, asyncio.get_running_loop())
            super().connection_made(wrapped)

    return Protocol
