"""Human approval of tool calls: what a stopped run keeps, and the decisions that continue it.

Tools declared with `approval: always` (a function tool, an MCP server or some of its tools)
are SDK tools with `needs_approval`: when the model calls one, the SDK stops the run after the
turn's other tools have run (they do not wait) and reports the call as an interruption. The run
ends then with `RunResult.pending_approvals` and `pending_state`, the SDK's `RunState` as JSON
inside an envelope of ours: the starting agent, the session, the trace id and how many session
items came before the run, so that `Runtime.resume` continues the same run (same session, same
trace id), in this process or another one.

The run's `context` is never written into the state (it stays in the process, as for any run):
give it to `resume` again. A run waiting for approval has not stored its exchange in its session
yet; it does when it ends. A rejected call reaches the model as the call's output,
`Error: the user did not approve `NAME`: REASON`, and the model goes on from there.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import ConfigError, ConfigProblem, RunError
from agent_runtime.redact import own_logger
from agent_runtime.results import RunResult, ToolCall
from agent_runtime.text import kind_of

if TYPE_CHECKING:
    from agents import Agent, RunState

__all__ = [
    "Approvals",
    "PendingRun",
    "apply_decisions",
    "read_pending",
    "rejection_message",
    "with_decisions",
]

logger = own_logger(__name__)

STATE_FORMAT = "agent-runtime.pending-run"
STATE_VERSION = 1

Approvals = Iterable[str] | bool
"""Which pending calls to approve: their call ids, or True for all of them."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PendingRun:
    """A run stopped at calls that need approval, as read back from its `pending_state`."""

    agent: str
    """The agent the run started with."""
    session: str | None
    trace_id: str
    input: list[Any]
    """The run's input: its session's items, then its own."""
    history: int
    """How many items of `input` came from its session."""
    max_turns: int
    options: dict[str, Any]
    """The run's own `instructions` and `model_settings`, when it had any."""
    calls: tuple[ToolCall, ...]
    state: dict[str, Any]
    """The SDK's `RunState.to_json()`, without the run's context."""


def pending_text(
    *,
    agent: str,
    session: str | None,
    trace_id: str,
    input: list[Any],
    history: int,
    max_turns: int,
    options: Mapping[str, Any],
    calls: tuple[ToolCall, ...],
    state: RunState[Any, Any],
) -> str:
    """The stopped run as JSON text (`RunResult.pending_state`)."""
    sdk_state = state.to_json(context_serializer=lambda _context: {})
    context = sdk_state.get("context")
    if isinstance(context, dict):
        context["context"] = None  # the caller's context stays in this process
    return json.dumps(
        {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "agent": agent,
            "session": session,
            "trace_id": trace_id,
            "input": input,
            "history": history,
            "max_turns": max_turns,
            "options": dict(options),
            "pending_approvals": [dataclasses.asdict(call) for call in calls],
            "state": sdk_state,
        },
        ensure_ascii=False,
        default=str,
    )


