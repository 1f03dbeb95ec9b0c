"""agent-runtime: tool-calling agents on self-hosted gpt-oss, declared in one YAML file.

Importing the package has no side effects and does not import the Agents SDK.
"""

from __future__ import annotations

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

__all__ = [
    "AgentRuntimeError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "ConfigProblem",
    "RunError",
    "RunLimitError",
    "ToolResolutionError",
    "__version__",
]

__version__ = "0.1.0"
