"""The Agents SDK's MCP clients, set up for `connection`: no read time-out of their own (each
call has `timeout_s`, each start `startup_timeout_s`), and a stdio server's stderr sent to a
pipe of ours instead of the terminal. The SDK is imported when a server is first started."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TextIO

from agents.mcp import MCPServerStdio, MCPServerStreamableHttp

__all__ = ["http_client", "stdio_client"]


class _StdioServer(MCPServerStdio):
    """`MCPServerStdio` whose server writes its stderr to `errlog`."""

    def __init__(self, *args: Any, errlog: TextIO, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._errlog = errlog

    def create_streams(self) -> AbstractAsyncContextManager[Any]:
        from mcp.client.stdio import stdio_client as open_stdio

        return open_stdio(self.params, errlog=self._errlog)


def stdio_client(
    name: str,
    *,
    command: str,
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    errlog: TextIO,
) -> MCPServerStdio:
    """A client that starts `command` (in a process group of its own) and talks to it."""
    return _StdioServer(
        {"command": command, "args": args, "env": env, "cwd": cwd},
        name=name,
        client_session_timeout_seconds=None,
        errlog=errlog,
    )


def http_client(
    name: str, *, url: str, headers: dict[str, str], timeout_s: float
) -> MCPServerStreamableHttp:
    """A client of the streamable HTTP endpoint `url`."""
    return MCPServerStreamableHttp(
        {
            "url": url,
            "headers": headers,
            "timeout": 30,
            # A tool's answer may take its whole time limit, which the caller enforces.
            "sse_read_timeout": timeout_s + 30,
        },
        name=name,
        client_session_timeout_seconds=None,
    )
