"""agent-runtime: tool-calling agents on self-hosted gpt-oss, declared in one YAML file.

```python
from agent_runtime import Runtime

async with Runtime.from_yaml("agents.yaml") as runtime:
    result = await runtime.run("weather-haiku", "What's the weather in Tokyo?")
```

Importing the package has no side effects and does not import the Agents SDK.
"""

from __future__ import annotations

from agent_runtime.config import Config, load_config
from agent_runtime.errors import (
    AgentRuntimeError,
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ConfigProblem,
    RunError,
    RunLimitError,
    ToolResolutionError,
)
from agent_runtime.results import (
    AgentChanged,
    Handoff,
    Message,
    Reasoning,
    ReasoningDelta,
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

__all__ = [
    "AgentChanged",
    "AgentRuntimeError",
    "BackendError",
    "BackendUnavailableError",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Handoff",
    "Message",
    "Reasoning",
    "ReasoningDelta",
    "RunError",
    "RunEvent",
    "RunFinished",
    "RunItem",
    "RunLimitError",
    "RunResult",
    "Runtime",
    "SessionStore",
    "TextDelta",
    "ToolCall",
    "ToolResolutionError",
    "ToolResult",
    "Usage",
    "__version__",
    "load_config",
]

__version__ = "0.1.0"
