"""The exception tree of agent-runtime: every error it raises on purpose is one of these."""

from __future__ import annotations

__all__ = ["AgentRuntimeError"]


class AgentRuntimeError(Exception):
    """Root of every error agent-runtime raises on purpose."""
