"""The Responses API: `POST /v1/responses`, `GET`/`DELETE /v1/responses/{id}`,
`POST /v1/responses/{id}/cancel`, with `model` = an agent's name.

A response runs the agent once (`Runtime.run` / `Runtime.stream`). Its conversation lives in a
runtime session: `conversation: "ID"` → session `conv:ID`; `previous_response_id` → the
session of that response when it is the newest response of that session, else (an older one:
a branch) a new session `resp:<id>` that starts with the items the session had when that
response completed; else, when `store` is true (the default), a new session `resp:<id>`; with
`store: false` the run has no memory. The output items and the stream events are made in
`items`; the kept responses are in `store`.

Function `tools` sent by the client are offered to the agent (the one named, not those it hands
off to) next to its own (`Runtime.run(..., tools=...)`). When the model calls one, the run
stops after that turn and the response ends, `completed`, with the calls as `function_call`
items; the client runs them and continues with `function_call_output` items, either with
`previous_response_id` (the session has the calls) or by sending the whole conversation
again, as the Agents SDK does (then the run's input is that list).

A client that disconnects cancels its run, streamed or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import own_logger, redact_text
from agent_runtime.results import RunEvent, RunFinished, RunResult
from agent_runtime.server.access_log import note_agent
from agent_runtime.server.disconnect import unless_gone
from agent_runtime.server.durable import durable_response
from agent_runtime.server.errors import (
    APIError,
    invalid_json,
    refuse_approvals,
    run_error,
    unknown_agent,
)
from agent_runtime.server.guard import RunTally, key_id, tracked_run
from agent_runtime.server.items import (
    EventBuilder,
    complete,
    new_id,
    output_items,
    response_error,
    runtime_input,
)
from agent_runtime.server.responses_request import CreateResponse, parse_create
from agent_runtime.server.sse import EventStreamResponse, json_text
from agent_runtime.server.state import ServerState, server_state
from agent_runtime.server.store import ResponseStore, StoredResponse
from agent_runtime.tools import ClientTool

__all__ = ["event_stream", "routes"]

logger = own_logger(__name__)

Event = dict[str, Any]


def routes() -> list[Route]:
    """The Responses API routes."""
    return [
        Route("/v1/responses", create, methods=["POST"]),
        Route("/v1/responses/{response_id}", retrieve, methods=["GET"]),
        Route("/v1/responses/{response_id}", delete, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/cancel", cancel, methods=["POST"]),
    ]


def store_of(state: ServerState) -> ResponseStore:
    """The app's response store (made on first use when the app did not make one)."""
    if state.store is None:
        state.store = ResponseStore(state.options.store_limit)
    assert isinstance(state.store, ResponseStore)
    return state.store


# -- POST /v1/responses ------------------------------------------------------------------------


async def create(request: Request) -> Response:
    state = server_state(request)
    try:
        body = await request.json()
    except ValueError as exc:
        raise invalid_json(exc) from None
    params = parse_create(body)
    agent = _check_agent(state, params.model)
    note_agent(request, agent)
    tools = params.client_tools()
    if tools:
        try:
            state.runtime.check_tools(agent, tools)
        except AgentRuntimeError as exc:
            raise run_error(exc) from None
    store = store_of(state)
    response_id = new_id("resp")
    kept = params.store or params.background
    session, history = await _session(state, store, params, response_id, kept=kept)
    response = _skeleton(response_id, agent, params)
    entry = StoredResponse(
        id=response_id, session=session, response=response, background=params.background
    )
    items = params.input if isinstance(params.input, str) else runtime_input(params.input)
    if history:
        new = [{"role": "user", "content": items}] if isinstance(items, str) else items
        items = [*history, *new]
    run = _Run(
        state=state,
        agent=agent,
        input=items,
        session=session,
        instructions=params.instructions,
        model_settings=params.model_settings(),
        tools=tools,
        response=response,
        entry=entry if kept else None,
    )
    key = key_id(request)
    if params.background:
        if state.gate is not None:
            state.gate.check(key)  # refused now rather than in the background
        if durable_runs(state):
            await _submit(run, tools)
            entry.durable = run.durable = True
        await _keep(state, entry)
        entry.task = asyncio.create_task(_background(run, entry, key), name=response_id)
        return JSONResponse(copy.deepcopy(response))
    held = contextlib.AsyncExitStack()
    run.tally = await held.enter_async_context(tracked_run(state, request, agent))
    try:
        if params.store:
            await _keep(state, entry)
        if params.stream:  # the stream holds the run's slot until it ends
            return event_stream(_stream(run), on_close=held.aclose)
    except BaseException:
        await held.aclose()
        raise
    async with held:
        return await _run_once(run, request.receive)


