"""The OpenAI client as the SDK's models see it: the official client, with vLLM's quirks handled.

The SDK's models call `client.responses.create(...)` and `client.chat.completions.create(...)`.
`RuntimeClient` passes those calls on to the official `AsyncOpenAI` client and:

- Chat: sends assistant tool-call turns with `content: ""` instead of `null`, since vLLM
  (v0.21) drops the `reasoning` of a message whose content is null;
- both: raises `EmptyResponseError` for an answer with nothing in it (an `incomplete` response
  with empty output, vLLM's empty turns of vllm#41902), so the retry layer can ask again;
- both: an answer cut at the output token limit (Responses `status: incomplete`, vLLM 0.33's
  `response.incomplete` event; Chat `finish_reason: length`) is asked again when the model had
  not said anything yet (`CutAnswerError`), and ends the run with a `RunLimitError` naming the
  limit when it had (a half-written answer or tool call is never passed on as complete);
- both: a request whose API key or a header value HTTP cannot carry (a `\r` from a CRLF
  `.env` file) is not sent: `checks.RequestHeaderError` names the header, never the value;
- both, not streamed: an HTTP 200 whose body is not an answer (HTML, empty, invalid JSON, an
  error envelope) is a `checks.InvalidAnswerError` saying what came back (the retry layer asks
  again);
- both: text that is not valid Unicode (lone surrogates) is sent with U+FFFD in its place.

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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from agent_runtime.backends import _compat
from agent_runtime.backends.checks import (
    InvalidAnswerError,
    RequestHeaderError,
    describe_answer,
    header_problem,
    valid_text,
)
from agent_runtime.errors import RunLimitError

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncOpenAI

# Arguments of `create()` that are request options, not body fields.
_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})

__all__ = [
    "CutAnswerError",
    "EmptyResponseError",
    "PlainInput",
    "RuntimeClient",
    "check_cut_answer",
    "prepare_chat_messages",
    "request_input",
    "says_something",
]

_LIMIT_FIX = (
    "raise `model_settings.max_tokens` of the agent (or `defaults.model_settings`) in "
    "agents.yaml, or lower its `reasoning_effort`"
)


class EmptyResponseError(Exception):
    """The server answered, but with no output at all (worth asking again)."""


class CutAnswerError(EmptyResponseError):
    """The answer was cut at the output token limit before the model said anything (it was
    still reasoning): worth asking again; `limit_error()` is the error once no attempt is left."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        super().__init__(
            f"the answer was cut at the output token limit ({_limit(limit)}) while the model "
            "was still reasoning"
        )

    def limit_error(self, attempts: int) -> RunLimitError:
        """The error once no attempt is left."""
        tries = f"{attempts} times" if attempts != 1 else "once"
        return RunLimitError(
            f"the model used all of its output tokens ({_limit(self.limit)}) without answering, "
            f"{tries}: {_LIMIT_FIX}."
        )


def _limit(limit: int | None) -> str:
    return "max_output_tokens" if limit is None else f"max_output_tokens={limit}"


def says_something(item: Any) -> bool:
    """Whether an output item is more than reasoning: a message with text, or a tool call."""
    kind = getattr(item, "type", None)
    if kind == "reasoning":
        return False
    if kind == "message":
        # A cut inside a message header leaves that header's raw text as a message (vLLM 0.33).
        return any(
            (getattr(part, "text", None) and not str(part.text).startswith("<|"))
            or getattr(part, "refusal", None)
            for part in getattr(item, "content", None) or ()
        )
    return True


def check_cut_answer(output: Any, limit: int | None) -> None:
    """For an answer cut at the output token limit: `CutAnswerError` when the model had said
    nothing yet, else a `RunLimitError` (what it said is cut off: no use as it is)."""
    said = [item for item in output or () if says_something(item)]
    if not said:
        raise CutAnswerError(limit)
    what = "a tool call" if getattr(said[-1], "type", None) == "function_call" else "its answer"
    raise RunLimitError(
        f"the model's answer was cut at the output token limit ({_limit(limit)}) in the middle "
        f"of {what}: {_LIMIT_FIX}."
    )


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
    """`body` as the official client serialises it (`PlainInput` strictly), with text that is
    not valid Unicode (lone surrogates) made valid (see `checks.valid_text`) instead of failing."""
    try:
        return _dumps_once(body)
    except UnicodeEncodeError:
        return _dumps_once(valid_text(body))


def _dumps_once(body: dict[str, Any]) -> bytes:
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


def check_response(response: Any) -> Any:
    """A Responses answer as it is, unless it is `incomplete` (see the module docstring)."""
    if getattr(response, "status", None) != "incomplete":
        return response
    details = getattr(response, "incomplete_details", None)
    reason = getattr(details, "reason", None)
    if not getattr(response, "output", None):
        raise EmptyResponseError(
            f"an incomplete response with empty output (reason: {reason or 'unknown'})"
        )
    if reason in (None, "max_output_tokens"):
        check_cut_answer(response.output, getattr(response, "max_output_tokens", None))
    return response  # incomplete for another reason: the SDK says which


