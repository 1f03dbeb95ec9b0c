"""One declared MCP server, connected through the Agents SDK's MCP clients (`MCPServerStdio`,
`MCPServerStreamableHttp`), kept alive for every run of a runtime.

- **Start**: the command is started (stdio) or the URL connected to (streamable HTTP), and the
  server's tools are listed, within `startup_timeout_s`. The connection is made in a task of
  its own, so a run cancelled while it waits does not cut a start-up short for the others.
- **Calls** take at most `timeout_s`. An answer that is an error, a refusal and a time-out are
  `McpCallFailed`s whose text is for the model; the connection stays.
- **Restarts**: a server whose process has exited (seen by the end of its stderr) is restarted
  before the next call; one that stops during a call (its connection closes) is restarted, and
  the model told that the call did not finish. At most `max_restarts` restarts without a
  successful call in between; past them, and when a restart fails, `McpServerError` ends the
  run, naming the server and quoting the last lines of its stderr.
- **Stop**: `aclose()` ends the connection; for stdio the SDK closes the server's stdin, then
  ends its whole process group (SIGTERM, then SIGKILL), so no child of it is left behind.

A stdio server's stderr is read by a thread of this module: each line goes to the debug log,
and the last lines are kept for error messages (a server that cannot start usually says why
there).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agent_runtime.config.mcp import McpServerSpec
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import own_logger
from agent_runtime.text import clip, one_line, sentence

if TYPE_CHECKING:
    from agents.mcp import MCPServer
    from mcp.types import CallToolResult

__all__ = ["ListedTool", "McpCallFailed", "McpConnection", "McpServerError"]

logger = own_logger(__name__)

_STDERR_LINES = 20
"""Lines of a stdio server's stderr kept for error messages."""
_GROUP_GRACE_S = 2.0
"""How long what is left of a server's process group has to end after SIGTERM (and SIGKILL)."""
_CLOSE_TIMEOUT_S = 10.0
"""The longest closing one connection may take (the SDK's own steps are bounded too)."""


class McpServerError(AgentRuntimeError):
    """An MCP server cannot be used: it does not start, does not answer in time, or keeps
    stopping. The message names the server and says what to check.

    Attributes:
        server: the server's name in agents.yaml.
    """

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


class McpCallFailed(Exception):
    """A tool call that did not give a result; the message is the text for the model.

    Attributes:
        invalid: the call itself was wrong (arguments the server refused), as opposed to the
            server failing to answer it.
    """

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedTool:
    """A tool of an MCP server, as listed by it.

    Attributes:
        name: its name on the server.
        description: what it does, for the model.
        input_schema: the JSON Schema of its arguments.
    """

    name: str
    description: str
    input_schema: dict[str, Any] = field(default_factory=dict)


class _Stderr:
    """The stderr of one stdio server process: a pipe read by a daemon thread, which logs each
    line at debug level and keeps the last ones. Its end tells that the process has exited."""

    def __init__(self, server: str) -> None:
        read_fd, write_fd = os.pipe()
        self.file: TextIO = os.fdopen(write_fd, "w", encoding="utf-8", errors="replace")
        self._reader = os.fdopen(read_fd, "rb")
        self._lines: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self.ended = threading.Event()
        self.group: int | None = None
        """The process group of the server (it starts one of its own), once found."""
        self._server = server
        self._thread = threading.Thread(
            target=self._read, name=f"agent-runtime mcp {server} stderr", daemon=True
        )
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self._reader:
                line = raw.decode("utf-8", errors="replace").rstrip()
                if line:
                    self._lines.append(line)
                    logger.debug("mcp server %s: %s", self._server, line)
        except (OSError, ValueError):
            pass
        finally:
            self.ended.set()
            self._reader.close()

    def spawned(self) -> None:
        """The process has its copy of the pipe: find its process group, and close our copy,
        so that the pipe's end is seen."""
        if not self.file.closed:
            if self.group is None:
                self.group = _process_group(self.file)
            self.file.close()

    async def stop_group(self) -> None:
        """End what is left of the server's process group (children of a server that exited
        without ending them): SIGTERM, then SIGKILL after `_GROUP_GRACE_S`."""
        group, self.group = self.group, None
        if group is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                return
            deadline = time.monotonic() + _GROUP_GRACE_S
            while time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                try:
                    os.killpg(group, 0)
                except (ProcessLookupError, PermissionError):
                    return
        logger.warning("processes of MCP server %s did not end after SIGKILL", self._server)

    def tail(self, wait_s: float = 1.0) -> str:
        """The last lines written, after waiting up to `wait_s` for the pipe to end."""
        self.spawned()
        self.ended.wait(wait_s)
        return "\n".join(self._lines)


