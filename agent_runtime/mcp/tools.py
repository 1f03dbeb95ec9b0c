"""The tools of an MCP server as Agents SDK function tools that tell the model what went wrong.

Like the runtime's Python tools (`agent_runtime.tools`), an MCP tool never raises into the run:
arguments that are not JSON or do not match the tool's schema, an error answer of the server, a
refused call, a time-out and a server that stopped during the call all come back to the model
as `Error: …` text it can act on, and the loop guard sees every call. Only an MCP server that
cannot be (re)started ends the run (`McpServerError`). The result is text (what gpt-oss on vLLM
reads back): the server's text content, other content described in brackets, cut at
`defaults.tool_max_output_chars`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agent_runtime.guards import CallGuard
from agent_runtime.mcp.connection import ListedTool, McpCallFailed, McpConnection
from agent_runtime.redact import own_logger
from agent_runtime.text import clip, json_problem, sentence
from agent_runtime.tracing import current_trace

if TYPE_CHECKING:
    from agents import FunctionTool
    from agents.tool_context import ToolContext
    from mcp.types import CallToolResult

__all__ = ["mcp_function_tool", "result_text"]

logger = own_logger(__name__)

_SHOWN_CHARS = 200


def result_text(result: CallToolResult) -> str:
    """The content of a tool's result as text: text as it is, other content described."""
    parts: list[str] = []
    for item in result.content:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)  # type: ignore[union-attr]
        elif kind in ("image", "audio"):
            mime = getattr(item, "mime_type", "") or "unknown type"
            size = len(getattr(item, "data", "") or "")
            parts.append(f"[{kind} content ({mime}, {size:,} base64 characters), not shown]")
        elif kind == "resource":
            resource = item.resource  # type: ignore[union-attr]
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {getattr(item, 'uri', '')}]")
        else:
            parts.append(item.model_dump_json())
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    return "\n".join(parts)


def _capped(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return (
        f"{text[:max_chars]}\n[output truncated: {len(text):,} characters, "
        f"showing the first {max_chars:,}]"
    )


def _preview(arguments: str) -> str:
    if len(arguments) <= _SHOWN_CHARS:
        return repr(arguments)
    return f"{arguments[:_SHOWN_CHARS]!r}… [{len(arguments) - _SHOWN_CHARS:,} more characters]"


def mcp_function_tool(
    connection: McpConnection,
    tool: ListedTool,
    *,
    name: str,
    max_output_chars: int,
    needs_approval: bool = False,
) -> FunctionTool:
    """The SDK tool that calls `tool` of the server behind `connection`; `name` is the name the
    model sees (with the server's `prefix`); with `needs_approval`, a person approves each call
    before it runs."""
    from agents import FunctionTool

    schema = dict(tool.input_schema) or {"type": "object"}
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    server = connection.name

    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        trace = current_trace.get()
        guard = trace.guard if trace is not None else CallGuard(0, 0)
        data, problem = _parse(arguments, schema, name)
        if data is None:
            message = problem or f"Error: no arguments for `{name}`."
            guard.invalid_call(name, message.removeprefix("Error: "))
            return message
        refusal = guard.before_call(name, arguments)
        if refusal is not None:
            return refusal
        try:
            result = await connection.call(tool.name, data, shown=name)
        except McpCallFailed as failure:
            if trace is not None:
                trace.record(
                    "tool_error", agent=trace.agent, name=name, server=server, detail=str(failure)
                )
            if failure.invalid:
                guard.invalid_call(name, str(failure).removeprefix("Error: "))
            else:
                guard.valid_call()
            return str(failure)
        guard.valid_call()
        text = result_text(result)
        if result.is_error:
            logger.info("MCP tool %s of server %s answered with an error", tool.name, server)
            detail = sentence(clip(text, 2000)) if text.strip() else "(no details)."
            return _capped(
                f"Error: `{name}` failed on MCP server '{server}': {detail} Call `{name}` "
                "again with corrected arguments, or answer without it.",
                max_output_chars,
            )
        return _capped(text, max_output_chars)

    return FunctionTool(
        name=name,
        description=tool.description,
        params_json_schema=schema,
        on_invoke_tool=invoke,
        strict_json_schema=False,
        needs_approval=needs_approval,
    )


def _parse(
    arguments: str, schema: dict[str, Any], name: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The arguments as a dict checked against the tool's schema, or None and the problem."""
    try:
        data = json.loads(arguments) if arguments.strip() else {}
    except RecursionError:
        return None, (
            f"Error: the arguments for `{name}` are nested too deeply to read "
            f"({len(arguments):,} characters). Call `{name}` again with a JSON object of its "
            "parameters."
        )
    except json.JSONDecodeError as exc:
        return None, (
            f"Error: the arguments for `{name}` are not valid JSON ({json_problem(exc)}): "
            f"{_preview(arguments)}. Call `{name}` again with a JSON object of its parameters."
        )
    if not isinstance(data, dict):
        return None, (
            f"Error: the arguments for `{name}` must be a JSON object, not "
            f"{type(data).__name__}: {_preview(arguments)}."
        )
    problems = _schema_problems(data, schema)
    if problems:
        return None, (
            f"Error: invalid arguments for `{name}`: {problems}. Call `{name}` again with "
            "corrected arguments."
        )
    return data, None


def _schema_problems(data: dict[str, Any], schema: dict[str, Any]) -> str:
    """What in `data` breaks `schema` ("" when nothing does, or when the server's schema
    cannot be used to check: the server then checks the arguments itself)."""
    import jsonschema

    try:
        validator = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
        errors = sorted(
            validator(schema).iter_errors(data), key=lambda error: list(error.absolute_path)
        )
    except (jsonschema.SchemaError, jsonschema.exceptions.UnknownType, RecursionError):
        return ""
    except Exception:  # a schema the validator cannot use (a bad $ref...)
        return ""
    return "; ".join(
        f"{'.'.join(str(p) for p in error.absolute_path) or 'arguments'}: "
        f"{clip(error.message, _SHOWN_CHARS)}"
        for error in errors[:5]
    )
