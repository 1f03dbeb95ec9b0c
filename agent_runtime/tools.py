"""Python functions → Agents SDK function tools that tell the model what went wrong.

The SDK's own `function_tool` answers every failure with one generic sentence and has no timeout
for sync functions. Here each tool validates its arguments, runs with a time limit (sync
functions in a daemon thread, at most `ToolThreads.limit` of them at a time), sends its result
as JSON (pydantic models and dataclasses included), caps its output, and answers failures with
text that names the problem, so gpt-oss can correct its call:

    Error: invalid arguments for `get_weather`: city: Field required. Call `get_weather` again
    with corrected arguments.

A tool that raises `ToolRetry` has its message sent back the same way. So does a tool that
tries to end the program (`sys.exit()`, `SystemExit`, `KeyboardInterrupt`: an argparse or click
parser inside it, say) and a result that cannot be written as text: the run goes on.

An async tool runs in a task of its own. Cancelled (its time limit, the run's `run_timeout_s`,
Ctrl-C), it has `CANCEL_GRACE_S` to stop; one that ignores its cancellation is abandoned and
reported, not waited for. An async tool that blocks (a blocking call instead of an `await`) holds
up the whole event loop: nothing can stop it until it returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import datetime
import enum
import functools
import inspect
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from agent_runtime.errors import ToolRetry
from agent_runtime.guards import CallGuard
from agent_runtime.redact import own_logger
from agent_runtime.text import clip, json_problem, sentence
from agent_runtime.tracing import current_trace

if TYPE_CHECKING:
    from agents import FunctionTool
    from agents.tool_context import ToolContext

__all__ = [
    "CANCEL_GRACE_S",
    "CLIENT_TOOL_NAME",
    "DEFAULT_TOOL_THREADS",
    "ClientTool",
    "ToolThreads",
    "build_function_tool",
    "client_function_tool",
    "format_tool_output",
    "run_in_daemon_thread",
    "start_daemon_thread",
    "to_json_value",
    "tool_not_found_message",
]

logger = own_logger(__name__)

T = TypeVar("T")

DEFAULT_TOOL_THREADS = 32
"""Threads for sync tool calls that may exist at once, by default (`defaults.tool_threads`)."""

CANCEL_GRACE_S = 1.0
"""Seconds a cancelled async tool has to stop before it is abandoned."""

_SHOWN_CHARS = 200
"""The longest argument value quoted in a message to the model."""
_DETAIL_CHARS = 1_000
"""The longest exception text quoted in a message to the model."""


CLIENT_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a client tool's name may be (as for OpenAI's function tools)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientTool:
    """A function tool that the caller runs: offered to the model, never run by the runtime.

    Pass client tools to `Runtime.run` / `stream` / `run_sync` (`tools=`). When the model
    calls one, the run stops after that model turn: `RunResult.pending_calls` has the client
    calls of the turn (`name`, `arguments`, `call_id`), `final_output` is None. Run them, then
    continue the session with one `{"type": "function_call_output", "call_id": ..., "output":
    ...}` input item per call.

    Attributes:
        name: the name the model calls (letters, digits, `_`, `-`; at most 64).
        description: what the tool does, for the model.
        parameters: the JSON Schema of its arguments (an object schema).
        strict: ask for arguments that match the schema exactly (the schema must then be
            strict-compatible: every property required, no additional properties).
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool = False


def client_function_tool(tool: ClientTool) -> FunctionTool:
    """The SDK tool offering `tool` to the model. Its invocation runs nothing: the runtime
    stops the run at its calls (the text returned is seen by a model only when the turn
    handed off too, which goes first).

    Raises:
        agents.UserError: `strict` with a schema that cannot be made strict.
    """
    from agents import FunctionTool

    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        return (
            f"Error: `{tool.name}` is run by the client, which gets this call only when the "
            "turn ends with it."
        )

    return FunctionTool(
        name=tool.name,
        description=tool.description,
        params_json_schema=dict(tool.parameters),
        on_invoke_tool=invoke,
        strict_json_schema=tool.strict,
    )


def _arguments_preview(arguments: str, limit: int = _SHOWN_CHARS) -> str:
    """The model's arguments quoted, at most `limit` characters of them, with a note of the
    rest: `'{"a": 1, ...'… [9,800 more characters]`."""
    if len(arguments) <= limit:
        return repr(arguments)
    return f"{arguments[:limit]!r}… [{len(arguments) - limit:,} more characters]"


def _shown(value: Any) -> str:
    """A value from the model's arguments quoted for a message, shortened with a note."""
    if isinstance(value, str):
        return _arguments_preview(value)
    try:
        return clip(repr(value), _SHOWN_CHARS)
    except Exception:  # e.g. nested too deeply to show
        return f"a value of type {type(value).__name__}"


