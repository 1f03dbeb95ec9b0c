"""The eval file schema: pydantic models with `extra="forbid"`, each field described.

```yaml
agent: weather-haiku
repeat: 1
pass_rate: 1.0
cases:
  - name: tokyo
    input: "What's the weather in Tokyo?"
    expect:
      tool_calls: [{name: get_weather, arguments: {city: Tokyo}}]
      output_contains: [Tokyo]
    mock: cassettes/tokyo.yaml
```

Values are validated once here; `load` places problems on the document and checks what needs
agents.yaml (agent names, output schemas) and the disk (cassettes).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from agent_runtime.text import kind_of

__all__ = ["CaseSpec", "EvalFileSpec", "ExpectSpec", "ExpectedToolCall", "eval_json_schema"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedToolCall(_Model):
    """One tool call the run must make."""

    name: str = Field(description="The tool's name as the model sees it.")
    arguments: dict[str, Any] | None = Field(
        default=None,
        description="Arguments the call must have; a subset is enough (nested mappings too). "
        "Leave it out to accept any arguments.",
    )


class ExpectSpec(_Model):
    """What a run must do to pass; every expectation given must hold."""

    tool_calls: list[ExpectedToolCall] | None = Field(
        default=None,
        description="The tool calls of the run, in order, all of them ([] for none); each "
        "call's arguments may be a subset.",
    )
    output_contains: list[str] | None = Field(
        default=None,
        description="Texts the final answer must contain (case-sensitive); one string or a list.",
    )
    output_matches: str | None = Field(
        default=None,
        description="A regular expression (Python syntax) the final answer must match somewhere.",
    )
    output_schema: bool | dict[str, Any] | None = Field(
        default=None,
        description="`true`: the final answer must fit the agent's own output_schema; a mapping: "
        "the JSON Schema it must fit (a text answer is parsed as JSON first).",
    )
    max_turns: int | None = Field(
        default=None, gt=0, description="The run may take at most this many model calls."
    )
    handoffs: list[str] | None = Field(
        default=None,
        description="The agents handed to, in order, all of them ([] for none).",
    )
    agent: str | None = Field(default=None, description="The agent that gives the final answer.")

    @field_validator("output_contains", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("output_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise PydanticCustomError(
                    "regex", "not a valid regular expression: {reason}", {"reason": str(exc)}
                ) from None
        return value


class CaseSpec(_Model):
    """One case: an input for an agent and what its run must do."""

    name: str = Field(min_length=1, description="The case's name, unique in the file.")
    input: str = Field(min_length=1, description="The user's message.")
    agent: str | None = Field(
        default=None, description="The agent to run (default: the file's `agent`)."
    )
    expect: ExpectSpec = Field(
        default_factory=ExpectSpec, description="What the run must do to pass."
    )
    mock: str | None = Field(
        default=None,
        description="A cassette (a mock script file, relative to the eval file) to replay "
        "instead of calling a model server; `--record` writes it.",
    )
    repeat: int | None = Field(
        default=None, ge=1, description="Runs of this case (default: the file's `repeat`)."
    )
    pass_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of the runs that must pass (default: the file's `pass_rate`).",
    )

    @field_validator("expect", mode="before")
    @classmethod
    def _empty_expect(cls, value: Any) -> Any:
        return {} if value is None else value


class EvalFileSpec(_Model):
    """An eval file: cases for the agents of an agents.yaml."""

    agent: str | None = Field(
        default=None, description="The agent of the cases that do not name their own."
    )
    repeat: int = Field(default=1, ge=1, description="Runs of each case (default 1).")
    pass_rate: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of a case's runs that must pass (default 1.0: all of them).",
    )
    cases: list[CaseSpec] = Field(min_length=1, description="The cases, run in parallel.")

    @field_validator("cases", mode="before")
    @classmethod
    def _cases(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, list):
            raise PydanticCustomError(
                "cases_type", "expected a list of cases, got {kind}", {"kind": kind_of(value)}
            )
        return value


def eval_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of eval files, for editors and
    `agent-runtime schema --eval`."""
    from agent_runtime.config.load import yaml_json_schema

    return yaml_json_schema(EvalFileSpec, title="agent-runtime eval file")
