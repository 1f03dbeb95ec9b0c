"""An ASGI app served by uvicorn on a thread of its own: the mock server and the recorder."""

from __future__ import annotations

import socket
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """`app` on `host:port` (0: a free port), served on a daemon thread named after `label`.

    `start()` returns the bound port once it accepts connections; `stop()` asks the server to
    finish (answers under way get 2 s) and waits for the thread.
    """

    def __init__(
        self, app: ASGIApp, *, host: str, port: int, label: str, nodelay: bool = False
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.label = label
        self.nodelay = nodelay
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> int:
        """Bind and serve; returns the port.

        Raises:
            OSError: the address cannot be bound (the message names it).
            RuntimeError: the server did not start (uvicorn logged why).
        """
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno,
                f"{self.label} cannot bind {self.host}:{self.requested_port}: {exc.strerror}",
            ) from None
        port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            interface="asgi3",
            lifespan="off",
            log_level="warning",
            log_config=None,  # uvicorn's default would reconfigure (close) every logging handler
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        started = threading.Event()

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                started.set()

        server = _Server(config)

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                sock.close()
                started.set()

        thread = threading.Thread(target=serve, name=f"{self.label}:{port}", daemon=True)
        thread.start()
        started.wait()
        if not server.started:
            thread.join()
            raise RuntimeError(f"{self.label} failed to start; see the log above")
        self._server, self._thread = server, thread
        return port

    def stop(self) -> None:
        """Stop serving and wait for the thread (no-op when not running)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join()
        self._server = None
        self._thread = None