def _chat_limit(kwargs: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = kwargs.get(key)
        if isinstance(value, int):
            return value
    return None


def _check_completion(completion: Any, limit: int | None) -> Any:
    choices = getattr(completion, "choices", None)
    if choices is None or not isinstance(choices, list):
        return completion  # a stream: checked as it is consumed
    choice = choices[0] if choices else None
    message = choice.message if choice is not None else None
    if choice is not None and message is not None and choice.finish_reason == "length":
        said = [_ChatSaid("function_call")] if message.tool_calls else []
        if not said and message.content:
            said = [_ChatSaid("text")]
        check_cut_answer(said, limit)
    if message is None or not (
        message.content
        or message.tool_calls
        or getattr(message, "reasoning", None)
        or getattr(message, "reasoning_content", None)
    ):
        raise EmptyResponseError("an answer with no content, reasoning or tool calls")
    return completion


class _ChatSaid:
    """What a chat answer said so far, as an output item for `check_cut_answer`."""

    __slots__ = ("type",)

    def __init__(self, kind: str) -> None:
        self.type = kind


class _CheckedChatStream:
    """A chat completion stream that raises as `check_cut_answer` says when it ends at the
    output token limit (the SDK would pass a half-written answer on as the final one)."""

    __slots__ = ("_limit", "_said", "_stream")

    def __init__(self, stream: Any, limit: int | None) -> None:
        self._stream = stream
        self._limit = limit
        self._said: list[_ChatSaid] = []

    @property
    def response(self) -> Any:
        """The HTTP response (the SDK reads its request id)."""
        return self._stream.response

    def __aiter__(self) -> _CheckedChatStream:
        return self

    async def __anext__(self) -> Any:
        chunk = await self._stream.__anext__()
        for choice in getattr(chunk, "choices", None) or ():
            delta = choice.delta
            if delta is not None and delta.tool_calls:
                self._said.append(_ChatSaid("function_call"))
            elif delta is not None and delta.content:
                self._said.append(_ChatSaid("text"))
            if choice.finish_reason == "length":
                try:
                    check_cut_answer(self._said, self._limit)
                finally:
                    await self._stream.close()  # its generators end here, not at GC
        return chunk

    async def close(self) -> None:
        """Close the HTTP response."""
        await self._stream.close()


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
    client: AsyncOpenAI,
    path: str,
    kwargs: dict[str, Any],
    answer: type[Any],
    event: Any,
    expected: str,
    complete: Callable[[Any], bool],
) -> Any:
    """POST `create(**kwargs)`'s body to `path` with the official client; the answer is parsed
    as `answer` (`InvalidAnswerError` unless it is one that is `complete`), or streamed as
    `event`s. A header that cannot be sent is a `RequestHeaderError`."""
    from openai import AsyncAPIResponse, AsyncStream

    stream = bool(kwargs.get("stream"))
    body = _body(kwargs)
    problem = header_problem(_headers(client, kwargs))  # before h11 sees (and logs) the value
    if problem is not None:
        raise RequestHeaderError(problem)
    try:
        sent = await client.post(
            path,
            content=body,
            options=_compat.request_options(kwargs),
            cast_to=answer if stream else AsyncAPIResponse[answer],  # type: ignore[valid-type]
            stream=stream,
            stream_cls=AsyncStream[event],
        )
    except Exception as exc:
        problem = _header_failure(client, kwargs, exc)
        if problem is None:
            raise
    if problem is not None:  # raised here, without the failure (its text has the value)
        raise RequestHeaderError(problem)
    if stream:
        return sent
    return await _parsed(sent, path, answer, expected=expected, complete=complete)


def _headers(client: AsyncOpenAI, kwargs: Mapping[str, Any]) -> dict[str, object]:
    """The headers a request will have: the API key's, the client's, the call's."""
    return {
        "Authorization": f"Bearer {client.api_key}",
        **client.default_headers,
        **(kwargs.get("extra_headers") or {}),
    }


def _header_failure(client: AsyncOpenAI, kwargs: Mapping[str, Any], exc: Exception) -> str | None:
    """For a request the HTTP client refused to send (h11's "Illegal header value", a value
    that is not ASCII) though `header_problem` found nothing: what is wrong, without the
    value. None for other failures."""
    import openai

    if isinstance(exc, openai.APIConnectionError):
        current: BaseException | None = exc
        while current is not None and type(current).__name__ != "LocalProtocolError":
            current = current.__cause__ or current.__context__
        if current is None:
            return None
    elif not isinstance(exc, UnicodeEncodeError):  # the body is bytes already: a header's
        return None
    return header_problem(_headers(client, kwargs)) or (
        f"the HTTP client refused to send a request ({type(exc).__name__}): a header name or "
        "value, or the URL, has characters HTTP does not allow"
    )


async def _parsed(
    sent: Any, path: str, answer: type[Any], *, expected: str, complete: Callable[[Any], bool]
) -> Any:
    """The typed answer in `sent` (an `AsyncAPIResponse`, body read), or `InvalidAnswerError`
    saying what came back instead (HTML from a proxy, an empty body, an error envelope...)."""
    try:
        parsed = await sent.parse()
    except ValueError:  # not JSON though it says it is
        parsed = None
    if isinstance(parsed, answer) and complete(parsed):
        return parsed
    http = sent.http_response
    raise InvalidAnswerError(
        describe_answer(
            path,
            http.status_code,
            http.headers.get("content-type"),
            http.content,
            expected=expected,
        )
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

        response = await _send(
            self._client,
            "/responses",
            kwargs,
            Response,
            ResponseStreamEvent,
            "a Responses API answer",
            lambda answer: isinstance(getattr(answer, "output", None), list),
        )
        return response if kwargs.get("stream") else check_response(response)


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
            self._client,
            "/chat/completions",
            kwargs,
            ChatCompletion,
            ChatCompletionChunk,
            "a Chat Completions answer",
            lambda answer: isinstance(getattr(answer, "choices", None), list),
        )
        limit = _chat_limit(kwargs)
        if kwargs.get("stream"):
            return _CheckedChatStream(completion, limit)
        return _check_completion(completion, limit)


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
