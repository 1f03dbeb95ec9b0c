"""A small MCP server for the tests, built on the `mcp` package's `MCPServer`.

    python tests/mcp/server.py                      # stdio
    python tests/mcp/server.py --http PORT_FILE     # streamable HTTP on 127.0.0.1, a free port
                                                    # (written to PORT_FILE once listening);
                                                    # --token T: requires `Bearer T`
    python tests/mcp/server.py --hang-at-start      # never answers (a server that hangs)
    python tests/mcp/server.py --exit-at-start      # writes to stderr and exits with 3

Tools: `echo`, `add`, `pid` (the server's process id), `env` (an environment variable),
`fail` (an error result), `crash` (the process exits in the middle of the call), `hang`
(never returns), `search` (named like a tool of other servers, for clashes). `--child` starts
a grandchild process that lives as long as the server (`pid` reports it too), for process-tree
checks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("agent-runtime-test", log_level="WARNING")
_child: subprocess.Popen[bytes] | None = None


@server.tool()
def echo(text: str) -> str:
    """Repeat the text."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def pid() -> str:
    """This server's process id (and its child's, if it has one)."""
    return f"{os.getpid()} {_child.pid if _child is not None else ''}".strip()


@server.tool()
def env(name: str) -> str:
    """An environment variable of the server's process."""
    return os.environ.get(name, "<unset>")


@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ToolError(f"no such thing: {reason}")


@server.tool()
def crash() -> str:
    """The server's process exits in the middle of the call."""
    sys.stderr.write("crashing on purpose\n")
    sys.stderr.flush()
    os._exit(3)


@server.tool()
async def hang() -> str:
    """Never returns (writes `pid()` to the file $HANG_MARKER first, when set)."""
    import anyio

    marker = os.environ.get("HANG_MARKER")
    if marker:
        with open(marker, "w") as file:  # noqa: ASYNC230 - a tiny local file, once
            file.write(pid())

    await anyio.sleep_forever()
    return ""


@server.tool()
def search(query: str) -> str:
    """Search (a name other test servers use too)."""
    return f"found {query}"


def _serve_http(port_file: Path, token: str | None) -> None:
    import socket

    import uvicorn
    from starlette.responses import PlainTextResponse

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections from now on wait until uvicorn serves them
    port = sock.getsockname()[1]
    inner = server.streamable_http_app()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and token is not None:
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await PlainTextResponse("no", status_code=401)(scope, receive, send)
                return
        await inner(scope, receive, send)

    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    port_file.write_text(str(port))
    uv.run(sockets=[sock])


def main() -> None:
    global _child
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=Path, metavar="PORT_FILE")
    parser.add_argument("--hang-at-start", action="store_true")
    parser.add_argument("--exit-at-start", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--token", help="--http: require `Authorization: Bearer TOKEN`")
    args = parser.parse_args()
    if args.exit_at_start:
        sys.stderr.write("cannot open the database: permission denied\n")
        raise SystemExit(3)
    if args.hang_at_start:
        while True:
            time.sleep(3600)
    if args.child:
        _child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    if args.http is not None:
        _serve_http(args.http, args.token)
    else:
        server.run()


if __name__ == "__main__":
    main()
