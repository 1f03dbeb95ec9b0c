"""What a durable run records, as JSON values: model responses (each model call's step), the
run's result, and the error that ended it. Each is rebuilt from its record on replay and by
`Runtime.result`, so the records outlive the process and the versions of the classes that wrote
them (JSON, not pickles of SDK objects).
"""

from __future__ import annotations

import functools
import typing
from typing import TYPE_CHECKING, Any

from agent_runtime.config.durability import DurabilityError
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
    Handoff,
    Message,
    Reasoning,
    RunItem,
    RunResult,
    ToolCall,
    ToolResult,
    Usage,
)

if TYPE_CHECKING:
    from agents.items import ModelResponse

__all__ = [
    "RunFailed",
    "error_from_record",
    "error_record",
    "response_from_record",
    "response_record",
    "result_from_record",
    "result_record",
]


# -- model responses ---------------------------------------------------------------------------


@functools.cache
def _output_classes() -> dict[str, Any]:
    """The Responses API's output item classes by their `type`."""
    from agents.items import TResponseOutputItem

    (union, *_) = typing.get_args(TResponseOutputItem)
    classes: dict[str, Any] = {}
    for cls in typing.get_args(union):
        field = cls.model_fields.get("type")
        for literal in typing.get_args(field.annotation) if field is not None else ():
            classes.setdefault(literal, cls)
    return classes


def response_record(response: ModelResponse) -> dict[str, Any]:
    """A model response as a JSON value: its output items, usage and ids."""
    from agents.usage import Usage as SDKUsage
    from pydantic import TypeAdapter

    return {
        "output": [item.model_dump(mode="json", exclude_unset=True) for item in response.output],
        "usage": TypeAdapter(SDKUsage).dump_python(response.usage, mode="json"),
        "response_id": response.response_id,
        "request_id": response.request_id,
    }


def response_from_record(record: dict[str, Any]) -> ModelResponse:
    """The model response a `response_record` was made of."""
    from agents.items import ModelResponse
    from agents.usage import Usage as SDKUsage
    from pydantic import TypeAdapter

    classes = _output_classes()
    output = []
    for item in record["output"]:
        cls = classes.get(item.get("type"))
        if cls is None:
            raise DurabilityError(
                f"a recorded model response has an output item of unknown type "
                f"{item.get('type')!r}: the run was recorded by another version of the "
                "openai package. Finish it with that version."
            )
        output.append(cls.model_validate(item))
    return ModelResponse(
        output=output,
        usage=TypeAdapter(SDKUsage).validate_python(record["usage"]),
        response_id=record.get("response_id"),
        request_id=record.get("request_id"),
    )


# -- results -----------------------------------------------------------------------------------

_ITEMS: dict[str, type[Any]] = {
    "reasoning": Reasoning,
    "tool_call": ToolCall,
    "tool_result": ToolResult,
    "message": Message,
    "handoff": Handoff,
}


def result_record(result: RunResult) -> dict[str, Any]:
    """A run's result as a JSON value: `RunResult.to_dict()` and its `session_items`."""
    record = result.to_dict()
    record["session_items"] = result.session_items
    return record


def _item(value: dict[str, Any]) -> RunItem:
    fields = dict(value)
    cls = _ITEMS[fields.pop("type")]
    item: RunItem = cls(**fields)
    return item


def result_from_record(record: dict[str, Any], output_type: type[Any] | None = None) -> RunResult:
    """The `RunResult` a `result_record` was made of; with `output_type` (an agent's Python
    `output_schema`), its final output validated into that type again."""
    usage = dict(record["usage"])
    usage.pop("total_tokens", None)
    final_output = record["final_output"]
    if output_type is not None and final_output is not None:
        from pydantic import TypeAdapter

        final_output = TypeAdapter(output_type).validate_python(final_output)
    return RunResult(
        final_output=final_output,
        items=tuple(_item(item) for item in record["items"]),
        usage=Usage(**usage),
        turns=record["turns"],
        trace_id=record["trace_id"],
        agent=record["agent"],
        warnings=tuple(record.get("warnings", ())),
        pending_calls=tuple(ToolCall(**call) for call in record.get("pending_calls", ())),
        session_items=record.get("session_items"),
    )


# -- errors ------------------------------------------------------------------------------------

_ERRORS: dict[str, type[AgentRuntimeError]] = {
    cls.__name__: cls
    for cls in (
        AgentRuntimeError,
        BackendError,
        BackendUnavailableError,
        DurabilityError,
        RunError,
        RunLimitError,
        ToolResolutionError,
    )
}


class RunFailed(Exception):
    """The error a durable run ended with, as its workflow's error: the record of the
    `AgentRuntimeError` that `Runtime.run` raised. Plain data, so it survives storage."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record)
        self.record = record

    def __str__(self) -> str:
        return f"{self.record.get('type')}: {self.record.get('message')}"


def error_record(error: BaseException) -> dict[str, Any]:
    """An error as a JSON value: its class name, message, and what rebuilds it."""
    record: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, BackendError):
        record["url"] = error.url
    if isinstance(error, ConfigError):
        record["problems"] = [
            {
                "file": p.file,
                "line": p.line,
                "column": p.column,
                "path": p.path,
                "message": p.message,
            }
            for p in error.problems
        ]
    return record


def error_from_record(record: dict[str, Any]) -> AgentRuntimeError:
    """The error an `error_record` was made of: the same class and message. A class this
    version does not know (a subclass from elsewhere) comes back as its nearest known base,
    `RunError`, with the same message."""
    kind = record.get("type", "")
    message = str(record.get("message", ""))
    if kind == "ConfigError" and record.get("problems"):
        return ConfigError([ConfigProblem(**problem) for problem in record["problems"]])
    if kind in ("BackendError", "BackendUnavailableError"):
        return _ERRORS[kind](message, url=record.get("url"))  # type: ignore[call-arg]
    cls = _ERRORS.get(kind) or _known_subclass(kind) or RunError
    return cls(message)


def _known_subclass(name: str) -> type[AgentRuntimeError] | None:
    """An `AgentRuntimeError` subclass defined in agent_runtime with this name, if loaded."""
    pending: list[type[AgentRuntimeError]] = [AgentRuntimeError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name and cls.__module__.startswith("agent_runtime"):
            try:
                cls("probe")
            except Exception:
                return None
            return cls
        pending.extend(cls.__subclasses__())
    return None
