"""gpt-oss in this process: harmony prompts and parsing around vLLM's async engine.

`embedded_model(engine, encoding, model=...)` is an Agents SDK `Model`; `VLLMEngine` is vLLM
(optional extra `vllm`, a CUDA GPU); `agent_runtime.testing.FakeEngine` replays scripted tokens.
"""

from __future__ import annotations

from agent_runtime.backends.embedded.engine import (
    Engine,
    EngineOptions,
    EngineUnavailableError,
    Sampling,
    VLLMEngine,
)
from agent_runtime.backends.embedded.model import embedded_model
from agent_runtime.backends.embedded.prompt import PromptError, ToolSpec, conversation, render_items

__all__ = [
    "Engine",
    "EngineOptions",
    "EngineUnavailableError",
    "PromptError",
    "Sampling",
    "ToolSpec",
    "VLLMEngine",
    "conversation",
    "embedded_model",
    "render_items",
]
