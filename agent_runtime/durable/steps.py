"""Model calls, tool calls and session reads and writes as durable steps.

A durable run is one DBOS workflow running `Runtime.run`; what the run does through the outside
world goes through steps, whose outcomes DBOS records. When a crashed run is recovered, it runs
again from the start, and every step already recorded returns its recorded outcome instead of
running: the model is not asked again, a tool is not called again. Only the step in flight at
the crash runs again (at least once per step), unless its tool says `idempotent: false`.

The same SDK agents serve plain and durable runs: `make_durable` wraps each agent's model and
function tools once, and the wrappers go through steps only while `current_run` is set, which
the workflow does for its own task (the SDK's tool tasks inherit it). Inside a step (an agent
used as a tool runs its whole nested run in one), calls go straight through.

Step ids must come out the same on every execution. Tools of one turn run concurrently, so each
function call of a recorded model response gets its step id reserved at once, in the order of
the response (`DBOS.reserve_step`), and runs at that id whenever its task gets there.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent_runtime.durable.records import (
    error_from_record,
    error_record,
    response_from_record,
    response_record,
)
from agent_runtime.durable.stream import EventLog
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import own_logger
from agent_runtime.sessions import SessionStore

if TYPE_CHECKING:
    from agents import Agent, Model
    from agents.items import ModelResponse
    from dbos import StepReservation

    from agent_runtime.builder import BuiltAgents
    from agent_runtime.config import Config

__all__ = [
    "DurableSessions",
    "DurableStep",
    "current_run",
    "current_step",
    "interrupted_message",
    "make_durable",
]

logger = own_logger(__name__)


@dataclass(frozen=True, slots=True)
class DurableStep:
    """The durable step a tool call runs as.

    Attributes:
        run_id: the durable run's id.
        step: the step's number in the run (the same on every execution of the run).
    """

    run_id: str
    step: int

    @property
    def idempotency_key(self) -> str:
        """`RUN_ID:STEP`: the same when a call interrupted by a crash is made again, and
        different for every other call; pass it to services that deduplicate requests."""
        return f"{self.run_id}:{self.step}"


_step: contextvars.ContextVar[DurableStep | None] = contextvars.ContextVar(
    "agent_runtime_durable_step", default=None
)
_in_step: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agent_runtime_in_durable_step", default=False
)


def current_step() -> DurableStep | None:
    """The durable step of the tool call running now, or None outside a durable run.

    ```python
    from agent_runtime.durable import current_step

    def send_invoice(order_id: str) -> str:
        step = current_step()
        key = step.idempotency_key if step else None   # e.g. "run-42:3"
        return billing.send(order_id, idempotency_key=key)
    ```
    """
    return _step.get()


def interrupted_message(tool: str) -> str:
    """What the model gets for a call of a tool marked `idempotent: false` that a crash
    interrupted (it is not made again)."""
    return (
        f"Error: the call of `{tool}` was interrupted (its worker stopped) and was not made "
        "again, because the tool is marked `idempotent: false`: it may or may not have taken "
        "effect. Check its effect before calling it again."
    )


@dataclass(slots=True, kw_only=True)
class DurableRun:
    """The durable run of the current task: reserves and runs its steps."""

    run_id: str
    once_only: frozenset[str] = frozenset()
    """Tools (their names as the model sees them) marked `idempotent: false`."""
    _reserved: dict[str, tuple[StepReservation | None, StepReservation]] = field(
        default_factory=dict
    )
    events: EventLog = field(default_factory=EventLog)
    """What the run's followers have been sent (`stream`)."""

    async def model_call(
        self,
        call: Callable[[], Awaitable[ModelResponse]],
        *,
        agent: Agent[Any] | None = None,
        input: Any = None,
        handoffs: Sequence[Any] = (),
    ) -> ModelResponse:
        """A model call as a step: its response recorded, and rebuilt from the record. With
        the calling `agent`, the run's events are written around it (`stream`)."""
        from dbos import DBOS

        from agent_runtime.durable import stream

        if agent is not None:
            await stream.write(self.events.before_call(agent.name, input))
        failure: list[Exception] = []

        async def step() -> dict[str, Any]:
            token = _in_step.set(True)
            try:
                response = await call()
            except Exception as exc:
                failure.append(exc)
                return {"error": error_record(_own_error(exc) or exc)}
            finally:
                _in_step.reset(token)
            return {"response": response_record(response)}

        record = await DBOS.run_step_async({"name": "model_call"}, step)
        if "error" in record:
            if failure:  # failed here and now: the error itself, as in a plain run
                raise failure[0]
            raise error_from_record(record["error"])
        response = response_from_record(record["response"])
        if agent is not None:
            await stream.write(self.events.after_call(agent, response, handoffs))
        self._reserve(response)
        return response

    def _reserve(self, response: ModelResponse) -> None:
        """Reserve the step ids of the function calls of a response, in its order."""
        from dbos import DBOS

        for item in response.output:
            if getattr(item, "type", None) != "function_call":
                continue
            name, call_id = str(getattr(item, "name", "")), str(getattr(item, "call_id", ""))
            marker = DBOS.reserve_step() if name in self.once_only else None
            self._reserved[call_id] = (marker, DBOS.reserve_step())

    async def tool_call(
        self, name: str, call_id: str | None, call: Callable[[], Awaitable[Any]]
    ) -> Any:
        """A tool call as a step, at the step id reserved for its call id."""
        from dbos import DBOS

        reserved = self._reserved.pop(call_id, None) if call_id else None
        interrupted = False
        if reserved is not None and reserved[0] is not None:
            # Recorded before the call starts: found recorded while the call's own step is
            # not, the call was interrupted by a crash.
            started_now = False

            async def mark() -> bool:
                nonlocal started_now
                started_now = True
                return True

            await reserved[0].run_async({"name": f"tool_started:{name}"}, mark)
            interrupted = not started_now

        async def step() -> Any:
            if interrupted:
                logger.warning(
                    "run %s: the call of tool %s was interrupted and is not made again "
                    "(idempotent: false)",
                    self.run_id,
                    name,
                )
                return interrupted_message(name)
            number = reserved[1].step_id if reserved is not None else DBOS.step_id
            in_step = _in_step.set(True)
            key = _step.set(DurableStep(self.run_id, number or 0))
            try:
                return await call()
            finally:
                _step.reset(key)
                _in_step.reset(in_step)

        options: Any = {"name": f"tool:{name}"}
        if reserved is None:
            return await DBOS.run_step_async(options, step)
        return await reserved[1].run_async(options, step)

    async def session_load(self, load: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
        """A session's history as a step: the same history on every execution of the run."""
        from dbos import DBOS

        async def step() -> list[Any]:
            return await load()

        result: list[Any] = await DBOS.run_step_async({"name": "session_load"}, step)
        return result

    async def session_append(self, append: Callable[[str], Awaitable[None]]) -> None:
        """A session write as a step; `append` gets the write's key (the run's id), with which
        a store that can deduplicates a write a crash made twice."""
        from dbos import DBOS

        async def step() -> bool:
            await append(self.run_id)
            return True

        await DBOS.run_step_async({"name": "session_append"}, step)


current_run: contextvars.ContextVar[DurableRun | None] = contextvars.ContextVar(
    "agent_runtime_durable_run", default=None
)
"""The durable run this task belongs to; None in plain runs."""


def _active() -> DurableRun | None:
    """The durable run to make a step for: None outside durable runs and inside steps."""
    run = current_run.get()
    if run is None or _in_step.get():
        return None
    return run


def _own_error(exc: BaseException) -> AgentRuntimeError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AgentRuntimeError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# -- wrapping the built agents -----------------------------------------------------------------


@functools.cache
def _durable_model_class() -> type[Model]:
    """The class of `_durable_model`, built on first use (importing this module skips the
    SDK)."""
    from agents import Model

    class DurableModel(Model):
        """A model whose calls are steps in durable runs and plain calls otherwise."""

        def __init__(self, inner: Model, agent: Agent[Any] | None = None) -> None:
            super().__init__()
            self.inner = inner
            self.agent = agent

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
            run = _active()
            if run is None:
                return await self.inner.get_response(*args, **kwargs)
            return await run.model_call(
                lambda: self.inner.get_response(*args, **kwargs),
                agent=self.agent,
                input=kwargs.get("input", args[1] if len(args) > 1 else None),
                handoffs=kwargs.get("handoffs", args[5] if len(args) > 5 else ()),
            )

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            # Durable runs call `get_response` (`Runtime.run`); streams stay plain.
            return self.inner.stream_response(*args, **kwargs)

        async def close(self) -> None:
            await self.inner.close()

    return DurableModel


def _durable_tool(tool: Any) -> Any:
    """A function tool whose calls are steps in durable runs."""
    invoke = tool.on_invoke_tool
    name = tool.name

    async def invoke_durably(context: Any, arguments: str) -> Any:
        run = _active()
        if run is None:
            return await invoke(context, arguments)
        call_id = getattr(context, "tool_call_id", None)
        return await run.tool_call(name, call_id, lambda: invoke(context, arguments))

    invoke_durably.__agent_runtime_durable__ = True  # type: ignore[attr-defined]
    return dataclasses.replace(tool, on_invoke_tool=invoke_durably)


def make_durable(built: BuiltAgents) -> None:
    """Wrap the model and function tools of every built agent (in place, once) so that their
    calls are steps inside durable runs."""
    from agents import FunctionTool

    model_class: Any = _durable_model_class()
    for agent in built.agents.values():
        if agent.model is not None and not isinstance(agent.model, model_class | str):
            agent.model = model_class(agent.model, agent)
        agent.tools = [
            _durable_tool(tool)
            if isinstance(tool, FunctionTool)
            and not getattr(tool.on_invoke_tool, "__agent_runtime_durable__", False)
            else tool
            for tool in agent.tools
        ]


def once_only_tools(config: Config) -> frozenset[str]:
    """The names (as the model sees them) of the tools marked `idempotent: false`."""
    names: set[str] = set()
    for key, spec in config.spec.tools.items():
        if not spec.idempotent:
            names.add(spec.name or _function_name(config, key, spec.function))
    return frozenset(names)


def _function_name(config: Config, key: str, reference: str) -> str:
    function = config.functions.get(key) if hasattr(config, "functions") else None
    if function is not None:
        return str(getattr(function, "__name__", key))
    return reference.rpartition(":")[2] or key


# -- sessions ----------------------------------------------------------------------------------


class DurableSessions(SessionStore):
    """A session store whose reads and writes are steps in durable runs (so a recovered run
    starts from the history it started from the first time, and stores its items once), and
    plain calls otherwise.

    Args:
        inner: the store that keeps the sessions. A store with `append_once` (the Postgres
            store) stores a run's items exactly once; others at least once (a crash between
            the write and its record writes them again when the run is recovered).
    """

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.path = inner.path
        self.write_timeout_s = inner.write_timeout_s

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        async with self.inner.hold(session_id):
            yield

    def load_sync(self, session_id: str) -> list[Any]:
        return self.inner.load_sync(session_id)

    def append_sync(
        self, session_id: str, items: Sequence[Any], *, timeout_s: float | None = None
    ) -> None:
        if _active() is not None:
            # A durable run cancelled in its process (a worker stopping): it is not over,
            # another worker finishes it and stores its items then.
            return
        self.inner.append_sync(session_id, items, timeout_s=timeout_s)

    def clear_sync(self, session_id: str) -> None:
        self.inner.clear_sync(session_id)

    async def load(self, session_id: str) -> list[Any]:
        run = _active()
        if run is None:
            return await self.inner.load(session_id)
        return await run.session_load(lambda: self.inner.load(session_id))

    async def append(self, session_id: str, items: Sequence[Any]) -> None:
        run = _active()
        if run is None:
            await self.inner.append(session_id, items)
            return
        listed = list(items)
        once = getattr(self.inner, "append_once", None)

        async def append(key: str) -> None:
            if once is not None:
                await once(session_id, listed, key=key)
            else:
                await self.inner.append(session_id, listed)

        await run.session_append(append)

    async def clear(self, session_id: str) -> None:
        await self.inner.clear(session_id)

    def close(self) -> None:
        self.inner.close()