def _describe(exc: BaseException) -> str:
    """`TypeName: message` of an exception, its message shortened with a note; never raises
    (a message that cannot be turned into text is left out)."""
    try:
        detail = str(exc)
    except Exception:
        detail = "(its message cannot be shown)"
    name = type(exc).__name__
    return f"{name}: {clip(detail, _DETAIL_CHARS)}" if detail else name


def _validation_details(error: pydantic.ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        message = item["msg"]
        if item["type"] != "missing":
            message += f" (got {_shown(item['input'])})"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def to_json_value(value: Any) -> Any:
    """What `json.dumps` writes for a value it does not know (its `default`): pydantic models
    and dataclasses as objects, enums as their values, dates and times in ISO 8601, UUIDs,
    decimals and paths as strings, sets as lists, anything else as `str(value)`."""
    if isinstance(value, pydantic.BaseModel):
        try:
            return value.model_dump(mode="json", fallback=str, warnings=False)
        except ValueError:  # e.g. bytes that are not UTF-8: the rest comes back here
            return value.model_dump(warnings=False)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset | collections.deque):
        return list(value)
    return str(value)  # UUIDs, decimals, paths, time spans...


def format_tool_output(value: Any, *, max_chars: int) -> str:
    """A tool's return value as the text the model sees, capped at `max_chars` characters.

    Text is sent as it is; anything else as JSON (see `to_json_value`), else as `str(value)`.

    Raises:
        Exception: the value has no text (`str()` raised: an integer past Python's digit
            limit, an object whose `__str__` raises...).
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=to_json_value)
        except (TypeError, ValueError, RecursionError):  # a structure that contains itself...
            text = str(value)  # ...may still have a text; what has none raises here
    if len(text) <= max_chars:
        return text
    return (
        f"{text[:max_chars]}\n[output truncated: {len(text):,} characters, "
        f"showing the first {max_chars:,}]"
    )


def _retry_message(tool_name: str, retry: ToolRetry) -> str:
    """What the model reads when a tool raised `ToolRetry`."""
    detail = str(retry).strip()
    reason = f": {sentence(detail)}" if detail else "."
    return (
        f"Error: `{tool_name}` asks for a corrected call{reason} "
        f"Call `{tool_name}` again with corrected arguments."
    )


class _Failed(Exception):
    """A tool call that failed; the message is the text for the model."""


class _Exited(Exception):
    """A tool function raised `SystemExit` or `KeyboardInterrupt`: carried as an ordinary
    exception, which does not stop the event loop or the program."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(_describe(cause))
        self.cause = cause


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome, so that it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


def tool_not_found_message(name: str, available: Sequence[str]) -> str:
    """What the model is told when it calls a tool that does not exist."""
    if not available:
        return f"Error: there is no tool named `{name}`; this agent has no tools. Answer directly."
    listing = ", ".join(f"`{tool}`" for tool in available)
    return f"Error: there is no tool named `{name}`. Available tools: {listing}."


