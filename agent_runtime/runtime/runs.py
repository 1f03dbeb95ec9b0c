"""A run in progress: its state, how its end and failures are recorded, the SDK's stream events
relayed as the runtime's, answers that broke the `output_schema` sent back, errors translated."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Sequence,
)
from typing import TYPE_CHECKING, Any

from agent_runtime.backends.replicas import affinity_key
from agent_runtime.backends.retry import RetryEvent, api_error_message
from agent_runtime.config import Config
from agent_runtime.errors import (
    AgentRuntimeError,
    BackendError,
    RunError,
    RunLimitError,
)
from agent_runtime.guards import CallGuard
from agent_runtime.redact import Redactor, current_redactor, own_logger
from agent_runtime.results import (
    AgentChanged,
    ReasoningDelta,
    Retrying,
    RunEvent,
    RunResult,
    TextDelta,
    Usage,
    call_id_of,
    run_item,
    run_result,
)
from agent_runtime.runtime.client_tools import _ClientCalls, _without_outputs
from agent_runtime.sessions import (
    SessionStore,
    consistent_prefix,
    input_items,
    produced_items,
)
from agent_runtime.tracing import RunTrace, current_trace

if TYPE_CHECKING:
    from agents import (
        Agent,
    )


logger = own_logger(__name__)


_CANCELLED_WRITE_S = 1.0
"""How long a cancelled run's session write waits for a locked database (the loop waits too)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Failed:
    """The error that ended a streamed run, to be raised where the stream is read."""

    error: Exception


@dataclasses.dataclass(slots=True, kw_only=True)
class _Run:
    """One run in progress: what it started from, its trace, its time budget."""

    agent: str
    sdk_agent: Agent[Any]
    client: _ClientCalls | None
    """The run's client tools, when it has any."""
    session: str | None
    new_items: list[Any]
    history: list[Any]
    trace: RunTrace
    budget_s: float | None
    deadline: float | None
    streamed: Any = None
    """The SDK's streamed result, for a streamed run (its items so far)."""
    answer_retries: int = 0
    """Final answers that broke the `output_schema` and were sent back to the model."""
    turns_used: int = 0
    """Model calls made by the attempts before the current one."""
    earlier: list[Any] = dataclasses.field(default_factory=list)
    """The SDK's error details of those attempts."""
    state: Any = None
    """The SDK's `RunState` a resumed run continues from (until an answer is sent back)."""
    max_turns: int = 0
    resumable: dict[str, Any] = dataclasses.field(default_factory=dict)
    """What a run stopped for approval keeps besides the SDK's state (`instructions`...)."""

    def sdk_input(self) -> Any:
        """What the SDK runs next: the state to resume from, or the whole input."""
        return self.state if self.state is not None else [*self.history, *self.new_items]

    def past_deadline(self) -> bool:
        return self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline

    def consistent_items(self, exc: BaseException | None = None) -> list[Any]:
        """What a failed run adds to its session: its input, and whatever complete turns it
        produced before failing (no call without its output, no dangling reasoning)."""
        produced = produced_items(exc) if exc is not None else []
        if not produced and self.streamed is not None:
            produced = input_items(self.streamed.new_items)
        if not produced:
            start = len(self.history) + len(self.new_items)
            produced = self.trace.last_input[start:]
        pending = self.pending_ids()
        items = _without_outputs([*self.new_items, *produced], pending)
        return consistent_prefix(items, pending=pending)

    def pending_ids(self) -> frozenset[str]:
        """The call ids of the client calls the run stopped at (none while it goes on)."""
        client = self.client
        return frozenset(client.call_ids) if client is not None and client.stopped else frozenset()


def _session_write_failed(run: _Run, failure: AgentRuntimeError) -> str:
    """Report that a run's new items were not stored in its session; the warning text."""
    warning = (
        f"the run's new items were not stored in session {run.session!r}, which does not "
        f"remember this exchange: {failure}"
    )
    logger.warning("%s", warning)
    run.trace.record(
        "session_write_failed", agent=run.trace.agent, session=run.session, error=str(failure)
    )
    return warning


