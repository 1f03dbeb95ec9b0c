"""A small MCP server (stdio) for the mcp-notes example: notes kept in notes.json beside it.

Built with the `mcp` package's `MCPServer`; agent-runtime starts it as `python notes_server.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

NOTES = Path(__file__).with_name("notes.json")
server = MCPServer("notes", log_level="WARNING")


def _load() -> dict[str, str]:
    return json.loads(NOTES.read_text()) if NOTES.exists() else {}


@server.tool()
def list_notes() -> list[str]:
    """The titles of all notes."""
    return sorted(_load())


@server.tool()
def read_note(title: str) -> str:
    """The text of the note with this title."""
    notes = _load()
    if title not in notes:
        raise ToolError(f"no note titled {title!r}; the titles are: {', '.join(sorted(notes))}")
    return notes[title]


if __name__ == "__main__":
    server.run()
