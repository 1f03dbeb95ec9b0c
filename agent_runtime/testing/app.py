"""The ASGI application behind `MockVLLM`: routes, request checks, answers, streams and faults.

`MockApp` records each request on its server's log, answers the plain routes (`/health`,
`/version`, `/v1/models`) and, for `/v1/responses` and `/v1/chat/completions`, validates the body
like vLLM, takes the next scripted reply and sends it whole or as server-sent events, paced by the
latency model. A reply's `Fault` delays it, answers with an error status, drops the connection,
cuts the stream or empties the output.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from agent_runtime.testing.asgi import (
    JSON_HEADERS,
    SSE_HEADERS,
    Disconnected,
    DisconnectWatch,
    Receive,
    Scope,
    Send,
    abort,
    flush,
    read_body,
    send_error,
    send_json,
    send_response,
    start_response,
)
from agent_runtime.testing.chat import ChatTurn, chat_chunks, chat_object
from agent_runtime.testing.chat_request import parse_chat_request
from agent_runtime.testing.completion import Completion, HarmonyParseError, Step, generate
from agent_runtime.testing.http_error import VLLMHTTPError, media_type_error, validation_error
from agent_runtime.testing.profile import Latency, VLLMProfile
from agent_runtime.testing.prompt import (
    PromptRenderer,
    estimate_prompt_tokens,
    load_encoding,
    prompt_messages,
)
from agent_runtime.testing.recording import RecordedRequest
from agent_runtime.testing.request import ParsedRequest
from agent_runtime.testing.responses import (
    Tick,
    TurnInfo,
    final_status,
    output_items,
    response_object,
    stream_events,
)
from agent_runtime.testing.responses_request import parse_responses_request
from agent_runtime.testing.script import Reply

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

__all__ = ["MockApp", "ReplySource", "ServerState"]

logger = logging.getLogger(__name__)

_MODEL_PATHS = {"/v1/responses": "responses", "/v1/chat/completions": "chat_completions"}

ReplySource = Callable[[RecordedRequest, int], Awaitable[Reply]]
"""The reply to a model request, given its record and its 0-based number among model requests;
raises `VLLMHTTPError` to answer with that error instead."""


class ServerState(Protocol):
    """What `MockApp` reads from its server (`MockVLLM`) on every request, and where it records."""

    model: str
    served_model_names: tuple[str, ...]
    api_key: str | None
    latency: Latency
    profile: VLLMProfile
    max_model_len: int
    requests: deque[RecordedRequest]
    internal_errors: list[Exception]

    def changed(self) -> None:
        """Called when a request arrives and when it is answered, fails or is abandoned."""


class MockApp:
    """The ASGI application of a mock vLLM server (HTTP only).

    Args:
        server: the settings it answers with and the log it records requests on.
        reply_for: where the replies to model requests come from (the script).
        renderer: renders harmony prompts and counts their tokens; None estimates the count.
        seed: make generated ids repeatable.
    """

    def __init__(
        self,
        server: ServerState,
        *,
        reply_for: ReplySource,
        renderer: PromptRenderer | None,
        seed: int | None,
    ) -> None:
        self._server = server
        self._reply_for = reply_for
        self._renderer = renderer
        self._raw_encoding: HarmonyEncoding | None = None
        self._received = 0
        self._model_calls = 0
        self._rng = random.Random(seed)
        self._fingerprint = f"vllm-{server.profile.version}-{self._rng.getrandbits(32):08x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the request, then answer it; a failure of the mock itself answers 500."""
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(
            index=self._received,
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            body=body,
        )
        self._received += 1
        self._server.requests.append(record)
        self._server.changed()
        try:
            await self._dispatch(record, scope, receive, send)
        except Disconnected:
            record.disconnected = True
        except Exception as exc:
            # A bug in the mock itself: answer like vLLM's catch-all, and keep it for tests.
            logger.exception("MockVLLM failed on %s %s", record.method, record.path)
            self._server.internal_errors.append(exc)
            error = VLLMHTTPError(
                500, f"MockVLLM internal error: {exc!r}", type="InternalServerError"
            )
            record.error = error.body()
            if record.status is None:
                await send_json(send, record, 500, error.body())
        finally:
            record.finished = True
            self._server.changed()

    async def _dispatch(
        self, record: RecordedRequest, scope: Scope, receive: Receive, send: Send
    ) -> None:
        path, method = record.path, record.method
        if (
            path.startswith(("/v1", "/v2", "/inference"))
            and self._server.api_key is not None
            and record.headers.get("authorization") != f"Bearer {self._server.api_key}"
        ):
            await send_json(send, record, 401, {"error": "Unauthorized"})
            return
        if path in ("/health", "/ping") and method == "GET":
            await send_response(send, record, 200, b"", [])
            return
        if path == "/version" and method == "GET":
            await send_json(send, record, 200, {"version": self._server.profile.version})
            return
        if path == "/v1/models" and method == "GET":
            await send_json(send, record, 200, self._models())
            return
        api = _MODEL_PATHS.get(path)
        if api is None:
            status = 405 if path in ("/health", "/version", "/v1/models") else 404
            detail = "Method Not Allowed" if status == 405 else "Not Found"
            await send_json(send, record, status, {"detail": detail})
            return
        if method != "POST":
            await send_json(send, record, 405, {"detail": "Method Not Allowed"})
            return
        record.api = api  # type: ignore[assignment]
        self._model_calls += 1
        try:
            parsed = self._parse(record)
        except VLLMHTTPError as exc:
            await send_error(send, record, exc)
            return
        await self._answer(record, parsed, receive, send)

    def _completion_encoding(self, reply: Reply) -> HarmonyEncoding | None:
        """The encoding completions are parsed with: harmony mode's, or for a raw harmony
        reply without harmony mode, one loaded for it (once)."""
        if self._renderer is not None:
            return self._renderer.encoding
        if reply.harmony is None:
            return None
        if self._raw_encoding is None:
            self._raw_encoding = load_encoding()
        return self._raw_encoding

    def _models(self) -> dict[str, Any]:
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {
                    "id": name,
                    "object": "model",
                    "created": created,
                    "owned_by": "vllm",
                    "root": self._server.model,
                    "parent": None,
                    "max_model_len": self._server.max_model_len,
                    "permission": [
                        {
                            "id": f"modelperm-{self._new_id()}",
                            "object": "model_permission",
                            "created": created,
                            "allow_create_engine": False,
                            "allow_sampling": True,
                            "allow_logprobs": True,
                            "allow_search_indices": False,
                            "allow_view": True,
                            "allow_fine_tuning": False,
                            "organization": "*",
                            "group": None,
                            "is_blocking": False,
                        }
                    ],
                }
                for name in self._server.served_model_names
            ],
        }

    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def _parse(self, record: RecordedRequest) -> ParsedRequest:
        profile = self._server.profile
        content_type = record.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise media_type_error(profile)
        assert record.api is not None
        if record.body.strip():
            try:
                record.json = json.loads(record.body)
            except ValueError as exc:
                position = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                error = {
                    "type": "json_invalid",
                    "loc": ("body", position),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": reason},
                }
                raise validation_error(record.api, profile, [error]) from None
        served = self._server.served_model_names
        if record.api == "responses":
            parsed = parse_responses_request(record.json, served_models=served, profile=profile)
        else:
            parsed = parse_chat_request(record.json, served_models=served, profile=profile)
        record.stream = parsed.stream
        record.messages = tuple(prompt_messages(parsed, self._server.profile).messages)
        record.function_calls = tuple(parsed.function_calls)
        record.function_outputs = tuple(parsed.function_outputs)
        record.tool_names = tuple(t.name for t in parsed.tools)
        record.tool_parameters = {t.name: t.parameters for t in parsed.tools}
        if self._renderer is not None:
            tokens = self._renderer.render(parsed, self._server.profile)
            record.prompt_token_ids = tuple(tokens)
            record.prompt = self._renderer.decode(tokens)
        if record.prompt_token_ids is not None:
            record.prompt_tokens = len(record.prompt_token_ids)
        else:
            record.prompt_tokens = estimate_prompt_tokens(parsed)
        length = record.prompt_tokens
        if parsed.api == "responses" and length >= self._server.max_model_len:
            raise VLLMHTTPError(
                400,
                f"The engine prompt length {length} exceeds the max_model_len "
                f"{self._server.max_model_len}. Please reduce prompt.",
                type="invalid_request_error",
                param="input",
            )
        if parsed.api == "chat_completions" and length > self._server.max_model_len:
            raise VLLMHTTPError(
                400,
                f"Input length ({length}) exceeds model's maximum context length "
                f"({self._server.max_model_len}).",
                type="BadRequestError",
            )
        return parsed

    async def _answer(
        self, record: RecordedRequest, parsed: ParsedRequest, receive: Receive, send: Send
    ) -> None:
        try:
            reply = await self._reply_for(record, self._model_calls - 1)
        except VLLMHTTPError as exc:
            await send_error(send, record, exc)
            return
        record.reply = reply
        fault = reply.fault
        watch = DisconnectWatch(receive)
        try:
            if fault is not None and fault.delay_s:
                await watch.sleep(fault.delay_s)
            if fault is not None and fault.drop_connection:
                abort(send, record)
                return
            if fault is not None and fault.status is not None:
                error = VLLMHTTPError(
                    fault.status,
                    fault.message or _default_fault_message(fault.status),
                    type=_status_type(fault.status),
                )
                await send_error(send, record, error)
                return
            invalid = fault is not None and fault.invalid_arguments
            try:
                completion = generate(
                    reply,
                    encoding=self._completion_encoding(reply),
                    max_tokens=parsed.max_tokens,
                    invalid_arguments=invalid,
                )
            except HarmonyParseError as exc:
                await self._harmony_failure(record, parsed, exc, send)
                return
            if fault is not None and fault.empty_incomplete:
                completion = _lost_completion(completion)
            cut = fault.cut_stream if fault is not None else None
            if parsed.stream:
                await self._stream(record, parsed, completion, send, watch, cut)
            else:
                await watch.sleep(self._server.latency.total(completion.output_tokens))
                payload = self._object(record, parsed, completion)
                record.response = payload
                if cut is not None:
                    data = json.dumps(payload).encode()
                    await start_response(send, record, 200, JSON_HEADERS, len(data))
                    await send(
                        {"type": "http.response.body", "body": data[:cut], "more_body": True}
                    )
                    abort(send, record)
                    return
                await send_json(send, record, 200, payload)
        finally:
            watch.close()

    def _object(
        self, record: RecordedRequest, parsed: ParsedRequest, completion: Completion
    ) -> dict[str, Any]:
        prompt_tokens = record.prompt_tokens
        if parsed.api == "chat_completions":
            turn = self._chat_turn(record, prompt_tokens)
            return chat_object(parsed, turn, completion, self._server.profile, self._new_id)
        info, profile = self._turn_info(parsed, prompt_tokens), self._server.profile
        output = output_items(completion, parsed, profile, self._new_id)
        status = final_status(completion, output, profile)
        return response_object(
            parsed, info, profile, output=output, completion=completion, status=status
        )

    def _turn_info(self, parsed: ParsedRequest, prompt_tokens: int) -> TurnInfo:
        request_id = parsed.body.get("request_id")
        return TurnInfo(
            response_id=request_id if isinstance(request_id, str) else f"resp_{self._new_id()}",
            created_at=int(time.time()),
            model=self._server.served_model_names[0],
            prompt_tokens=prompt_tokens,
            max_model_len=self._server.max_model_len,
        )

    def _chat_turn(self, record: RecordedRequest, prompt_tokens: int) -> ChatTurn:
        request_id = record.headers.get("x-request-id") or self._new_id()
        return ChatTurn(
            completion_id=f"chatcmpl-{request_id}",
            created=int(time.time()),
            model=self._server.served_model_names[0],
            prompt_tokens=prompt_tokens,
            fingerprint=self._fingerprint,
        )

    async def _stream(
        self,
        record: RecordedRequest,
        parsed: ParsedRequest,
        completion: Completion,
        send: Send,
        watch: DisconnectWatch,
        cut: int | None,
    ) -> None:
        prompt_tokens = record.prompt_tokens
        items: Iterable[dict[str, Any] | Tick]
        if parsed.api == "chat_completions":
            turn = self._chat_turn(record, prompt_tokens)
            items = chat_chunks(parsed, turn, completion, self._server.profile, self._new_id)
        else:
            info = self._turn_info(parsed, prompt_tokens)
            items = stream_events(parsed, info, completion, self._server.profile, self._new_id)
        await start_response(send, record, 200, SSE_HEADERS)
        await self._pump(record, parsed, items, send, watch, cut)

    async def _pump(
        self,
        record: RecordedRequest,
        parsed: ParsedRequest,
        items: Iterable[dict[str, Any] | Tick],
        send: Send,
        watch: DisconnectWatch,
        cut: int | None,
    ) -> None:
        """Write SSE events, pacing tokens by the latency model; abort after `cut` events."""
        chat = parsed.api == "chat_completions"
        per_token = self._server.latency.per_token_s
        buffer: list[bytes] = []
        await watch.sleep(self._server.latency.first_token_s)
        for item in items:
            if isinstance(item, Tick):
                if per_token > 0:
                    await flush(send, buffer)
                    await watch.sleep(per_token)
                continue
            if cut is not None and len(record.events) >= cut:
                await flush(send, buffer)
                abort(send, record)
                return
            record.events.append(item)
            data = json.dumps(item, ensure_ascii=False)
            if chat:
                buffer.append(f"data: {data}\n\n".encode())
            else:
                buffer.append(f"event: {item['type']}\ndata: {data}\n\n".encode())
            if watch.disconnected:
                raise Disconnected
        if cut is not None:
            await flush(send, buffer)
            abort(send, record)
            return
        if chat:
            buffer.append(b"data: [DONE]\n\n")
        else:
            last = record.events[-1] if record.events else {}
            terminal = last.get("type") in ("response.completed", "response.incomplete")
            record.response = last["response"] if terminal else None
        await flush(send, buffer)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _harmony_failure(
        self,
        record: RecordedRequest,
        parsed: ParsedRequest,
        exc: HarmonyParseError,
        send: Send,
    ) -> None:
        """Model output harmony cannot parse (vllm#23567, #51977): a 500, or a broken stream.

        A Responses stream stops without `response.completed`; a Chat stream reports the error
        in-band, then `[DONE]`.
        """
        error = VLLMHTTPError(500, str(exc), type="InternalServerError")
        record.error = error.body()
        if not parsed.stream:
            await send_json(send, record, 500, error.body())
            return
        await start_response(send, record, 200, SSE_HEADERS)
        prompt_tokens = record.prompt_tokens
        if parsed.api == "chat_completions":
            turn = self._chat_turn(record, prompt_tokens)
            nothing = Completion(
                messages=(), steps=(), reasoning_tokens=0, finish_reason="stop", stop_token=None
            )
            first = next(
                iter(chat_chunks(parsed, turn, nothing, self._server.profile, self._new_id))
            )
            assert isinstance(first, dict)
            record.events.extend([first, error.body()])
            body = f"data: {json.dumps(first)}\n\ndata: {json.dumps(error.body())}\n\n"
            await send({"type": "http.response.body", "body": (body + "data: [DONE]\n\n").encode()})
            return
        snapshot = response_object(
            parsed,
            self._turn_info(parsed, prompt_tokens),
            self._server.profile,
            output=[],
            completion=None,
            status="in_progress",
        )
        events = [
            {"response": snapshot, "sequence_number": 0, "type": "response.created"},
            {"response": snapshot, "sequence_number": 1, "type": "response.in_progress"},
        ]
        record.events.extend(events)
        body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
        await send({"type": "http.response.body", "body": body.encode(), "more_body": True})
        abort(send, record)


# -- faults ---------------------------------------------------------------------------------


def _lost_completion(completion: Completion, tokens: int = 16) -> Completion:
    """Tokens were generated but nothing parseable came out (vllm#41902, BrowseComp-Plus#15)."""
    count = max(completion.output_tokens, tokens)
    return Completion(
        messages=(),
        steps=tuple(Step(None, "") for _ in range(count)),
        reasoning_tokens=count,
        finish_reason="length",
        stop_token=None,
    )


def _default_fault_message(status: int) -> str:
    messages = {
        429: "Too many requests",
        500: "Internal server error",
        502: "Bad gateway",
        503: "Service unavailable: the engine is overloaded or restarting",
        504: "Gateway timeout",
    }
    return messages.get(status, f"Injected error {status}")


def _status_type(status: int) -> str:
    types = {
        400: "BadRequestError",
        401: "UnauthorizedError",
        404: "NotFoundError",
        429: "TooManyRequestsError",
        501: "NotImplementedError",
        503: "ServiceUnavailableError",
    }
    return types.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
