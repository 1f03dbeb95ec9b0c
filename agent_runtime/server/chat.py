"""`POST /v1/chat/completions`: every agent as a Chat Completions model, for Chat-only clients.

`model` names the agent. `messages` become the run: system and developer messages are added to
the agent's instructions (`instructions=`), the user and assistant messages before the last are
the history, and the last message, a user message, is the prompt. Nothing is stored: a Chat
client resends the conversation each time (use `/v1/responses` for stored conversations).

The answer is what the agents said and thought, as vLLM shows gpt-oss's output:
`choices[0].message.content` is the text of the run's messages (several, as when an agent says
something before calling a tool or hands off, joined by a blank line) and
`choices[0].message.reasoning` its reasoning; streamed (`stream: true`) as
`chat.completion.chunk`s with `delta.reasoning` and `delta.content`, then `finish_reason:
"stop"`, then a usage chunk when `stream_options.include_usage` is set. `usage` sums all model
calls of the run.

The agent's own tool calls are not shown: Chat has only `tool_calls`, which a client would try to
execute. Use `/v1/responses` to see them (as `mcp_call` items). Client tools (`tools`) and `tool`
messages are refused (400): the agent runs its own tools; `/v1/responses` takes client function
tools. `temperature`, `top_p`, `max_tokens` / `max_completion_tokens` and `reasoning_effort` apply
to the run's model calls; other Chat options are ignored.

Errors before the answer starts are HTTP errors in OpenAI's shape (`agent_runtime.server.errors`);
the stream waits for the run's first output before it starts, so that a model server that
cannot be reached gets 502, not a broken stream. An error after that ends the stream with one
`data: {"error": {...}}` event, which OpenAI's clients raise. A client that disconnects cancels
its run.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.redact import own_logger
from agent_runtime.results import (
    Message,
    Reasoning,
    ReasoningDelta,
    RunEvent,
    RunFinished,
    RunResult,
    TextDelta,
    Usage,
)
from agent_runtime.server.chat_request import (
    SEPARATOR,
    ChatRequest,
    model_settings,
    parse_chat_request,
    refuse_client_tools,
    run_input,
)
from agent_runtime.server.disconnect import unless_gone
from agent_runtime.server.errors import refuse_approvals, run_error, unknown_agent
from agent_runtime.server.gate import tracked_run
from agent_runtime.server.sse import EventStreamResponse, json_text
from agent_runtime.server.state import ServerState, server_state

__all__ = ["ChatRequest", "routes"]

logger = own_logger(__name__)


async def chat_completions(request: Request) -> Response:
    """Run the agent named by `model` on the conversation in `messages`."""
    state = server_state(request)
    body = await parse_chat_request(request)
    if body.model not in state.runtime.agent_names:
        raise unknown_agent(body.model, state.runtime.agent_names)
    refuse_client_tools(body)
    instructions, items = run_input(body.messages)
    settings = model_settings(body)
    if body.stream:
        return await _stream(request, state, body, instructions, items, settings)
    async with tracked_run(state, request, body.model) as tally:
        try:
            result = await unless_gone(
                state.runtime.run(
                    body.model, items, instructions=instructions, model_settings=settings
                ),
                request.receive,
            )
            if result is not None:
                refuse_approvals(result)
        except AgentRuntimeError as exc:
            raise run_error(exc) from exc
        if result is None:
            tally.outcome = "cancelled"
    if result is None:  # the client left; nobody reads this
        return Response(status_code=499)
    return JSONResponse(_completion(body.model, result))


# -- answers ------------------------------------------------------------------------------------


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _completion(agent: str, result: RunResult) -> dict[str, Any]:
    content = SEPARATOR.join(item.text for item in result.items if isinstance(item, Message))
    reasoning = SEPARATOR.join(item.text for item in result.items if isinstance(item, Reasoning))
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning"] = reasoning
    return {
        "id": _new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": agent,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(result.usage),
    }


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


async def _stream(
    request: Request,
    state: ServerState,
    body: ChatRequest,
    instructions: str | None,
    items: list[dict[str, str]],
    settings: dict[str, Any] | None,
) -> Response:
    chunks = _chunks(request, state, body, instructions, items, settings)
    try:
        first = await anext(chunks)  # the run's first output, or its error as an HTTP error
    except StopAsyncIteration:  # pragma: no cover - a run always ends with RunFinished
        first = b""
    return EventStreamResponse(_after(first, chunks))


async def _chunks(
    request: Request,
    state: ServerState,
    body: ChatRequest,
    instructions: str | None,
    items: list[dict[str, str]],
    settings: dict[str, Any] | None,
) -> AsyncGenerator[bytes, None]:
    """SSE lines of the run; the first comes once the run has produced something."""
    agent = body.model
    chunk_id = _new_id()
    created = int(time.time())
    with_usage = body.stream_options is not None and body.stream_options.include_usage

    def chunk(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
        document: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": agent,
            "choices": [
                {"index": 0, "delta": dict(delta), "finish_reason": finish, "logprobs": None}
            ],
        }
        if with_usage:
            document["usage"] = None
        return _sse(document)

    started = False
    ended = {"text": False, "reasoning": False}
    said = {"text": False, "reasoning": False}
    async with tracked_run(state, request, agent):
        stream = cast(
            AsyncGenerator[RunEvent, None],
            state.runtime.stream(agent, items, instructions=instructions, model_settings=settings),
        )
        async with contextlib.aclosing(stream) as events:
            try:
                async for event in events:
                    out = b""
                    if not started and _shows(event):
                        started = True
                        out += chunk({"role": "assistant", "content": ""})
                    if isinstance(event, TextDelta | ReasoningDelta):
                        field = "text" if isinstance(event, TextDelta) else "reasoning"
                        text = event.text
                        if ended[field] and said[field]:
                            text = SEPARATOR + text
                        ended[field] = False
                        said[field] = said[field] or bool(text)
                        key = "content" if field == "text" else "reasoning"
                        out += chunk({key: text})
                    elif isinstance(event, Message):
                        ended["text"] = True
                    elif isinstance(event, Reasoning):
                        ended["reasoning"] = True
                    elif isinstance(event, RunFinished):
                        refuse_approvals(event.result)
                        out += chunk({}, "stop")
                        if with_usage:
                            out += _sse(
                                {
                                    "id": chunk_id,
                                    "object": "chat.completion.chunk",
                                    "created": created,
                                    "model": agent,
                                    "choices": [],
                                    "usage": _usage(event.result.usage),
                                }
                            )
                        out += b"data: [DONE]\n\n"
                    if out:
                        yield out
            except AgentRuntimeError as exc:
                error = run_error(exc)
                if not started:
                    raise error from exc
                logger.warning("a streamed chat run of `%s` failed: %s", agent, error.message)
                yield _sse(error.body())


def _shows(event: RunEvent) -> bool:
    """Whether an event is output of the run (the stream starts with the first one)."""
    return isinstance(event, TextDelta | ReasoningDelta | Message | Reasoning | RunFinished)


def _sse(document: Mapping[str, Any]) -> bytes:
    return b"data: " + json_text(document).encode() + b"\n\n"


async def _after(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """`first`, then the chunks of `rest` (closed with this)."""
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


def routes() -> list[Route]:
    """`POST /v1/chat/completions`."""
    return [Route("/v1/chat/completions", chat_completions, methods=["POST"])]
