"""Request bodies → the conversation vLLM builds from them, with vLLM's validation.

The rules follow vLLM v0.21's harmony path (`responses/protocol.py`, `responses/harmony.py`,
`parser/harmony_utils.py`, `serve/render/serving.py`, `chat_completion/protocol.py`): which
requests are refused with which status and message, in vLLM's order of checks, and how each
input item or chat message becomes a harmony message.

This module gathers the names the rest of the mock uses: `ParsedRequest` and `FunctionTool`
(`agent_runtime.testing.request`, with the checks both APIs share) and the two parsers,
`parse_responses_request` (`responses_request`) and `parse_chat_request` (`chat_request`).
"""

from __future__ import annotations

from agent_runtime.testing.chat_request import parse_chat_request
from agent_runtime.testing.request import FunctionTool, ParsedRequest
from agent_runtime.testing.responses_request import parse_responses_request

__all__ = ["FunctionTool", "ParsedRequest", "parse_chat_request", "parse_responses_request"]