class McpConnection:
    """One declared MCP server and its live connection (see the module's documentation).

    Args:
        name: the server's name in agents.yaml.
        spec: its declaration.
        base_dir: the folder of agents.yaml (`cwd` starts there).
    """

    def __init__(self, name: str, spec: McpServerSpec, *, base_dir: Path) -> None:
        self.name = name
        self.spec = spec
        self.base_dir = base_dir
        self.tools: tuple[ListedTool, ...] | None = None
        """The server's tools, as first listed (None before the first start)."""
        self._client: MCPServer | None = None
        self._stderr: _Stderr | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._generation = 0
        self._restarts = 0
        self._last_stop = ""
        self._opening: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        """`MCP server 'files' (stdio: npx -y ...)`, for messages."""
        return f"MCP server {self.name!r} ({self.spec.transport})"

    # -- lifecycle -------------------------------------------------------------------------

    def _bind(self) -> asyncio.Lock:
        """This event loop's lock; a connection made on another loop (closed with it, as
        `asyncio.run` cancels its tasks) is forgotten."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._lock is None:
            if self._loop is not None and self._client is not None:
                logger.debug("%s: connected on another event loop; connecting again", self.label)
            self._loop, self._lock = loop, asyncio.Lock()
            self._client, self._stderr = None, None
        return self._lock

    async def start(self) -> tuple[ListedTool, ...]:
        """Connect (start the process) unless connected, and list the tools the first time.

        Raises:
            McpServerError: the server cannot be started or does not answer in time.
        """
        async with self._bind():
            if self._client is None or self._exited():
                await self._connect(restart=self._client is not None)
        assert self.tools is not None
        return self.tools

    def _exited(self) -> bool:
        return self._stderr is not None and self._stderr.ended.is_set()

    async def _connect(self, *, restart: bool) -> None:
        """Start a new connection (the old one, if any, is closed first). Runs in a task of its
        own, with a context of its own: the connection outlives the run that asked for it."""
        if self._opening is not None and not self._opening.done():
            await asyncio.shield(self._opening)  # a start that a cancelled caller left going
            return
        if restart:
            if self._restarts >= self.spec.max_restarts:
                # The run that saw it fails; the next one may start the server afresh.
                message = self._gave_up()
                old, self._client, self._restarts = self._client, None, 0
                if old is not None:
                    await _close(old, self.label, self._stderr)
                raise McpServerError(message, server=self.name)
            self._restarts += 1
            logger.warning(
                "%s stopped (%s); restarting it (%d of max_restarts %d)",
                self.label,
                self._last_stop or "its process exited",
                self._restarts,
                self.spec.max_restarts,
            )
        old, self._client = self._client, None
        if old is not None:
            await _close(old, self.label, self._stderr)
        if self._opening is None or self._opening.done():
            self._opening = asyncio.create_task(self._open(), context=contextvars.Context())
            self._opening.add_done_callback(_retrieve)
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        stderr = _Stderr(self.name) if self.spec.command is not None else None
        client = self._new_client(stderr)
        try:
            async with asyncio.timeout(self.spec.startup_timeout_s):
                await client.connect()  # type: ignore[no-untyped-call]
                if stderr is not None:
                    stderr.spawned()
                listed = await client.list_tools() if self.tools is None else None
        except BaseException as exc:
            if stderr is not None:
                stderr.spawned()
            await _close(client, self.label, stderr)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise McpServerError(self._start_failed(exc, stderr), server=self.name) from None
        if listed is not None:
            self.tools = tuple(
                ListedTool(
                    name=tool.name,
                    description=tool.description or tool.title or "",
                    input_schema=dict(getattr(tool, "input_schema", None) or {}),
                )
                for tool in listed
            )
            logger.info("%s: %d tools", self.label, len(self.tools))
        self._client, self._stderr = client, stderr
        self._generation += 1

    def _new_client(self, stderr: _Stderr | None) -> MCPServer:
        from agent_runtime.mcp.clients import http_client, stdio_client

        spec = self.spec
        if spec.command is not None:
            assert stderr is not None
            program, *args = spec.command
            cwd = self.base_dir / Path(spec.cwd).expanduser() if spec.cwd else self.base_dir
            return stdio_client(
                self.name,
                command=program,
                args=args,
                env=dict(spec.env),
                cwd=cwd,
                errlog=stderr.file,
            )
        assert spec.url is not None
        return http_client(
            self.name, url=spec.url, headers=dict(spec.headers), timeout_s=spec.timeout_s
        )

    async def aclose(self) -> None:
        """Close the connection (a stdio server's process group ends); a later call starts it
        again. Closing on another event loop than the connection's only forgets it."""
        client, self._client = self._client, None
        stderr, self._stderr = self._stderr, None
        opening, self._opening = self._opening, None
        self._restarts = 0
        if self._loop is not asyncio.get_running_loop():
            return
        if opening is not None and not opening.done():
            opening.cancel()  # its own clean-up closes what it opened
            await asyncio.wait({opening}, timeout=_CLOSE_TIMEOUT_S)
        if client is not None:
            await _close(client, self.label, stderr)

    # -- calls -----------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any], *, shown: str) -> CallToolResult:
        """Call `tool` (its name on the server); `shown` is its name for the model.

        Raises:
            McpCallFailed: no result: the text says why, for the model.
            McpServerError: the server cannot be (re)started.
        """
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED, INVALID_PARAMS, REQUEST_TIMEOUT

        await self.start()
        client, generation = self._client, self._generation
        assert client is not None
        try:
            async with asyncio.timeout(self.spec.timeout_s) as limit:
                result = await client.call_tool(tool, arguments)
        except TimeoutError:
            if not limit.expired():
                return await self._broken(generation, shown, "it timed out")
            logger.warning("%s: %s timed out after %s s", self.label, tool, self.spec.timeout_s)
            raise McpCallFailed(
                f"Error: `{shown}` (MCP server '{self.name}') did not finish within "
                f"{self.spec.timeout_s:g} s and was cancelled. Try again later or with simpler "
                "arguments, or answer without it."
            ) from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                return await self._broken(generation, shown, "its connection closed")
            if exc.code == REQUEST_TIMEOUT:
                raise McpCallFailed(
                    f"Error: `{shown}` (MCP server '{self.name}') timed out: "
                    f"{sentence(clip(exc.message, 1000))} Try again later, or answer without it."
                ) from None
            invalid = exc.code == INVALID_PARAMS
            fix = "with corrected arguments" if invalid else "differently"
            raise McpCallFailed(
                f"Error: MCP server '{self.name}' refused the call to `{shown}`: "
                f"{sentence(clip(exc.message, 1000))} Call `{shown}` {fix}, or answer without "
                "it.",
                invalid=invalid,
            ) from None
        except (asyncio.CancelledError, McpServerError):
            raise
        except Exception as exc:
            return await self._broken(generation, shown, _reason(exc))
        self._restarts = 0
        return result

    async def _broken(self, generation: int, shown: str, reason: str) -> CallToolResult:
        """The connection broke during a call: restart the server (unless another call did),
        and tell the model the call did not finish."""
        self._last_stop = reason
        async with self._bind():
            if self._generation == generation and self._client is not None:
                await self._connect(restart=True)
        raise McpCallFailed(
            f"Error: MCP server '{self.name}' stopped while running `{shown}` ({reason}), so "
            f"the call did not finish; the server was restarted. Call `{shown}` again if "
            "repeating it is safe, or answer without it."
        )

    # -- messages --------------------------------------------------------------------------

    def _stderr_note(self, stderr: _Stderr | None) -> str:
        tail = stderr.tail() if stderr is not None else ""
        if not tail:
            return ""
        return "\n  its stderr ended with:\n    " + "\n    ".join(
            one_line(line, 300) for line in tail.splitlines()[-5:]
        )

    def _start_failed(self, exc: BaseException, stderr: _Stderr | None) -> str:
        if isinstance(exc, TimeoutError):
            what = f"did not answer within startup_timeout_s ({self.spec.startup_timeout_s:g} s)"
            fix = "check that it is an MCP server speaking the protocol, or raise startup_timeout_s"
        elif isinstance(exc, FileNotFoundError | PermissionError) and self.spec.command:
            what = f"cannot be started: {self.spec.command[0]!r}: {exc.strerror or exc}"
            fix = (
                "check the command: is the program installed and on PATH (agent-runtime passes "
                "its PATH on)?"
            )
        else:
            what = f"cannot be used: {_reason(exc)}"
            fix = (
                "check the command and its arguments (run it in a terminal: it should wait "
                "for input), or the server's log"
                if self.spec.command is not None
                else "check that the server runs and that the URL and headers are right"
            )
        return (
            f"{self.label} {what}. Fix: {fix}; `agent-runtime doctor` checks it."
            f"{self._stderr_note(stderr)}"
        )

    def _gave_up(self) -> str:
        return (
            f"{self.label} stopped {self.spec.max_restarts + 1} times without a successful "
            f"call in between (max_restarts: {self.spec.max_restarts}); the last time: "
            f"{self._last_stop or 'its process exited'}. Check the server (`agent-runtime "
            f"doctor` connects to it), or raise `mcp_servers.{self.name}.max_restarts`."
            f"{self._stderr_note(self._stderr)}"
        )


def _process_group(pipe: TextIO) -> int | None:
    """The process group of our child process whose stderr is `pipe` (Linux: from /proc); None
    when it cannot be told. The SDK starts a stdio server in a session of its own, whose
    process group its children join."""
    try:
        target = f"pipe:[{os.fstat(pipe.fileno()).st_ino}]"
        children: list[int] = []
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as file:
                children += [int(pid) for pid in file.read().split()]
        for pid in children:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/2") == target:
                    group = os.getpgid(pid)
                    return group if group == pid else None  # only a group of its own
    except (OSError, ValueError):
        pass
    return None


def _retrieve(task: asyncio.Task[None]) -> None:
    """Retrieve a start's outcome, which its callers may have stopped waiting for."""
    if not task.cancelled():
        task.exception()


def _reason(exc: BaseException) -> str:
    """What went wrong, in one line: the innermost error of exception groups and chains."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup) and current.exceptions:
            current = current.exceptions[0]
        elif current.__cause__ is not None:
            current = current.__cause__
        else:
            break
    text = str(current).strip()
    name = type(current).__name__
    if name in ("MCPError", "UserError") and text:
        return one_line(text, 500)
    return one_line(f"{name}: {text}" if text else name, 500)


async def _close(client: MCPServer, label: str, stderr: _Stderr | None) -> None:
    """Close an SDK client, bounded in time, then end what is left of a stdio server's process
    group (the SDK ends the group only of a server that does not exit when its stdin closes);
    failures are only logged."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await client.cleanup()  # type: ignore[no-untyped-call]
    except TimeoutError:
        logger.warning("%s did not close within %s s", label, _CLOSE_TIMEOUT_S)
    except Exception as exc:
        logger.debug("%s: closing: %s", label, _reason(exc))
    finally:
        if stderr is not None:
            await asyncio.shield(stderr.stop_group())