def _check_agent(state: ServerState, model: str) -> str:
    names = state.runtime.agent_names
    if model not in names:
        raise unknown_agent(model, names)
    return model


async def _session(
    state: ServerState,
    store: ResponseStore,
    params: CreateResponse,
    response_id: str,
    *,
    kept: bool,
) -> tuple[str | None, list[Any]]:
    """The session of a new response, and the items to start it with (a branch)."""
    if params.previous_response_id is not None and params.conversation is not None:
        raise APIError(
            400,
            "`previous_response_id` and `conversation` cannot be used together: continue "
            "either a response or a conversation.",
            param="previous_response_id",
        )
    if params.previous_response_id is not None:
        previous = store.get(params.previous_response_id)
        if previous is None:
            raise _not_found(params.previous_response_id, "previous_response_id")
        session = previous.session or f"resp:{previous.id}"
        if store.is_head(previous, session):
            store.claim(session, response_id, kept=kept)
            return session, []
        return await _branch(state, store, previous, session, response_id, kept=kept)
    if params.conversation is not None:
        session = f"conv:{params.conversation_id()}"
        store.claim(session, response_id, kept=kept)
        return session, []
    if not params.store:
        return None, []
    session = f"resp:{response_id}"
    store.claim(session, response_id, kept=kept)
    return session, []


async def _branch(
    state: ServerState,
    store: ResponseStore,
    previous: StoredResponse,
    session: str,
    response_id: str,
    *,
    kept: bool,
) -> tuple[str, list[Any]]:
    """A new session for a response continuing `previous`, which newer responses continue
    too: it starts with the items `session` had when `previous` completed."""
    count = previous.session_items
    history = await state.runtime.session_items(session) if count is not None else []
    if count is None or len(history) < count:
        raise APIError(
            400,
            f"response '{previous.id}' is not the newest of its conversation, and it cannot be "
            f"branched from: it has not completed (status `{previous.status}`). Continue the "
            "newest response instead.",
            param="previous_response_id",
        )
    branch = f"resp:{response_id}"
    store.claim(branch, response_id, kept=kept)
    return branch, history[:count]


def _skeleton(response_id: str, agent: str, params: CreateResponse) -> dict[str, Any]:
    """The Response object before its run: what the request asked for, no output yet."""
    conversation = params.conversation_id()
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "queued" if params.background else "in_progress",
        "background": params.background,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": params.instructions,
        "max_output_tokens": params.max_output_tokens,
        "metadata": dict(params.metadata or {}),
        "model": agent,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": params.previous_response_id,
        "conversation": {"id": conversation} if conversation is not None else None,
        "reasoning": {"effort": params.reasoning_effort(), "summary": None},
        "store": params.store,
        "temperature": params.temperature,
        "text": {"format": {"type": "text"}},
        "tool_choice": params.tool_choice or "auto",
        "tools": [tool.echoed() for tool in params.tools or ()],
        "top_p": params.top_p,
        "truncation": "disabled",
        "usage": None,
        "user": None,
    }


async def _keep(state: ServerState, entry: StoredResponse) -> None:
    """Keep `entry`, clearing the sessions of the responses dropped for it."""
    for session in store_of(state).add(entry):
        await _clear(state, session)


async def _clear(state: ServerState, session: str) -> None:
    try:
        await state.runtime.clear_session(session)
    except AgentRuntimeError as exc:  # the response is gone either way
        logger.warning("could not clear session %r: %s", session, exc)


# -- running -----------------------------------------------------------------------------------


class _Run:
    """One response's run: what to run, and the Response object it fills in."""

    def __init__(
        self,
        *,
        state: ServerState,
        agent: str,
        input: str | list[dict[str, Any]],
        session: str | None,
        instructions: str | None,
        model_settings: dict[str, Any],
        tools: list[ClientTool],
        response: dict[str, Any],
        entry: StoredResponse | None,
    ) -> None:
        self.state = state
        self.agent = agent
        self.input = input
        self.options: dict[str, Any] = {
            "session": session,
            "instructions": instructions,
            "model_settings": model_settings or None,
            "tools": tools,
        }
        self.response = response
        self.entry = entry
        self.tally: RunTally | None = None
        self.durable = False  # queued for the workers (`_submit`): followed, not run here

    @property
    def id(self) -> str:
        return str(self.response["id"])

    async def run(self) -> RunResult:
        return refuse_approvals(
            await self.state.runtime.run(self.agent, self.input, **self.options)
        )

    def events(self) -> AsyncGenerator[RunEvent, None]:
        if self.durable:
            return cast(AsyncGenerator[RunEvent, None], self.state.runtime.follow(self.id))
        stream = self.state.runtime.stream(self.agent, self.input, **self.options)
        return cast(AsyncGenerator[RunEvent, None], stream)  # an async generator, typed loosely

    def completed(self, result: RunResult) -> None:
        """Note where the run left its session (for responses that branch from this one)."""
        if self.entry is not None:
            self.entry.session_items = result.session_items

    def end(self) -> None:
        """Tell the metrics how the run ended (the response's status)."""
        if self.tally is not None:
            status = self.response["status"]
            ended = status in ("completed", "incomplete", "cancelled")
            self.tally.outcome = status if ended else "failed"


