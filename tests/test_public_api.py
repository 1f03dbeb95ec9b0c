"""The public names of the package are pinned: changing them is a decision, not an accident."""

from __future__ import annotations

import subprocess
import sys

import agent_runtime
import agent_runtime.testing


def test_package_api() -> None:
    assert agent_runtime.__all__ == [
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
    for name in agent_runtime.__all__:
        assert hasattr(agent_runtime, name)


def test_testing_api() -> None:
    assert agent_runtime.testing.__all__ == [
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
    for name in agent_runtime.testing.__all__:
        assert hasattr(agent_runtime.testing, name)


def test_importing_the_package_has_no_heavy_imports() -> None:
    code = (
        "import sys, agent_runtime, agent_runtime.testing; "
        "print(sorted(m for m in ('agents', 'openai', 'uvicorn', 'openai_harmony') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
