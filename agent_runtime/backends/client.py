"""The OpenAI client as the SDK's models see it: the official client, with vLLM's quirks handled.

The SDK's models call `client.responses.create(...)` and `client.chat.completions.create(...)`.
`RuntimeClient` passes those calls on to the official `AsyncOpenAI` client and:

- Chat: sends assistant tool-call turns with `content: ""` instead of `null`, since vLLM
  (v0.21) drops the `reasoning` of a message whose content is null;
- both: raises `EmptyResponseError` for an answer with nothing in it (an `incomplete` response
  with empty output, vLLM's empty turns of vllm#41902), so the retry layer can ask again.

It also sends those two requests without the official client's per-request transform of the
parameters (`openai._utils._transform`, recursive over the whole transcript, which made a long
agent loop cost quadratic CPU): the SDK's arguments are already plain JSON values, so the body
is serialised once with the client's own encoder and posted with the client's `post`, with
the same headers, auth, options and typed parsing of the answer. The bytes on the wire are
JSON-equal to what `create()` sends (tests compare them on the wire).

`RuntimeClient` implements exactly what the SDK's models use of a client (`base_url`,
`responses.create`, `chat.completions.create`); anything else is an `AttributeError`, not a
silent pass-through to the official client. The private parts of `openai` and the SDK it needs
come from `_compat`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent_runtime.backends import _compat

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncOpenAI

# Arguments of `create()` that are request options, not body fields.
_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})

__all__ = [
    "EmptyResponseError",
    "PlainInput",
    "RuntimeClient",
    "prepare_chat_messages",
    "request_input",
]


class EmptyResponseError(Exception):
    """The server answered, but with no output at all (worth asking again)."""


def prepare_chat_messages(messages: list[Any]) -> list[Any]:
    """Assistant turns with reasoning and `content: null` get `content: ""` (see module doc)."""
    fixed = messages
    for index, message in enumerate(messages):
        if (
            isinstance(message, dict)
            and message.get("role") == "assistant"
            and message.get("content", "") is None
            and (message.get("reasoning") or message.get("reasoning_content"))
        ):
            if fixed is messages:
                fixed = list(messages)
            fixed[index] = {**message, "content": ""}
    return fixed


class PlainInput(list[Any]):
    """Responses `input` items passed on without the SDK's copy into plain JSON values.

    The body is serialised with a strict encoder; should a value turn out not to be plain JSON
    after all (a model object, a mapping, an iterator), the SDK's own conversion is applied and
    the body serialised again, so what is sent is always what the SDK would send.
    """


def request_input(value: object) -> PlainInput | None:
    """The `input` the SDK's Responses model would send for `value`, without copying the
    transcript: for a string, or a list of dicts (the run loop's items). None otherwise.

    Items are cleaned as the SDK cleans them for the Responses API (its placeholder ids and
    other providers' `provider_data` removed, their reasoning items dropped), on copies.
    """
    if isinstance(value, str):
        return PlainInput([{"content": value, "role": "user"}])
    if type(value) is not list or not all(type(item) is dict for item in value):
        return None
    fake_id = _compat.fake_id()
    items: list[dict[str, Any]] = value
    if not any(item.get("provider_data") or item.get("id") == fake_id for item in items):
        return PlainInput(items)
    cleaned = PlainInput()
    for item in items:
        if item.get("type") == "reasoning" and item.get("provider_data"):
            continue
        cleaned.append(
            {
                key: field
                for key, field in item.items()
                if key != "provider_data" and not (key == "id" and field == fake_id)
            }
        )
    return cleaned


def _dumps(body: dict[str, Any]) -> bytes:
    """`body` as the official client serialises it, `PlainInput` strictly."""
    items = body.get("input")
    if not isinstance(items, PlainInput):
        return _compat.dumps(body)
    try:
        tail = json.dumps(items, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _compat.dumps({**body, "input": _compat.to_plain_json(list(items))})
    head = _compat.dumps({key: value for key, value in body.items() if key != "input"})
    joint = b"," if head != b"{}" else b""
    return head[:-1] + joint + b'"input":' + tail.encode() + b"}"


def _check_response(response: Any) -> Any:
    if getattr(response, "status", None) == "incomplete" and not getattr(response, "output", None):
        details = getattr(response, "incomplete_details", None)
        reason = getattr(details, "reason", None) or "unknown"
        raise EmptyResponseError(f"an incomplete response with empty output (reason: {reason})")
    return response


def _check_completion(completion: Any) -> Any:
    choices = getattr(completion, "choices", None)
    if choices is None or not isinstance(choices, list):
        return completion  # a stream: checked as it is consumed
    message = choices[0].message if choices else None
    if message is None or not (
        message.content
        or message.tool_calls
        or getattr(message, "reasoning", None)
        or getattr(message, "reasoning_content", None)
    ):
        raise EmptyResponseError("an answer with no content, reasoning or tool calls")
    return completion


def _body(kwargs: Mapping[str, Any]) -> bytes:
    """The JSON body `create(**kwargs)` would send."""
    from openai import NotGiven, Omit

    body = {
        key: value
        for key, value in kwargs.items()
        if key not in _OPTIONS and not isinstance(value, Omit | NotGiven)
    }
    extra_body = kwargs.get("extra_body")
    if extra_body:
        body.update(extra_body)  # as the client merges `extra_body` into the JSON
    return _dumps(body)


async def _send(
    client: AsyncOpenAI, path: str, kwargs: dict[str, Any], answer: Any, event: Any
) -> Any:
    """POST `create(**kwargs)`'s body to `path` with the official client; the answer is parsed
    as `answer`, or streamed as `event`s."""
    from openai import AsyncStream

    return await client.post(
        path,
        content=_body(kwargs),
        options=_compat.request_options(kwargs),
        cast_to=answer,
        stream=bool(kwargs.get("stream")),
        stream_cls=AsyncStream[event],
    )


class _Responses:
    # The SDK streams through `with_streaming_response` when it exists; without it, it calls
    # `create(stream=True)`, which comes through the fast path below.
    with_streaming_response = None
    __slots__ = ("_client",)

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    async def create(self, **kwargs: Any) -> Any:
        from openai.types.responses import Response, ResponseStreamEvent

        response = await _send(self._client, "/responses", kwargs, Response, ResponseStreamEvent)
        return response if kwargs.get("stream") else _check_response(response)


class _Completions:
    __slots__ = ("_client",)

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    async def create(self, **kwargs: Any) -> Any:
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        messages = kwargs.get("messages")
        if isinstance(messages, list):
            kwargs["messages"] = prepare_chat_messages(messages)
        completion = await _send(
            self._client, "/chat/completions", kwargs, ChatCompletion, ChatCompletionChunk
        )
        return completion if kwargs.get("stream") else _check_completion(completion)


class _Chat:
    __slots__ = ("completions",)

    def __init__(self, client: AsyncOpenAI) -> None:
        self.completions = _Completions(client)


class RuntimeClient:
    """What the SDK's models use of an `AsyncOpenAI` client (see the module docstring)."""

    __slots__ = ("chat", "client", "responses")

    def __init__(self, client: AsyncOpenAI) -> None:
        self.client = client
        self.responses = _Responses(client)
        self.chat = _Chat(client)

    @property
    def base_url(self) -> httpx2.URL:
        """The official client's base URL (the SDK reads it to tell OpenAI's API from others)."""
        return self.client.base_url
