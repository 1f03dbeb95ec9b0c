"""The MCP servers of one runtime: started together, their tools offered to the agents that
list them, closed together.

The tools' names are known once the servers have listed them: a tool whose name the model
would see twice in one agent (two servers offering `search`, or a server tool named like one
of the agent's own tools or handoffs) is then a `ConfigError` naming both, to be fixed with
`prefix:`. A name that gpt-oss cannot use (letters, digits and _ only) is changed: other
characters become `_`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from agent_runtime.config import Config
from agent_runtime.config.mcp import mcp_tool_name
from agent_runtime.errors import ConfigError, ConfigProblem
from agent_runtime.mcp.connection import McpConnection, McpServerError
from agent_runtime.mcp.tools import mcp_function_tool
from agent_runtime.redact import own_logger

if TYPE_CHECKING:
    from agents import FunctionTool

__all__ = ["McpServers", "model_tool_name"]

logger = own_logger(__name__)

_INVALID = re.compile(r"[^A-Za-z0-9_]")


def model_tool_name(prefix: str | None, name: str) -> str:
    """The name the model sees for tool `name` of a server with `prefix` (characters gpt-oss
    cannot use become `_`)."""
    cleaned = _INVALID.sub("_", mcp_tool_name(prefix, name))
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


class McpServers:
    """The MCP servers that the agents of `config` use (servers no agent lists are not
    started), shared by every run of a runtime."""

    def __init__(self, config: Config) -> None:
        self.config = config
        used = {name for agent in config.spec.agents.values() for name in agent.mcp_servers}
        self.connections = {
            name: McpConnection(name, spec, base_dir=config.base_dir)
            for name, spec in config.spec.mcp_servers.items()
            if name in used
        }
        self._tools: dict[tuple[str, str], FunctionTool] = {}

    async def start(self) -> None:
        """Start every server not running (all at once), and list their tools.

        Raises:
            McpServerError: a server cannot be started (the message names each one that
                cannot).
        """
        if not self.connections:
            return
        results = await asyncio.gather(
            *(connection.start() for connection in self.connections.values()),
            return_exceptions=True,
        )
        failed = [error for error in results if isinstance(error, BaseException)]
        for error in failed:
            if not isinstance(error, McpServerError):
                raise error
        if len(failed) == 1:
            raise failed[0]
        if failed:
            errors = [error for error in failed if isinstance(error, McpServerError)]
            message = f"{len(errors)} MCP servers cannot be used:\n" + "\n".join(
                str(error) for error in errors
            )
            raise McpServerError(message, server=", ".join(error.server for error in errors))

    def agent_tools(self, own: Mapping[str, Collection[str]]) -> dict[str, list[FunctionTool]]:
        """The tools of each agent's MCP servers, once `start` has listed them; `own` holds the
        names each agent's own tools and handoffs take.

        Raises:
            ConfigError: a tool name the model would see twice in one agent.
        """
        problems: list[ConfigProblem] = []
        tools: dict[str, list[FunctionTool]] = {}
        for agent, spec in self.config.spec.agents.items():
            if not spec.mcp_servers:
                continue
            taken = dict.fromkeys(own.get(agent, ()), "")  # name -> server ("" for own)
            offered: list[FunctionTool] = []
            for index, server in enumerate(spec.mcp_servers):
                clashes: dict[str, list[str]] = {}  # other server ("" for own) -> names
                for listed, name in self._named(server):
                    if name in taken:
                        clashes.setdefault(taken[name], []).append(name)
                        continue
                    taken[name] = server
                    offered.append(self._tool(server, listed, name))
                problems += [
                    _problem(
                        self.config,
                        f"agents.{agent}.mcp_servers[{index}]",
                        _clash_message(server, other, names),
                    )
                    for other, names in clashes.items()
                ]
            tools[agent] = offered
        if problems:
            raise ConfigError(problems, source=self.config.source)
        return tools

    def _named(self, server: str) -> list[tuple[str, str]]:
        """(name on the server, name for the model) of each tool `server` offers."""
        connection = self.connections[server]
        spec = connection.spec
        named = []
        for tool in connection.tools or ():
            if spec.offers(tool.name):
                named.append((tool.name, model_tool_name(spec.prefix, tool.name)))
        listed = {tool.name for tool in connection.tools or ()}
        missing = [name for name in (spec.tools or []) if name not in listed]
        if missing:
            logger.warning(
                "MCP server %r has no tools named %s (mcp_servers.%s.tools); it has: %s",
                server,
                ", ".join(repr(name) for name in missing),
                server,
                ", ".join(sorted(listed)) or "none",
            )
        return named

    def _tool(self, server: str, listed: str, name: str) -> FunctionTool:
        key = (server, listed)
        if key not in self._tools:
            connection = self.connections[server]
            tool = next(tool for tool in connection.tools or () if tool.name == listed)
            self._tools[key] = mcp_function_tool(
                connection,
                tool,
                name=name,
                max_output_chars=self.config.spec.defaults.tool_max_output_chars,
                needs_approval=connection.spec.needs_approval(listed),
            )
        return self._tools[key]

    async def aclose(self) -> None:
        """Close every connection (stdio servers' process groups end)."""
        await asyncio.gather(*(c.aclose() for c in self.connections.values()))


def _clash_message(server: str, other: str, names: list[str]) -> str:
    listing = ", ".join(repr(name) for name in names)
    several = len(names) > 1
    what = f"the tool{'s' if several else ''} {listing} of MCP server {server!r}"
    if other:
        were = f"{'are' if several else 'is'} also offered by MCP server {other!r}"
        fix = f"mcp_servers.{server} or mcp_servers.{other}"
    else:
        were = f"{'are' if several else 'is'} also the name{'s' if several else ''} of the "
        were += "agent's own tools or handoffs"
        fix = f"mcp_servers.{server}"
    return (
        f"{what} {were}: the model would see {'them' if several else 'it'} twice; set "
        f"`prefix:` on {fix}, or leave {'them' if several else 'it'} out with `exclude_tools:`"
    )


def _problem(config: Config, path: str, message: str) -> ConfigProblem:
    return ConfigProblem(file=config.source, line=None, column=None, path=path, message=message)