async def _run_once(run: _Run, receive: Receive) -> Response:
    """The run, answered as one Response object; a client that leaves first cancels it."""
    try:
        result = await unless_gone(run.run(), receive)
    except asyncio.CancelledError:
        run.response["status"] = "cancelled"
        run.end()
        raise
    except Exception as exc:
        response_error(run.response, exc)
        run.end()
        if run.response["status"] == "incomplete":
            return JSONResponse(run.response)
        if isinstance(exc, AgentRuntimeError):
            raise run_error(exc) from None
        raise
    if result is None:  # the client left; nobody reads this
        run.response["status"] = "cancelled"
        run.end()
        return Response(status_code=499)
    run.response["output"] = output_items(result.items, result.pending_calls)
    complete(run.response, result)
    run.completed(result)
    run.end()
    return JSONResponse(run.response)


async def _stream(run: _Run) -> AsyncIterator[list[Event]]:
    """A run as Responses stream events, in batches (those one run event makes are written
    together); leaving it (the client gone) cancels the run."""
    builder = EventBuilder(run.response)
    try:
        yield list(builder.start())
        try:
            async with contextlib.aclosing(run.events()) as events:
                async for run_event in events:
                    if isinstance(run_event, RunFinished):
                        run.completed(refuse_approvals(run_event.result))
                    batch = list(builder.feed(run_event))
                    if batch:
                        yield batch
        except Exception as exc:
            _log_unexpected(exc, run)
            yield list(builder.fail(exc))
    except (asyncio.CancelledError, GeneratorExit):
        builder.cancelled()
        raise
    finally:
        run.end()


def durable_runs(state: ServerState) -> bool:
    """Whether background responses go to the durable queue (`durability:` in agents.yaml)."""
    return state.runtime.config.spec.durability is not None


async def _submit(run: _Run, tools: list[ClientTool]) -> None:
    """Queue a background response's run for the workers (`agent-runtime worker`), with the
    response id as the run id: it survives this server, and any server of the same database
    can answer for it (`GET /v1/responses/{id}`)."""
    if tools:
        raise APIError(
            400,
            "function tools sent with the request (`tools`) cannot be used with `background: "
            "true` here: background responses run on the durable queue, where the run cannot "
            "stop for the client's calls. Send the request without `background`.",
            param="tools",
        )
    options = run.options
    try:
        await run.state.runtime.submit(
            run.agent,
            run.input,
            session=options["session"],
            run_id=run.id,
            instructions=options["instructions"],
            model_settings=options["model_settings"],
        )
    except AgentRuntimeError as exc:
        raise _queue_error(exc) from None


def _queue_error(exc: AgentRuntimeError) -> APIError:
    from agent_runtime.config.durability import DurabilityError

    if isinstance(exc, DurabilityError):  # the database: the server cannot queue now
        return APIError(503, redact_text(str(exc)), type="server_error", code="queue_unavailable")
    return run_error(exc)


async def _background(run: _Run, entry: StoredResponse, key: str) -> None:
    """A background response's run: the events kept for readers, the response updated."""
    builder = EventBuilder(run.response)
    try:
        async with tracked_run(run.state, key, run.agent) as run.tally:
            try:
                entry.publish(builder.start())
                async with contextlib.aclosing(run.events()) as events:
                    async for run_event in events:
                        if isinstance(run_event, RunFinished):
                            run.completed(refuse_approvals(run_event.result))
                        entry.publish(builder.feed(run_event))
            except asyncio.CancelledError:
                builder.cancelled()
                raise
            except Exception as exc:
                _log_unexpected(exc, run)
                entry.publish(builder.fail(exc))
            finally:
                run.end()
    except APIError as exc:  # refused at start (draining, or the key's runs at the limit)
        run.response["status"] = "failed"
        run.response["error"] = {"code": exc.code or "server_error", "message": exc.message}
    finally:
        entry.wake()


def _log_unexpected(exc: Exception, run: _Run) -> None:
    if not isinstance(exc, AgentRuntimeError):
        logger.error("the run of agent %r failed", run.agent, exc_info=exc)