async def _settle_tools(guard: CallGuard) -> None:
    """Give the async tools cancelled with a run that passed its deadline the time they have
    to stop (`CANCEL_GRACE_S`), so that only those that did not are reported as abandoned."""
    from agent_runtime.tools import CANCEL_GRACE_S

    tasks = guard.running_tasks()
    if tasks:
        await asyncio.wait(tasks, timeout=CANCEL_GRACE_S)


async def _relay(
    events: AsyncIterator[Any],
    agent: str,
    emit: Callable[[RunEvent | _Failed], None],
    client: _ClientCalls | None = None,
) -> None:
    """The SDK's stream events as the runtime's, handed to `emit` as they come (calls of
    client tools and their placeholder outputs left out)."""
    from openai.types.responses import ResponseReasoningTextDeltaEvent, ResponseTextDeltaEvent

    names: dict[str, str] = {}
    current = agent
    async for event in events:
        if event.type == "agent_updated_stream_event":
            current = event.new_agent.name
            emit(AgentChanged(agent=current))
        elif event.type == "raw_response_event":
            data = event.data
            if isinstance(data, ResponseReasoningTextDeltaEvent):
                emit(ReasoningDelta(agent=current, text=data.delta))
            elif isinstance(data, ResponseTextDeltaEvent):
                emit(TextDelta(agent=current, text=data.delta))
            elif isinstance(data, RetryEvent):
                emit(Retrying(agent=current, attempt=data.attempt, cause=data.cause))
        elif event.type == "run_item_stream_event":
            if client is not None and client.hides(event.item):
                continue
            item = run_item(event.item, names)
            if item is not None:
                emit(item)


async def _stop(streamed: Any, events: AsyncGenerator[Any, None]) -> None:
    """Stop the SDK's streamed run, if still going, and wait until it has: its tools have
    seen their cancellation and its items are final before the run's end is recorded."""
    streamed.cancel()
    await events.aclose()
    task = streamed.run_loop_task
    if task is not None:
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # an error of the run came through `events`; this one is seen


def _record_end(trace: RunTrace, outcome: RunResult) -> None:
    from pydantic_core import to_jsonable_python

    trace.record(
        "run_end",
        agent=outcome.agent,
        outcome="awaiting_approval" if outcome.pending_approvals else "completed",
        turns=outcome.turns,
        usage=dataclasses.asdict(outcome.usage),
        final_output=trace.sensitive(to_jsonable_python(outcome.final_output, fallback=str)),
    )


def _retry_request(problems: str) -> str:
    """What the model is told when its final answer broke the agent's `output_schema`."""
    return (
        f"Your answer does not match the required output schema: {problems}. Answer again "
        "with only the corrected JSON, matching the schema."
    )


def _with_earlier(outcome: RunResult, earlier: Sequence[Any]) -> RunResult:
    """The result of a run's last attempt with the turns, usage and items of the attempts
    whose answers broke the `output_schema` (the SDK's error details of each) put in."""
    if not earlier:
        return outcome
    names: dict[str, str] = {}
    items = [
        converted
        for details in earlier
        for item in details.new_items
        if (converted := run_item(item, names)) is not None
    ]
    usage = outcome.usage
    for details in earlier:
        used = details.context_wrapper.usage
        usage = Usage(
            requests=usage.requests + used.requests,
            input_tokens=usage.input_tokens + used.input_tokens,
            output_tokens=usage.output_tokens + used.output_tokens,
            reasoning_tokens=usage.reasoning_tokens + used.output_tokens_details.reasoning_tokens,
            cached_tokens=usage.cached_tokens + used.input_tokens_details.cached_tokens,
        )
    return dataclasses.replace(
        outcome,
        items=(*items, *outcome.items),
        usage=usage,
        turns=outcome.turns + sum(len(details.raw_responses) + 1 for details in earlier),
    )


