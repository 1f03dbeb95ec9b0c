"""agent-runtime: tool-calling agents on self-hosted gpt-oss, declared in one YAML file.

```python
from agent_runtime import Runtime

async with Runtime.from_yaml("agents.yaml") as runtime:
    result = await runtime.run("weather-haiku", "What's the weather in Tokyo?")
```

Importing the package has no side effects and imports nothing else: each name below is
imported on first use, so `agent_runtime` costs nothing to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_runtime.config import Config, load_config
    from agent_runtime.config.durability import DurabilityError
    from agent_runtime.durable.runs import (
        RunCancelledError,
        RunHandle,
        RunPendingError,
        RunStatus,
        UnknownRunError,
    )
    from agent_runtime.errors import (
        AgentRuntimeError,
        BackendError,
        BackendUnavailableError,
        ConfigError,
        ConfigProblem,
        RunError,
        RunLimitError,
        ToolResolutionError,
        ToolRetry,
    )
    from agent_runtime.results import (
        AgentChanged,
        Handoff,
        Message,
        Reasoning,
        ReasoningDelta,
        Retrying,
        RunEvent,
        RunFinished,
        RunItem,
        RunResult,
        TextDelta,
        ToolCall,
        ToolResult,
        Usage,
    )
    from agent_runtime.runtime import Runtime
    from agent_runtime.sessions import SessionStore
    from agent_runtime.tools import ClientTool

__all__ = [
    "AgentChanged",
    "AgentRuntimeError",
    "BackendError",
    "BackendUnavailableError",
    "ClientTool",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DurabilityError",
    "Handoff",
    "Message",
    "Reasoning",
    "ReasoningDelta",
    "Retrying",
    "RunCancelledError",
    "RunError",
    "RunEvent",
    "RunFinished",
    "RunHandle",
    "RunItem",
    "RunLimitError",
    "RunPendingError",
    "RunResult",
    "RunStatus",
    "Runtime",
    "SessionStore",
    "TextDelta",
    "ToolCall",
    "ToolResolutionError",
    "ToolResult",
    "ToolRetry",
    "UnknownRunError",
    "Usage",
    "__version__",
    "load_config",
]

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "agent_runtime.config",
    "load_config": "agent_runtime.config",
    "AgentRuntimeError": "agent_runtime.errors",
    "BackendError": "agent_runtime.errors",
    "BackendUnavailableError": "agent_runtime.errors",
    "ClientTool": "agent_runtime.tools",
    "ConfigError": "agent_runtime.errors",
    "ConfigProblem": "agent_runtime.errors",
    "RunError": "agent_runtime.errors",
    "RunLimitError": "agent_runtime.errors",
    "ToolResolutionError": "agent_runtime.errors",
    "ToolRetry": "agent_runtime.errors",
    "AgentChanged": "agent_runtime.results",
    "Handoff": "agent_runtime.results",
    "Message": "agent_runtime.results",
    "Reasoning": "agent_runtime.results",
    "ReasoningDelta": "agent_runtime.results",
    "Retrying": "agent_runtime.results",
    "RunEvent": "agent_runtime.results",
    "RunFinished": "agent_runtime.results",
    "RunItem": "agent_runtime.results",
    "RunResult": "agent_runtime.results",
    "TextDelta": "agent_runtime.results",
    "ToolCall": "agent_runtime.results",
    "ToolResult": "agent_runtime.results",
    "Usage": "agent_runtime.results",
    "Runtime": "agent_runtime.runtime",
    "SessionStore": "agent_runtime.sessions",
    "DurabilityError": "agent_runtime.config.durability",
    "RunCancelledError": "agent_runtime.durable.runs",
    "RunHandle": "agent_runtime.durable.runs",
    "RunPendingError": "agent_runtime.durable.runs",
    "RunStatus": "agent_runtime.durable.runs",
    "UnknownRunError": "agent_runtime.durable.runs",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