# -- GET / DELETE / cancel ---------------------------------------------------------------------


def _not_found(response_id: str, param: str | None = None) -> APIError:
    return APIError(
        404,
        f"no response with id '{response_id}'. Responses are kept in this server's memory "
        "(the newest `store_limit`), only when created with `store: true`, and not across "
        "restarts.",
        param=param,
        code="response_not_found",
    )


def _entry(request: Request) -> tuple[ServerState, StoredResponse]:
    state = server_state(request)
    response_id = request.path_params["response_id"]
    entry = store_of(state).get(response_id)
    if entry is None:
        raise _not_found(response_id)
    note_agent(request, str(entry.response.get("model", "")))
    return state, entry


async def retrieve(request: Request) -> Response:
    state = server_state(request)
    response_id = request.path_params["response_id"]
    if store_of(state).get(response_id) is None and durable_runs(state):
        found = await durable_response(state, response_id)
        if found is not None:
            note_agent(request, str(found.get("model", "")))
            if request.query_params.get("stream", "").lower() in ("true", "1"):
                raise APIError(
                    400,
                    f"response '{response_id}' was not created by this server (or it restarted "
                    "since): its events cannot be streamed again here. Read it without "
                    "`stream`.",
                    param="stream",
                )
            return JSONResponse(found)
    _, entry = _entry(request)
    if request.query_params.get("stream", "").lower() in ("true", "1"):
        if not entry.background:
            raise APIError(
                400,
                "only background responses can be streamed again: create it with "
                "`background: true` and `stream: true`, or read it without `stream`.",
                param="stream",
            )
        after = request.query_params.get("starting_after", "-1")
        try:
            start = int(after) + 1
        except ValueError:
            raise APIError(
                400, f"`starting_after` must be an integer, got {after!r}.", param="starting_after"
            ) from None
        return event_stream(_replay(entry, start))
    return JSONResponse(entry.response)


async def _replay(entry: StoredResponse, start: int) -> AsyncIterator[list[Event]]:
    """A background response's events from `start` on, then those still to come (those kept
    so far in one batch)."""
    index = max(start, 0)
    while True:
        if index < len(entry.events):
            batch = entry.events[index:]
            index += len(batch)
            yield batch
        if entry.finished or not entry.running:
            return
        await entry.wait_after(index)


async def delete(request: Request) -> Response:
    state, entry = _entry(request)
    if entry.running:
        await _cancel(entry, state)
    _, orphans = store_of(state).remove(entry.id)
    for session in orphans:
        await _clear(state, session)
    return JSONResponse({"id": entry.id, "object": "response.deleted", "deleted": True})


async def cancel(request: Request) -> Response:
    state, entry = _entry(request)
    if not entry.background:
        raise APIError(
            400,
            f"response '{entry.id}' was not created with `background: true`: only background "
            "responses can be cancelled (close the stream to stop a streamed one).",
            param="response_id",
        )
    if entry.running:
        await _cancel(entry, state)
    return JSONResponse(entry.response)


async def _cancel(entry: StoredResponse, state: ServerState | None) -> None:
    """Stop following or running `entry`'s run; with `state`, a durable run is cancelled
    too (without: this server stops, and the workers finish it)."""
    assert entry.task is not None
    if entry.durable and state is not None:
        with contextlib.suppress(AgentRuntimeError):  # finished meanwhile, or the database
            await state.runtime.cancel(entry.id)
    entry.task.cancel()
    await asyncio.wait({entry.task})
    if not entry.finished:  # cancelled before its run began
        entry.response["status"] = "cancelled"
    entry.wake()


async def cancel_all(state: ServerState) -> None:
    """Cancel the background runs still going (the app is shutting down)."""
    if state.store is None:
        return
    entries = store_of(state).running()
    for entry in entries:
        await _cancel(entry, None)


# -- server-sent events ------------------------------------------------------------------------


def event_stream(
    events: AsyncIterator[list[Event]],
    *,
    on_close: Callable[[], Awaitable[object]] | None = None,
) -> EventStreamResponse:
    """Batches of events as server-sent events (`event: TYPE` / `data: JSON`), each batch in
    one write, ended by the end of the stream (no `[DONE]`, as OpenAI does). A client that
    disconnects closes `events` at once (a run behind it is cancelled); `on_close` runs in
    every case."""
    return EventStreamResponse(_encoded(events), on_close=on_close)


async def _encoded(events: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
    try:
        async for batch in events:
            yield "".join(
                f"event: {event['type']}\ndata: {json_text(event)}\n\n" for event in batch
            ).encode()
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
