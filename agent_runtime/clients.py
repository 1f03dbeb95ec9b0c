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
is serialised once with the client's own encoder (`openapi_dumps`) and posted through the
client's own `_post`, with the same headers, auth, options and typed parsing of the answer.
The bytes on the wire are JSON-equal to what `create()` sends (tests compare them).

Everything else (base_url, with_options, ...) is the official client's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from agents.models.fake_id import FAKE_RESPONSES_ID

    items: list[dict[str, Any]] = value
    if not any(item.get("provider_data") or item.get("id") == FAKE_RESPONSES_ID for item in items):
        return PlainInput(items)
    cleaned = PlainInput()
    for item in items:
        if item.get("type") == "reasoning" and item.get("provider_data"):
            continue
        cleaned.append(
            {
                key: field
                for key, field in item.items()
                if key != "provider_data" and not (key == "id" and field == FAKE_RESPONSES_ID)
            }
        )
    return cleaned


def _dumps(body: dict[str, Any]) -> bytes:
    """`body` as the official client serialises it (`openapi_dumps`), `PlainInput` strictly."""
    from openai._utils._json import openapi_dumps

    items = body.get("input")
    if not isinstance(items, PlainInput):
        return openapi_dumps(body)
    try:
        tail = json.dumps(items, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        from agents.util._json import _to_dump_compatible

        return openapi_dumps({**body, "input": _to_dump_compatible(list(items))})
    head = openapi_dumps({key: value for key, value in body.items() if key != "input"})
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


def _body_and_options(kwargs: dict[str, Any]) -> tuple[bytes, Any]:
    """The JSON body `create(**kwargs)` would send, and its request options."""
    from openai import NotGiven, Omit, not_given
    from openai._base_client import make_request_options

    body = {
        key: value
        for key, value in kwargs.items()
        if key not in _OPTIONS and not isinstance(value, Omit | NotGiven)
    }
    extra_body = kwargs.get("extra_body")
    if extra_body:
        body.update(extra_body)  # as the client merges `extra_body` into the JSON
    options = make_request_options(
        extra_headers=kwargs.get("extra_headers"),
        extra_query=kwargs.get("extra_query"),
        timeout=kwargs.get("timeout", not_given),
        security={"bearer_auth": True},
    )
    return _dumps(body), options


async def _send(resource: Any, path: str, kwargs: dict[str, Any], answer: Any, event: Any) -> Any:
    """POST `create(**kwargs)`'s body to `path` through the official client's `_post`; the
    answer is parsed as `answer`, or streamed as `event`s."""
    from openai import AsyncStream

    content, options = _body_and_options(kwargs)
    return await resource._post(
        path,
        content=content,
        options=options,
        cast_to=answer,
        stream=bool(kwargs.get("stream")),
        stream_cls=AsyncStream[event],
    )


class _Responses:
    # The SDK streams through `with_streaming_response` when it exists; without it, it calls
    # `create(stream=True)`, which comes through the fast path below.
    with_streaming_response = None

    def __init__(self, responses: Any) -> None:
        self._responses = responses

    async def create(self, **kwargs: Any) -> Any:
        from openai.types.responses import Response, ResponseStreamEvent

        response = await _send(self._responses, "/responses", kwargs, Response, ResponseStreamEvent)
        return response if kwargs.get("stream") else _check_response(response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._responses, name)


class _Completions:
    def __init__(self, completions: Any) -> None:
        self._completions = completions

    async def create(self, **kwargs: Any) -> Any:
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        messages = kwargs.get("messages")
        if isinstance(messages, list):
            kwargs["messages"] = prepare_chat_messages(messages)
        completion = await _send(
            self._completions, "/chat/completions", kwargs, ChatCompletion, ChatCompletionChunk
        )
        return completion if kwargs.get("stream") else _check_completion(completion)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._completions, name)


class _Chat:
    def __init__(self, chat: Any) -> None:
        self._chat = chat
        self.completions = _Completions(chat.completions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)


class RuntimeClient:
    """Duck-types `AsyncOpenAI` for the SDK's models (see the module docstring)."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client
        self.responses = _Responses(client.responses)
        self.chat = _Chat(client.chat)

    def with_options(self, **options: Any) -> RuntimeClient:
        return RuntimeClient(self._client.with_options(**options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
