"""`doctor`'s check of the MCP servers in agents.yaml: each is started (or connected to), its
tools listed, and it is stopped again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from agent_runtime.config import Config

__all__ = ["McpReport", "check_mcp_servers", "render_mcp"]


@dataclass(frozen=True, slots=True, kw_only=True)
class McpReport:
    """What checking one MCP server found.

    Attributes:
        name: the server's name in agents.yaml.
        transport: how it is reached (`stdio: ...`, `streamable HTTP: ...`).
        ok: it started and listed its tools.
        tools: the names of its tools, as the server lists them.
        offered: the names the model sees (after `tools`, `exclude_tools` and `prefix`).
        detail: why it cannot be used (when not ok).
    """

    name: str
    transport: str
    ok: bool
    tools: tuple[str, ...] = ()
    offered: tuple[str, ...] = ()
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "transport": self.transport,
            "ok": self.ok,
            "tools": list(self.tools),
            "offered": list(self.offered),
            **({"detail": self.detail} if self.detail else {}),
        }


async def check_mcp_servers(config: Config) -> list[McpReport]:
    """Start each declared MCP server in turn, list its tools, stop it."""
    from agent_runtime.mcp import McpConnection, McpServerError, model_tool_name

    reports = []
    for name, spec in config.spec.mcp_servers.items():
        connection = McpConnection(name, spec, base_dir=config.base_dir)
        try:
            listed = await connection.start()
        except McpServerError as error:
            reports.append(
                McpReport(name=name, transport=spec.transport, ok=False, detail=str(error))
            )
            continue
        finally:
            await connection.aclose()
        tools = tuple(tool.name for tool in listed)
        offered = tuple(model_tool_name(spec.prefix, t) for t in tools if spec.offers(t))
        reports.append(
            McpReport(name=name, transport=spec.transport, ok=True, tools=tools, offered=offered)
        )
    return reports


def render_mcp(report: McpReport, safe: Callable[[str], str]) -> str:
    """The lines of one server's check, as `doctor` prints them."""
    header = click.style(safe(f"MCP server '{report.name}' ({report.transport})"), bold=True)
    if not report.ok:
        mark = click.style("✗ start", fg="red", bold=True)
        return f"{header}\n{mark} — {safe(report.detail)}"
    mark = click.style("✓ start", fg="green")
    count = len(report.tools)
    line = f"{header}\n{mark} — {count} tool{'s' if count != 1 else ''}"
    if report.tools:
        line += ": " + safe(", ".join(report.tools))
    if report.offered != report.tools:
        shown = ", ".join(report.offered) or "none"
        line += f"\n  offered to the model: {safe(shown)}"
    return line
