"""MCP servers declared in agents.yaml (`mcp_servers:`), their tools offered to agents.

```python
servers = McpServers(config)
await servers.start()                       # McpServerError when one cannot start
tools = servers.agent_tools(own_names)      # agent -> SDK function tools; ConfigError on clashes
...
await servers.aclose()                      # stdio servers' process groups end
```

`Runtime` does this itself: the servers start with `Runtime.start()` (`async with`), or with
the first run of a runtime that was not started; every run shares them; `aclose()` stops them
(as `run_sync` does after each call, whose event loop ends with it).

The Agents SDK's MCP clients (`MCPServerStdio`, `MCPServerStreamableHttp`) make the
connections (`connection`); the tools are the runtime's own function tools around their
`call_tool` (`tools`), so that failures reach the model as text it can act on, the loop guard
sees MCP calls, and the run's trace records them as `tool_call`s. The SDK is imported when a
server starts.
"""

from __future__ import annotations

from agent_runtime.mcp.connection import ListedTool, McpCallFailed, McpConnection, McpServerError
from agent_runtime.mcp.servers import McpServers, model_tool_name

__all__ = [
    "ListedTool",
    "McpCallFailed",
    "McpConnection",
    "McpServerError",
    "McpServers",
    "model_tool_name",
]
