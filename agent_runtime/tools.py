"""Python functions → Agents SDK function tools that tell the model what went wrong.

The SDK's own `function_tool` answers every failure with one generic sentence and has no timeout
for sync functions. Here each tool validates its arguments, runs with a time limit (sync
functions in a worker thread), caps its output, and answers failures with text that names the
problem, so gpt-oss can correct its call:

    Error: invalid arguments for `get_weather`: city: Field required. Call `get_weather` again
    with corrected arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from agent_runtime.guards import CallGuard
from agent_runtime.text import json_problem
from agent_runtime.tracing import current_trace

if TYPE_CHECKING:
    from agents import FunctionTool
    from agents.tool_context import ToolContext

__all__ = [
    "build_function_tool",
    "format_tool_output",
    "run_in_daemon_thread",
    "tool_not_found_message",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _arguments_preview(arguments: str, limit: int = 200) -> str:
    return repr(arguments if len(arguments) <= limit else arguments[:limit] + "…")


def _validation_details(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        message = item["msg"]
        if item["type"] != "missing":
            message += f" (got {item['input']!r})"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def format_tool_output(value: Any, *, max_chars: int) -> str:
    """A tool's return value as the text the model sees, capped at `max_chars` characters."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) <= max_chars:
        return text
    return (
        f"{text[:max_chars]}\n[output truncated: {len(text):,} characters, "
        f"showing the first {max_chars:,}]"
    )


def tool_not_found_message(name: str, available: Sequence[str]) -> str:
    """What the model is told when it calls a tool that does not exist."""
    if not available:
        return f"Error: there is no tool named `{name}`; this agent has no tools. Answer directly."
    listing = ", ".join(f"`{tool}`" for tool in available)
    return f"Error: there is no tool named `{name}`. Available tools: {listing}."


async def run_in_daemon_thread(function: Callable[[], T]) -> T:
    """Run a blocking function in its own daemon thread and await its result.

    Unlike `asyncio.to_thread`, an abandoned call (timed out, or its run cancelled by Ctrl-C)
    does not hold up the event loop's shutdown or the interpreter's exit: Python cannot stop a
    thread, but it need not wait for this one.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def work() -> None:
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting task, whatever it is
            error = exc
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.call_soon_threadsafe(settle, lambda: future.set_exception(error))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True).start()
    return await future


def build_function_tool(
    function: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = 30.0,
    max_output_chars: int = 20_000,
    strict: bool = True,
) -> FunctionTool:
    """Wrap a typed Python function (sync or async) as an SDK `FunctionTool`.

    The schema comes from its type hints and docstring (the SDK's `function_schema`); `name` and
    `description` override them. The tool never raises into the run: invalid JSON, invalid
    arguments, exceptions and time-outs come back to the model as `Error: …` text.

    Args:
        function: the Python callable; a first parameter typed `RunContextWrapper` or
            `ToolContext` receives the run context.
        name: the tool name the model sees (default: the function's name).
        description: the description the model sees (default: the docstring summary).
        timeout_s: seconds before a call is abandoned; None for no limit.
        max_output_chars: longer outputs are cut, with a note saying so.
        strict: send the schema in strict mode (all fields required, no extras).
    """
    from agents import FunctionTool
    from agents.function_schema import function_schema

    schema = function_schema(
        function,
        name_override=name,
        description_override=description,
        strict_json_schema=strict,
    )
    tool_name = schema.name
    is_async = inspect.iscoroutinefunction(function)

    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        trace = current_trace.get()
        guard = trace.guard if trace is not None else CallGuard(0, 0)
        data, problem = _parse_arguments(arguments)
        parsed = None
        if data is not None:
            try:
                parsed = schema.params_pydantic_model(**data)
            except pydantic.ValidationError as exc:
                problem = (
                    f"Error: invalid arguments for `{tool_name}`: {_validation_details(exc)}. "
                    f"Call `{tool_name}` again with corrected arguments."
                )
        if parsed is None:
            message = problem or f"Error: no arguments for `{tool_name}`."
            guard.invalid_call(tool_name, message.removeprefix("Error: "))
            return message
        refusal = guard.before_call(tool_name, arguments)
        if refusal is not None:
            return refusal
        guard.valid_call()
        args, kwargs = schema.to_call_args(parsed)
        if schema.takes_context:
            args.insert(0, context)
        try:
            if is_async:
                call = function(*args, **kwargs)
            else:
                call = run_in_daemon_thread(functools.partial(function, *args, **kwargs))
            result = await asyncio.wait_for(call, timeout=timeout_s)
        except TimeoutError:
            logger.warning("tool %s timed out after %s s", tool_name, timeout_s)
            how = "was stopped" if is_async else "was abandoned (it keeps running in its thread)"
            return (
                f"Error: `{tool_name}` did not finish within {timeout_s:g} s and {how}. "
                "Try again later or with simpler arguments, or answer without it."
            )
        except Exception as exc:
            logger.info("tool %s raised %s", tool_name, type(exc).__name__)
            return f"Error: `{tool_name}` raised {type(exc).__name__}: {exc}"
        return format_tool_output(result, max_chars=max_output_chars)

    def _parse_arguments(arguments: str) -> tuple[dict[str, Any] | None, str | None]:
        """The arguments as a dict, or None and what is wrong with them."""
        try:
            data = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return None, (
                f"Error: the arguments for `{tool_name}` are not valid JSON ({json_problem(exc)}): "
                f"{_arguments_preview(arguments)}. "
                f"Call `{tool_name}` again with a JSON object of its parameters."
            )
        if not isinstance(data, dict):
            return None, (
                f"Error: the arguments for `{tool_name}` must be a JSON object, not "
                f"{type(data).__name__}: {_arguments_preview(arguments)}."
            )
        return data, None

    return FunctionTool(
        name=tool_name,
        description=schema.description or "",
        params_json_schema=schema.params_json_schema,
        on_invoke_tool=invoke,
        strict_json_schema=strict,
    )
