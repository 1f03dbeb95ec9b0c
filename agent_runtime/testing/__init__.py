"""A mock vLLM server for gpt-oss, for tests and offline demos, and its pytest plugin.

`MockVLLM` is a real HTTP server on 127.0.0.1 that answers `/v1/responses` and
`/v1/chat/completions` like `vllm serve openai/gpt-oss-20b`, from a script of replies.
`FakeEngine` plays the same replies as tokens for the in-process (`vllm-embedded`) backend.
"""

from __future__ import annotations

from agent_runtime.testing.auto import AutoModel, handoff_tool_name
from agent_runtime.testing.cassette import save_cassette, script_from_records
from agent_runtime.testing.fake_engine import FakeEngine, FakeGeneration
from agent_runtime.testing.matching import match_tool_calls
from agent_runtime.testing.profile import LATEST, VLLM_0_22, VLLM_0_33, Latency, VLLMProfile
from agent_runtime.testing.prompt import HarmonyUnavailableError, load_encoding
from agent_runtime.testing.proxy import Recorder
from agent_runtime.testing.recording import (
    FunctionCallRecord,
    FunctionOutputRecord,
    PromptMessage,
    RecordedRequest,
)
from agent_runtime.testing.responders import ToolLoop
from agent_runtime.testing.script import (
    Call,
    ExpectedRequest,
    Fault,
    Reply,
    Responder,
    ScriptEntry,
    ScriptError,
    call,
    fault,
    load_script,
    parse_script,
)
from agent_runtime.testing.server import MockVLLM

__all__ = [
    "LATEST",
    "VLLM_0_22",
    "VLLM_0_33",
    "AutoModel",
    "Call",
    "ExpectedRequest",
    "FakeEngine",
    "FakeGeneration",
    "Fault",
    "FunctionCallRecord",
    "FunctionOutputRecord",
    "HarmonyUnavailableError",
    "Latency",
    "MockVLLM",
    "PromptMessage",
    "RecordedRequest",
    "Recorder",
    "Reply",
    "Responder",
    "ScriptEntry",
    "ScriptError",
    "ToolLoop",
    "VLLMProfile",
    "call",
    "fault",
    "handoff_tool_name",
    "load_encoding",
    "load_script",
    "match_tool_calls",
    "parse_script",
    "save_cassette",
    "script_from_records",
]