def read_pending(pending: RunResult | str, agents: Collection[str]) -> PendingRun:
    """The stopped run in `pending` (a result with `pending_approvals`, or its `pending_state`).

    Raises:
        RunError: `pending` is not a run waiting for approval, or names an agent that
            agents.yaml no longer declares.
    """
    if isinstance(pending, RunResult):
        if pending.pending_state is None:
            raise RunError(
                "resume() needs a run that stopped at calls needing approval; this result has "
                "no `pending_approvals` (its run ended)."
            )
        text = pending.pending_state
    elif isinstance(pending, str):
        text = pending
    else:
        raise RunError(
            f"resume() takes a RunResult or its `pending_state` text, got {kind_of(pending)}."
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(
            f"the pending state given to resume() is not JSON ({exc.msg} at character "
            f"{exc.pos}); give the text of `RunResult.pending_state` unchanged."
        ) from None
    if (
        not isinstance(document, dict)
        or document.get("format") != STATE_FORMAT
        or not isinstance(document.get("state"), dict)
    ):
        raise RunError(
            "the pending state given to resume() is not one agent-runtime wrote; give the text "
            "of `RunResult.pending_state` unchanged."
        )
    if document.get("version") != STATE_VERSION:
        raise RunError(
            f"the pending state given to resume() has version {document.get('version')!r}; this "
            f"agent-runtime reads version {STATE_VERSION}. Resume it with the version that "
            "wrote it, or start the run again."
        )
    agent = str(document.get("agent", ""))
    if agent not in agents:
        raise RunError(
            f"the pending run was started with agent `{agent}`, which agents.yaml does not "
            f"declare any more (agents: {', '.join(agents)}). Resume it with the agents.yaml "
            "it started with."
        )
    calls = tuple(ToolCall(**call) for call in document.get("pending_approvals", []))
    session = document.get("session")
    return PendingRun(
        agent=agent,
        session=session if isinstance(session, str) else None,
        trace_id=str(document.get("trace_id", "")),
        input=list(document.get("input", [])),
        history=int(document.get("history", 0)),
        max_turns=int(document.get("max_turns", 0)),
        options=dict(document.get("options", {})),
        calls=calls,
        state=document["state"],
    )


async def restore_state(
    pending: PendingRun, agent: Agent[Any], context: object
) -> RunState[Any, Any]:
    """The SDK's run state of `pending`, on the runtime's agents, with `context`.

    Raises:
        RunError: the state does not fit the agents (their tools changed, say).
    """
    from agents import RunContextWrapper, RunState

    try:
        return await RunState.from_json(
            agent, pending.state, context_override=RunContextWrapper(context=context)
        )
    except Exception as exc:
        raise RunError(
            f"the pending run of agent `{pending.agent}` cannot be restored: "
            f"{type(exc).__name__}: {exc}. Resume it with the agents.yaml it started with, or "
            "start the run again."
        ) from exc


def rejection_message(name: str, reason: str | None) -> str:
    """The output the model gets for a call a person rejected."""
    why = (reason or "").strip() or "no reason given"
    return (
        f"Error: the user did not approve `{name}`: {why}. Do not call it again for this; "
        "answer without it, or ask the user."
    )


def with_decisions(
    pending: RunResult | str, approve: Approvals, reject: Mapping[str, str | None] | None
) -> tuple[Approvals, dict[str, str | None]]:
    """`resume`'s decisions with those recorded on the result (`RunResult.approve` and
    `reject`) added."""
    rejected = dict(reject or {})
    recorded = pending.decisions if isinstance(pending, RunResult) else {}
    if not recorded:
        return approve, rejected
    approved: Approvals = approve
    if approve is not True:
        ids = [approve] if isinstance(approve, str) else list(approve or ())
        ids += [call_id for call_id, (yes, _) in recorded.items() if yes and call_id not in ids]
        approved = ids
    for call_id, (yes, reason) in recorded.items():
        if not yes:
            rejected.setdefault(call_id, reason)
    return approved, rejected


def apply_decisions(
    state: RunState[Any, Any],
    calls: tuple[ToolCall, ...],
    *,
    approve: Approvals,
    reject: Mapping[str, str | None] | None,
    call: str,
) -> None:
    """Record a person's decisions on the pending `calls` in `state`; calls decided neither
    way stay pending (the run stops at them again).

    Raises:
        ConfigError: an id that is not a pending call's, or a call both approved and rejected.
    """
    pending = {item.call_id: item for item in calls}
    problems: list[ConfigProblem] = []

    def problem(path: str, message: str) -> None:
        problems.append(
            ConfigProblem(file=f"{call}()", line=None, column=None, path=path, message=message)
        )

    rejected = dict(reject or {})
    if approve is True:
        approved = [call_id for call_id in pending if call_id not in rejected]
    elif approve is False:
        approved = []
    elif isinstance(approve, str):
        approved = [approve]
    else:
        approved = list(approve)
    known = ", ".join(f"{item.call_id} ({item.name})" for item in calls) or "none"
    for index, call_id in enumerate(approved):
        if call_id not in pending:
            problem(f"approve[{index}]", f"no pending call has id {call_id!r}; pending: {known}")
        elif call_id in rejected:
            problem(f"approve[{index}]", f"call {call_id!r} is rejected too; decide it once")
    for call_id in rejected:
        if call_id not in pending:
            problem(f"reject[{call_id!r}]", f"no pending call has this id; pending: {known}")
    if problems:
        raise ConfigError(problems)
    interruptions = {_call_id(item): item for item in state.get_interruptions()}
    for call_id in approved:
        state.approve(interruptions[call_id])
    for call_id, reason in rejected.items():
        state.reject(
            interruptions[call_id],
            rejection_message=rejection_message(pending[call_id].name, reason),
        )


def _call_id(item: Any) -> str:
    raw = item.raw_item
    found = raw.get("call_id", "") if isinstance(raw, dict) else getattr(raw, "call_id", "")
    return str(found or "")