def start_daemon_thread(
    function: Callable[[], T], *, on_exit: Callable[[], None] | None = None
) -> asyncio.Future[T]:
    """Start a blocking function in its own daemon thread; the future of its result.

    Unlike `asyncio.to_thread`, an abandoned call (timed out, or its run cancelled by Ctrl-C)
    does not hold up the event loop's shutdown or the interpreter's exit: Python cannot stop a
    thread, but it need not wait for this one. `on_exit` is called in the thread when the
    function has returned or raised, before the future is settled.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def work() -> None:
        outcome: Callable[[], None]
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting task, whatever it is
            outcome = functools.partial(future.set_exception, exc)
        else:
            outcome = functools.partial(future.set_result, result)
        if on_exit is not None:
            on_exit()
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(settle, outcome)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    try:
        thread.start()
    except BaseException:
        if on_exit is not None:
            on_exit()
        raise
    return future


async def run_in_daemon_thread(function: Callable[[], T]) -> T:
    """Run a blocking function in its own daemon thread and await its result (see
    `start_daemon_thread`)."""
    return await start_daemon_thread(function)


class ToolThreads:
    """The threads that sync tools run in: at most `limit` at a time, shared by the tools of one
    runtime (`defaults.tool_threads`).

    Each sync call runs in a daemon thread of its own. A call that finds `limit` threads running
    waits, first come first served, for one of them to end. A call abandoned at its time limit
    keeps its thread, and its place in the count, until its function returns: the limit bounds
    the threads that exist, not only those a model still waits for. The time limit of a call
    includes its wait for a thread.

    Thread-safe, and usable from several event loops.
    """

    def __init__(self, limit: int = DEFAULT_TOOL_THREADS) -> None:
        if limit < 1:
            raise ValueError(f"ToolThreads needs a limit of at least 1, not {limit!r}")
        self.limit = limit
        self._lock = threading.Lock()
        self._running = 0
        self._waiting: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]
        self._waiting = collections.deque()

    @property
    def running(self) -> int:
        """Threads started and not yet ended, abandoned ones included."""
        with self._lock:
            return self._running

    @property
    def waiting(self) -> int:
        """Calls waiting for a thread."""
        with self._lock:
            return len(self._waiting)

    async def start(self, function: Callable[[], T]) -> asyncio.Future[T]:
        """Wait for a free thread, start `function` in it, and return the future of its result.

        Cancelled while waiting, nothing is started.
        """
        await self._acquire()
        return start_daemon_thread(function, on_exit=self._release)

    async def _acquire(self) -> None:
        with self._lock:
            if self._running < self.limit and not self._waiting:
                self._running += 1
                return
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiting.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiting.remove((loop, waiter))
                    granted = False
                except ValueError:  # a thread was handed over already
                    granted = True
            if granted and waiter.done() and not waiter.cancelled():
                self._release()
            raise

    def _release(self) -> None:
        """A thread ended (or was never started): hand its place to the next waiting call."""
        while True:
            with self._lock:
                if not self._waiting:
                    self._running -= 1
                    return
                loop, waiter = self._waiting.popleft()
            try:
                loop.call_soon_threadsafe(self._grant, waiter)
            except RuntimeError:  # that call's loop is closed: nobody waits there any more
                continue
            return

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():  # cancelled after it was chosen: the next one gets the place
            self._release()
        else:
            waiter.set_result(None)


def build_function_tool(
    function: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = 30.0,
    max_output_chars: int = 20_000,
    strict: bool = True,
    threads: ToolThreads | None = None,
    needs_approval: bool = False,
) -> FunctionTool:
    """Wrap a typed Python function (sync or async) as an SDK `FunctionTool`.

    The schema comes from its type hints and docstring (the SDK's `function_schema`); `name` and
    `description` override them. The tool never raises into the run: invalid JSON, invalid
    arguments, exceptions, `ToolRetry` and time-outs come back to the model as `Error: …` text;
    only a passed loop-guard limit (`RunLimitError`) ends the run.

    Args:
        function: the Python callable; a first parameter typed `RunContextWrapper` or
            `ToolContext` receives the run context.
        name: the tool name the model sees (default: the function's name).
        description: the description the model sees (default: the docstring summary).
        timeout_s: seconds before a call is abandoned; None for no limit.
        max_output_chars: longer outputs are cut, with a note saying so.
        strict: send the schema in strict mode (all fields required, no extras).
        threads: the thread limit of sync calls, shared with other tools (default: one of
            this tool's own, of `DEFAULT_TOOL_THREADS`).
        needs_approval: a person approves each call before it runs (the run stops at it).
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
    pool = threads if threads is not None else ToolThreads()

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
            except RecursionError:
                problem = _too_deep_message(arguments)
        if parsed is None:
            message = problem or f"Error: no arguments for `{tool_name}`."
            guard.invalid_call(tool_name, message.removeprefix("Error: "))
            return message
        refusal = guard.before_call(tool_name, arguments)
        if refusal is not None:
            return refusal
        args, kwargs = schema.to_call_args(parsed)
        if schema.takes_context:
            args.insert(0, context)
        try:
            result = await _call(functools.partial(function, *args, **kwargs), guard)
        except ToolRetry as retry:
            message = _retry_message(tool_name, retry)
            logger.info("tool %s asked for a corrected call", tool_name)
            guard.invalid_call(tool_name, message.removeprefix("Error: "))
            return message
        except _Failed as failure:
            guard.valid_call()
            return str(failure)
        guard.valid_call()
        try:
            return format_tool_output(result, max_chars=max_output_chars)
        except Exception as exc:
            return _unsendable_message(exc)

    async def _call(call: Callable[[], Any], guard: CallGuard) -> Any:
        """The function's result; `_Failed` with the text for the model when it raised (other
        than `ToolRetry`), tried to end the program, or ran out of time."""
        try:
            if is_async:
                return await _call_async(call, guard)
            return await _call_in_thread(call, guard)
        except (ToolRetry, _Failed):
            raise
        except _Exited as exc:
            raise _Failed(_exit_message(exc.cause)) from None
        except Exception as exc:
            raise _failure(exc) from exc

    async def _call_in_thread(call: Callable[[], Any], guard: CallGuard) -> Any:
        def run() -> Any:
            started = guard.tool_started(tool_name, in_thread=True)
            try:
                return call()
            except (SystemExit, KeyboardInterrupt) as exc:  # a thread never gets a real Ctrl-C
                raise _Exited(exc) from exc
            finally:
                guard.tool_ended(started)

        started = False
        try:
            async with asyncio.timeout(timeout_s) as limit:
                pending = await pool.start(run)
                started = True
                return await pending
        except TimeoutError:
            if not limit.expired():  # the function's own TimeoutError
                raise
            raise _Failed(_timeout_message(started=started, abandoned=started)) from None

    async def _call_async(call: Callable[[], Any], guard: CallGuard) -> Any:
        """Run the coroutine in a task of its own, so that one that ignores its cancellation
        can be left behind instead of waited for."""
        started = guard.tool_started(tool_name, in_thread=False)

        async def run() -> Any:
            try:
                return await call()
            except (SystemExit, KeyboardInterrupt) as exc:
                # In the tool's own code: a real Ctrl-C cancels the run instead (asyncio.run).
                raise _Exited(exc) from exc
            finally:
                guard.tool_ended(started)

        task = asyncio.ensure_future(run())
        guard.tool_task(started, task)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
        except asyncio.CancelledError:
            guard.tool_cancelled(started)
            await _stop(task)
            raise
        if not done:
            guard.tool_cancelled(started)
            stopped = await _stop(task)
            raise _Failed(_timeout_message(started=True, abandoned=not stopped))
        return task.result()

    async def _stop(task: asyncio.Task[Any]) -> bool:
        """Cancel the tool's task and give it `CANCEL_GRACE_S` to end; whether it did."""
        task.cancel()
        task.add_done_callback(_consume)
        await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
        if not task.done():
            logger.warning(
                "tool %s did not stop within %s s of its cancellation and was abandoned",
                tool_name,
                CANCEL_GRACE_S,
            )
            _record("abandoned", "did not stop when cancelled")
        return task.done()

    def _record(what: str, detail: str) -> None:
        """A `tool_error` record in the run's trace."""
        trace = current_trace.get()
        if trace is not None:
            trace.record("tool_error", agent=trace.agent, name=tool_name, error=what, detail=detail)

    def _failure(exc: Exception) -> _Failed:
        logger.info("tool %s raised %s", tool_name, type(exc).__name__)
        return _Failed(f"Error: `{tool_name}` raised {_describe(exc)}")

    def _exit_message(exc: BaseException) -> str:
        what = "exit" if isinstance(exc, SystemExit) else "interrupt"
        logger.warning("tool %s tried to %s the program: %s", tool_name, what, _describe(exc))
        _record(type(exc).__name__, _describe(exc))
        return (
            f"Error: `{tool_name}` tried to {what} the program ({_describe(exc)}); it was "
            f"stopped, and the run goes on. Call `{tool_name}` with other arguments, or "
            "answer without it."
        )

    def _unsendable_message(exc: Exception) -> str:
        logger.warning(
            "the result of tool %s cannot be written as text: %s", tool_name, _describe(exc)
        )
        _record("unsendable result", _describe(exc))
        return (
            f"Error: the result of `{tool_name}` cannot be sent: it cannot be written as JSON "
            f"or text ({_describe(exc)}). Call `{tool_name}` with other arguments, or answer "
            "without it."
        )

    def _too_deep_message(arguments: str) -> str:
        return (
            f"Error: the arguments for `{tool_name}` are nested too deeply to read "
            f"({len(arguments):,} characters). Call `{tool_name}` again with a JSON object "
            "of its parameters."
        )

    def _timeout_message(*, started: bool, abandoned: bool) -> str:
        if not started:
            logger.warning(
                "tool %s found no free thread within %s s (all %d in use)",
                tool_name,
                timeout_s,
                pool.limit,
            )
            return (
                f"Error: `{tool_name}` could not start within {timeout_s:g} s: too many tool "
                "calls are running. Try again later, or answer without it."
            )
        logger.warning("tool %s timed out after %s s", tool_name, timeout_s)
        if not is_async:
            how = "was abandoned (it keeps running in its thread)"
        elif abandoned:
            how = "was abandoned (it did not stop when cancelled)"
        else:
            how = "was stopped"
        return (
            f"Error: `{tool_name}` did not finish within {timeout_s:g} s and {how}. "
            "Try again later or with simpler arguments, or answer without it."
        )

    def _parse_arguments(arguments: str) -> tuple[dict[str, Any] | None, str | None]:
        """The arguments as a dict, or None and what is wrong with them."""
        try:
            data = json.loads(arguments) if arguments.strip() else {}
        except RecursionError:
            return None, _too_deep_message(arguments)
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
        needs_approval=needs_approval,
    )