def _own_error(exc: BaseException) -> AgentRuntimeError | None:
    """An error of ours that the SDK wrapped (raised from a tool, a filter or the retry layer)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        if isinstance(current, AgentRuntimeError):
            return current
        seen.append(current)
        current = current.__cause__ or current.__context__
    return None


def _retry_answer(config: Config, run: _Run, exc: Exception, max_turns: int) -> Retrying | None:
    """Prepare the next attempt of a run whose final answer broke the answering agent's
    `output_schema`: the answer and what is wrong with it go back to the model. None when
    `exc` is another failure.

    Raises:
        RunError: the agent's `output_retries` are used up.
        RunLimitError: no turn is left for another answer.
    """
    from agents import ModelBehaviorError

    from agent_runtime.builder import InvalidAnswer

    invalid = exc.__cause__
    details = getattr(exc, "run_data", None)
    if not (isinstance(exc, ModelBehaviorError) and isinstance(invalid, InvalidAnswer)):
        return None
    if details is None:
        return None
    allowed = config.output_retries_of(invalid.agent)
    run.turns_used += len(details.raw_responses) + 1
    if run.answer_retries >= allowed:
        raise RunError(
            f"agent `{invalid.agent}` answered {run.answer_retries + 1} time(s) without "
            f"matching its output_schema (output_retries={allowed}); last: "
            f"{invalid.problems}. Raise `output_retries` for the agent in agents.yaml, or "
            "say in its instructions what the answer must look like."
        ) from exc
    if run.turns_used >= max_turns:
        raise RunLimitError(
            f"agent `{invalid.agent}` used all its turns (max_turns={max_turns}) without a "
            f"final answer that matches its output_schema; last: {invalid.problems}. Raise "
            "`max_turns` for the agent in agents.yaml, or pass --max-turns."
        ) from exc
    run.answer_retries += 1
    run.earlier.append(details)
    run.new_items = [
        *run.new_items,
        *input_items(details.new_items),
        {"role": "assistant", "content": invalid.answer},
        {"role": "user", "content": _retry_request(invalid.problems)},
    ]
    run.sdk_agent = details.last_agent
    run.streamed = None
    run.state = None
    run.trace.record(
        "output_retry",
        agent=invalid.agent,
        attempt=run.answer_retries,
        output_retries=allowed,
        answer=run.trace.sensitive(invalid.answer),
        problems=run.trace.sensitive(invalid.problems),
    )
    return Retrying(
        agent=invalid.agent,
        attempt=run.answer_retries,
        cause=f"the answer does not match the output_schema: {invalid.problems}",
    )


def _translate(config: Config, exc: Exception, run: _Run) -> AgentRuntimeError:
    import openai
    from agents.exceptions import AgentsException, MaxTurnsExceeded

    agent = run.trace.agent or run.agent
    own = _own_error(exc)
    if own is not None:
        return own
    if isinstance(exc, TimeoutError) and run.past_deadline():
        left = run.trace.guard.left_behind()
        for phrase in left:
            run.trace.record("tool_abandoned", agent=run.agent, detail=phrase)
        tools = f" Tools running then: {'; '.join(left)}." if left else ""
        return RunLimitError(
            f"the run of agent `{run.agent}` took longer than its time budget "
            f"(run_timeout_s={run.budget_s:g} s) and was stopped.{tools}"
        )
    backend_name, backend_spec = config.backend_of(agent)
    url = backend_spec.url
    if isinstance(exc, MaxTurnsExceeded):
        return RunLimitError(
            f"agent `{agent}` used all its turns without a final answer ({exc.message}). "
            "Raise `max_turns` for the agent in agents.yaml, or pass --max-turns."
        )
    if isinstance(exc, openai.APIStatusError):
        return BackendError(
            f"the model server of backend `{backend_name}` at {url} answered "
            f"{exc.status_code}: {api_error_message(exc)}",
            url=url,
        )
    if isinstance(exc, AgentsException):
        detail = str(exc)
        if "status=incomplete" in detail:
            detail += (
                " The answer was cut at the output token limit: raise "
                "`model_settings.max_tokens`, or lower `reasoning_effort`."
            )
        return RunError(f"agent `{agent}` failed: {detail}")
    return RunError(f"agent `{agent}` failed: {type(exc).__name__}: {exc}")


@contextlib.asynccontextmanager
async def _running(
    run: _Run, config: Config, sessions: SessionStore, redactor: Redactor
) -> AsyncIterator[None]:
    """The run's context: its trace for hooks and tools, its session for backends with
    session affinity; failures translated and the session left consistent, also when the run
    is cancelled."""
    token = current_trace.set(run.trace)
    redacting = current_redactor.set(redactor)
    affinity = affinity_key.set(run.session)
    try:
        yield
    except asyncio.CancelledError:
        if run.session:
            # Cancelled: no more awaiting; a short synchronous write keeps what was done.
            try:
                sessions.append_sync(
                    run.session, run.consistent_items(), timeout_s=_CANCELLED_WRITE_S
                )
            except AgentRuntimeError as failure:
                _session_write_failed(run, failure)
        run.trace.record("run_end", agent=run.trace.agent, outcome="cancelled", error="cancelled")
        raise
    except Exception as exc:
        if isinstance(exc, TimeoutError) and run.past_deadline():
            await _settle_tools(run.trace.guard)
        error = redactor.exception(_translate(config, exc, run))
        redactor.exception(exc)
        if run.session:
            try:
                await sessions.append(run.session, run.consistent_items(exc))
            except AgentRuntimeError as failure:
                _session_write_failed(run, failure)
        run.trace.record(
            "run_end",
            agent=run.trace.agent,
            outcome="failed",
            error=f"{type(error).__name__}: {error}",
        )
        if error.__traceback__ is not None:
            # Ours, raised before (by a tool, a filter...): its own cause stays.
            raise error from error.__cause__
        raise error from exc
    finally:
        affinity_key.reset(affinity)
        current_redactor.reset(redacting)
        current_trace.reset(token)


async def _finish(run: _Run, result: Any, sessions: SessionStore) -> RunResult:
    """The result of a run that ended with an answer (or at client calls), its new items
    stored in its session and its end recorded; a session that cannot be written leaves a
    warning in the result, and the answer is kept."""
    pending = run.pending_ids()
    outcome = _with_earlier(
        run_result(
            result,
            trace_id=run.trace.trace_id,
            client_call=(lambda item: call_id_of(item) in pending) if pending else None,
        ),
        run.earlier,
    )
    if outcome.pending_approvals:
        from agent_runtime.runtime.approval import pending_text

        # The exchange goes into the session when the resumed run ends.
        try:
            outcome = dataclasses.replace(
                outcome,
                pending_state=pending_text(
                    agent=run.agent,
                    session=run.session,
                    trace_id=run.trace.trace_id,
                    input=[*run.history, *run.new_items],
                    history=len(run.history),
                    max_turns=run.max_turns,
                    options=run.resumable,
                    calls=outcome.pending_approvals,
                    state=result.to_state(),
                ),
            )
        finally:
            _record_end(run.trace, outcome)
        return outcome
    try:
        if run.session:
            new_items = _without_outputs(result.to_input_list()[len(run.history) :], pending)
            try:
                await sessions.append(run.session, new_items)
            except AgentRuntimeError as failure:
                warning = _session_write_failed(run, failure)
                outcome = dataclasses.replace(outcome, warnings=(*outcome.warnings, warning))
                new_items = []
            outcome = dataclasses.replace(outcome, session_items=len(run.history) + len(new_items))
    finally:
        _record_end(run.trace, outcome)
    return outcome
