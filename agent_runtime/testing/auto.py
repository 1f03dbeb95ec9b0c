"""`AutoModel`: a test model that calls every tool it is offered once, then answers.

No script to write: each reply is computed from the request. It calls the function tools the
request offers, one per turn, in the order offered, with arguments made up from each tool's JSON
Schema (`sample_value`), and once each has been called it gives a final answer that fits the
request's structured output schema, or a short text. Use it as `MockVLLM(auto=True)`,
`@pytest.mark.mock_vllm(auto=True)` or `agent-runtime mock --auto`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.testing.recording import PromptMessage, RecordedRequest
from agent_runtime.testing.sample import SampleError, sample_value
from agent_runtime.testing.script import Call, Reply
from agent_runtime.text import one_line

__all__ = ["HANDOFF_PREFIX", "AutoModel", "handoff_tool_name", "output_schema_of"]

HANDOFF_PREFIX = "transfer_to_"
"""How the Agents SDK starts the name of the tool that hands the run to another agent."""

_NOT_IN_A_NAME = re.compile(r"[^a-zA-Z0-9_]")


def handoff_tool_name(agent_name: str) -> str:
    """The name of the tool that hands a run to the agent `agent_name`, as the Agents SDK makes
    it: `transfer_to_` and the name with each character other than a letter, digit or `_` as
    `_`, in lower case (`"Weather Haiku"` → `transfer_to_weather_haiku`)."""
    return _NOT_IN_A_NAME.sub("_", f"{HANDOFF_PREFIX}{agent_name}").lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoModel:
    """Call every offered tool once, then answer: a model for tests that need no script.

    For each request it looks at the conversation since the last user message: while some
    offered function tool has not been called there, it calls the next one (in the order the
    request lists the tools, one call per turn, as gpt-oss does); then it answers. Each reply
    carries a short reasoning text, so the reasoning round-trip is exercised on every turn.
    Since it reads only the request, it serves any number of runs at once, and every new user
    message (a chat, a session) starts a new round of calls.

    - Arguments are made up from each tool's JSON Schema: valid for it (required properties,
      enums, bounds, formats, simple patterns, `$ref`s) and the same every time. Give your own
      with `arguments={"get_weather": {"city": "Paris"}}` (merged over the made-up ones).
    - Handoff tools (`transfer_to_<agent>`, see `handoff_tool_name`) are not called unless
      `handoffs` says so: a handoff ends the agent's turn and gives the run to another agent.
      `handoffs=True` calls each, after the other tools; `handoffs=["billing"]` only those to
      the agents named (agent names or tool names).
    - `skip` names tools never to call.
    - The final answer: when the request asks for structured output (`text.format` of type
      `json_schema` on Responses, `response_format` on Chat Completions), JSON made up from its
      schema, so an agent with an `output_schema` gets a typed `final_output`; else `answer`,
      or by default `Done.` followed by each tool's result of the round, shortened.
    - `together=True` makes all the calls in one turn instead (unless the request sets
      `parallel_tool_calls: false`), for agents with more tools than turns.

    Raises (as the mock's HTTP 500 answer):
        ValueError: no valid arguments could be made up for a tool's schema, or no answer for
            the output schema; the message names the tool and says how to give them.
    """

    handoffs: bool | Collection[str] = False
    skip: Collection[str] = ()
    arguments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    together: bool = False
    answer: str | None = None

    def __call__(self, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, Mapping) else {}
        round_ = _since_last_user(request.messages)
        called = {
            m.recipient.removeprefix("functions.")
            for m in round_
            if m.role == "assistant" and m.recipient and m.recipient.startswith("functions.")
        }
        offered = () if body.get("tool_choice") == "none" else request.tool_names
        todo = [name for name in self._callable(offered) if name not in called]
        if todo:
            if self.together and body.get("parallel_tool_calls") is not False:
                todo = _up_to_first_handoff(todo)
            else:
                todo = todo[:1]
            calls = tuple(Call(name, self._arguments_for(name, request)) for name in todo)
            names = ", ".join(f"`{name}`" for name in todo)
            return Reply(reasoning=f"I should call {names} now.", calls=calls)
        return self._final(body, round_)

    def _callable(self, offered: Sequence[str]) -> list[str]:
        """The offered tools to call, in order: function tools, then the chosen handoffs."""
        wanted = {
            name if name.startswith(HANDOFF_PREFIX) else handoff_tool_name(name)
            for name in (() if isinstance(self.handoffs, bool) else self.handoffs)
        }
        tools, handoffs = [], []
        for name in offered:
            if name in self.skip:
                continue
            if not name.startswith(HANDOFF_PREFIX):
                tools.append(name)
            elif self.handoffs is True or name in wanted:
                handoffs.append(name)
        return tools + handoffs

    def _arguments_for(self, name: str, request: RecordedRequest) -> dict[str, Any]:
        given = dict(self.arguments.get(name, {}))
        schema = request.tool_parameters.get(name)
        if schema is None:
            return given
        try:
            made = sample_value(schema)
        except SampleError as exc:
            if given:
                return given
            raise ValueError(
                f"AutoModel cannot make up arguments for the tool `{name}`: {exc}. Give them: "
                f"AutoModel(arguments={{{name!r}: {{...}}}})."
            ) from None
        return {**made, **given} if isinstance(made, dict) else given

    def _final(self, body: Mapping[str, Any], round_: Sequence[PromptMessage]) -> Reply:
        format_ = output_schema_of(body)
        if format_ is not None:
            name, schema = format_
            try:
                value = sample_value(schema) if schema is not None else {}
            except SampleError as exc:
                raise ValueError(
                    f"AutoModel cannot make up an answer for the output schema `{name}`: {exc}"
                ) from None
            return Reply(
                reasoning=f"Every tool has been called; answer with JSON for `{name}`.",
                final=json.dumps(value, ensure_ascii=False),
            )
        if self.answer is not None:
            text = self.answer
        else:
            results = [
                f"{m.name.removeprefix('functions.')}: {one_line(m.text, 200, note=False)}"
                for m in round_
                if m.role == "tool" and m.name
            ]
            text = " ".join(["Done.", "; ".join(results)]).strip()
        return Reply(reasoning="Every tool has been called; answer.", final=text)


def output_schema_of(body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None] | None:
    """The structured output a request body asks for, as (name, JSON Schema): Responses
    `text.format`, Chat Completions `response_format`. The schema is None for a plain JSON
    object (`json_object`); None when the body asks for text."""
    text = body.get("text")
    format_ = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(format_, Mapping):
        response_format = body.get("response_format")
        format_ = response_format if isinstance(response_format, Mapping) else None
        if format_ is not None and isinstance(format_.get("json_schema"), Mapping):
            format_ = {"type": format_.get("type"), **format_["json_schema"]}
    if format_ is None:
        return None
    if format_.get("type") == "json_object":
        return "json_object", None
    if format_.get("type") == "json_schema":
        schema = format_.get("schema")
        return str(format_.get("name") or "output"), schema if isinstance(schema, Mapping) else None
    return None


def _since_last_user(messages: Sequence[PromptMessage]) -> Sequence[PromptMessage]:
    """The messages after the last user message (all of them when there is none)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index + 1 :]
    return messages


def _up_to_first_handoff(names: list[str]) -> list[str]:
    """The calls to make in one turn: a handoff ends the turn, so at most one, last."""
    tools = [name for name in names if not name.startswith(HANDOFF_PREFIX)]
    handoffs = [name for name in names if name.startswith(HANDOFF_PREFIX)]
    return tools + handoffs[:1]
