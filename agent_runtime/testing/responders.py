"""Ready-made responders: replies computed from the request, for open-ended or concurrent use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.testing.recording import RecordedRequest
from agent_runtime.testing.script import Call, Reply

__all__ = ["ToolLoop"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolLoop:
    """Call a tool `steps` times, then answer: a stateless model for any number of runs.

    It counts the tool results already in the request, so concurrent runs interleave freely.
    The final answer quotes the last tool result, so a test can see the result reached the
    model. When the request declares no tool of that name, it answers at once.

    Use it as `MockVLLM(default=ToolLoop(tool="get_weather", arguments={"city": "Tokyo"}))`.
    """

    tool: str = "get_weather"
    arguments: Mapping[str, Any] = field(default_factory=lambda: {"city": "Tokyo"})
    steps: int = 1
    reasoning: str = "The user wants the weather; call the tool."
    final: str = "Done: {output}"
    final_reasoning: str = "I have the result; answer."

    def __call__(self, request: RecordedRequest) -> Reply:
        done = len(request.function_outputs)
        if done < self.steps and self.tool in request.tool_names:
            return Reply(
                reasoning=f"{self.reasoning} (step {done + 1})",
                calls=(Call(self.tool, self.arguments),),
            )
        output = request.function_outputs[-1].output if request.function_outputs else ""
        return Reply(reasoning=self.final_reasoning, final=self.final.format(output=output))
