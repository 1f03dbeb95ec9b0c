"""`MockVLLM`: a real HTTP server on 127.0.0.1 that answers like `vllm serve openai/gpt-oss-20b`.

The server is a small ASGI application run by uvicorn on a background thread, so it works the
same under sync and async tests. Model endpoints answer from a script of replies, one per model
call, and every request is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from agent_runtime.testing.chat import ChatTurn, chat_chunks, chat_object
from agent_runtime.testing.completion import Completion, HarmonyParseError, Step, generate
from agent_runtime.testing.conversation import (
    ParsedRequest,
    parse_chat_request,
    parse_responses_request,
)
from agent_runtime.testing.errors import VLLMHTTPError, validation_error
from agent_runtime.testing.harmony import PromptRenderer, estimate_prompt_tokens
from agent_runtime.testing.profile import VLLM_0_21, Latency, VLLMProfile
from agent_runtime.testing.recording import RecordedRequest
from agent_runtime.testing.responses import (
    Tick,
    TurnInfo,
    final_status,
    output_items,
    response_object,
    stream_events,
)
from agent_runtime.testing.script import Reply, ScriptEntry, as_entries

if TYPE_CHECKING:
    import uvicorn

__all__ = ["MockVLLM"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_MODEL_PATHS = {"/v1/responses": "responses", "/v1/chat/completions": "chat_completions"}


class _Disconnected(Exception):
    """The client went away before the answer was complete."""


class _ResponderError(Exception):
    """A responder function of the script failed."""


class MockVLLM:
    """A mock of vLLM's OpenAI-compatible server for gpt-oss, for tests and offline demos.

    ```python
    with MockVLLM([Reply(reasoning="Call the tool.", calls=[call("get_weather", city="Tokyo")]),
                   Reply(reasoning="Sunny.", final="Tokyo wakes in light...")]) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY")
        ...
        mock.assert_reasoning_returned(reply=0, request=1)
    ```

    Args:
        script: replies, one per model call in order: `Reply` values, responder functions of the
            `RecordedRequest`, or the path of a YAML/JSON script file.
        default: the reply (or responder) for calls after the script is used up; without it
            such calls get a 500 error that says the script ran out.
        host: the address to bind; loopback only.
        port: the port to bind; 0 picks a free one.
        model: the model vLLM was started with (`root` in `GET /v1/models`).
        served_model_names: the names clients use (vLLM's `--served-model-name`); the first is
            what answers report as `model`. Default: `model` itself.
        api_key: require `Authorization: Bearer <api_key>` on `/v1/*`, as `vllm serve --api-key`.
        harmony: render each request into the exact harmony prompt (needs openai-harmony's
            vocabulary) and count tokens with the real tokenizer.
        latency: time to first token and per generated token.
        profile: which vLLM version's behaviour to imitate.
        max_model_len: the context length (`max_output_tokens` defaults to what is left).
        seed: make generated ids repeatable.
        start_date: the `Current date:` of harmony system messages (YYYY-MM-DD), as
            `VLLM_SYSTEM_START_DATE`; today by default.
        keep_requests: record only the last N requests (a long-running server); all by
            default.
    """

    def __init__(
        self,
        script: Sequence[ScriptEntry] | str | Path | None = None,
        *,
        default: ScriptEntry | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = "openai/gpt-oss-20b",
        served_model_names: Sequence[str] = (),
        api_key: str | None = None,
        harmony: bool = False,
        latency: Latency | None = None,
        profile: VLLMProfile = VLLM_0_21,
        max_model_len: int = 131072,
        seed: int | None = None,
        start_date: str | None = None,
        keep_requests: int | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"MockVLLM binds to loopback only, not {host!r}")
        self.host = host
        self.model = model
        self.served_model_names = tuple(served_model_names) or (model,)
        self.api_key = api_key
        self.latency = latency or Latency()
        self.profile = profile
        self.max_model_len = max_model_len
        self.default = default
        self.requests: deque[RecordedRequest] = deque(maxlen=keep_requests)
        self._received = 0
        self._model_calls = 0
        self.internal_errors: list[Exception] = []
        self._entries: deque[ScriptEntry] = deque(as_entries(script))
        self._script_length = len(self._entries)
        self._served = 0
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._renderer = PromptRenderer(start_date=start_date) if harmony else None
        self._fingerprint = f"vllm-{profile.version}-{self._rng.getrandbits(32):08x}"
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._port is None:
            raise RuntimeError("MockVLLM is not running; use it as a context manager or start()")
        return self._port

    @property
    def url(self) -> str:
        """The OpenAI base URL, ending in `/v1`."""
        return f"http://{self._url_host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """The server root (for `/health`, `/version`)."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def harmony(self) -> bool:
        """Whether prompts are rendered with the real harmony encoding."""
        return self._renderer is not None

    def start(self) -> Self:
        """Start serving on a background thread; returns once the port accepts connections."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError("MockVLLM is already running")
        if self._renderer is not None:
            self._renderer.load()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno,
                f"MockVLLM cannot bind {self.host}:{self._requested_port}: {exc.strerror}",
            ) from None
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.asgi,
            interface="asgi3",
            lifespan="off",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        started = self._started
        started.clear()

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                started.set()

        server = _Server(config)
        self._server = server

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                sock.close()
                started.set()

        self._thread = threading.Thread(target=serve, name=f"MockVLLM:{self._port}", daemon=True)
        self._thread.start()
        started.wait()
        if not server.started:
            self._thread.join()
            self._thread = None
            raise RuntimeError("MockVLLM failed to start; see the log above")
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- script -------------------------------------------------------------------------------

    def add(self, *entries: ScriptEntry) -> None:
        """Append replies to the script (also while serving)."""
        with self._lock:
            self._entries.extend(entries)
            self._script_length += len(entries)

    @property
    def remaining(self) -> int:
        """How many scripted replies have not been used yet."""
        return len(self._entries)

    def assert_script_consumed(self) -> None:
        """Fail unless every scripted reply was used and no call found the script empty."""
        unserved = [r for r in self.model_requests if r.reply is None and r.status == 500]
        if self._entries or unserved:
            raise AssertionError(
                f"mock script: {len(self._entries)} of {self._script_length} replies unused, "
                f"{len(unserved)} model call(s) found the script empty"
            )

    def _next_entry(self) -> tuple[ScriptEntry | None, int | None]:
        with self._lock:
            if self._entries:
                index = self._served
                self._served += 1
                return self._entries.popleft(), index
        return self.default, None

    # -- recorded requests ----------------------------------------------------------------------

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """The recorded `/v1/responses` and `/v1/chat/completions` requests, in arrival order."""
        return [r for r in self.requests if r.is_model_call]

    def assert_reasoning_returned(self, *, reply: int, request: int) -> None:
        """Assert that the reasoning the model gave in answer to model request `reply` was sent
        back, with its full text, in model request `request` (both 0-based)."""
        calls = self.model_requests
        source = calls[reply]
        if source.reply is None:
            raise AssertionError(f"model request {reply} got no reply")
        texts = _reasoning_of(source)
        if not texts:
            raise AssertionError(f"the reply to model request {reply} had no reasoning")
        target = calls[request]
        missing = [t for t in texts if t not in target.reasoning_texts]
        if missing:
            raise AssertionError(
                f"reasoning of reply {reply} not sent back in request {request}: "
                f"missing {missing!r}; request {request} carried {target.reasoning_texts!r}"
            )

    # -- ASGI ---------------------------------------------------------------------------------

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application (HTTP only)."""
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = RecordedRequest(
            index=self._received,
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            body=body,
        )
        self._received += 1
        self.requests.append(record)
        try:
            await self._dispatch(record, scope, receive, send)
        except _Disconnected:
            record.disconnected = True
        except Exception as exc:
            # A bug in the mock itself: answer like vLLM's catch-all, and keep it for tests.
            logger.exception("MockVLLM failed on %s %s", record.method, record.path)
            self.internal_errors.append(exc)
            error = VLLMHTTPError(
                500, f"MockVLLM internal error: {exc!r}", type="InternalServerError"
            )
            record.error = error.body()
            if record.status is None:
                await _send_json(send, record, 500, error.body())

    async def _dispatch(
        self, record: RecordedRequest, scope: Scope, receive: Receive, send: Send
    ) -> None:
        path, method = record.path, record.method
        if (
            path.startswith(("/v1", "/v2", "/inference"))
            and self.api_key is not None
            and record.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            await _send_json(send, record, 401, {"error": "Unauthorized"})
            return
        if path in ("/health", "/ping") and method == "GET":
            await _send(send, record, 200, b"", [])
            return
        if path == "/version" and method == "GET":
            await _send_json(send, record, 200, {"version": self.profile.version})
            return
        if path == "/v1/models" and method == "GET":
            await _send_json(send, record, 200, self._models())
            return
        api = _MODEL_PATHS.get(path)
        if api is None:
            status = 405 if path in ("/health", "/version", "/v1/models") else 404
            detail = "Method Not Allowed" if status == 405 else "Not Found"
            await _send_json(send, record, status, {"detail": detail})
            return
        if method != "POST":
            await _send_json(send, record, 405, {"detail": "Method Not Allowed"})
            return
        record.api = api  # type: ignore[assignment]
        self._model_calls += 1
        try:
            parsed = self._parse(record)
        except VLLMHTTPError as exc:
            record.error = exc.body()
            await _send_json(send, record, exc.status, exc.body())
            return
        await self._answer(record, parsed, receive, send)

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
                    "root": self.model,
                    "parent": None,
                    "max_model_len": self.max_model_len,
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
                for name in self.served_model_names
            ],
        }

    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def _parse(self, record: RecordedRequest) -> ParsedRequest:
        content_type = record.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            problem = "Unsupported Media Type: Only 'application/json' is allowed"
            raise VLLMHTTPError(
                400, f"1 validation error:\n  {problem} {[problem]!r}", type="Bad Request"
            )
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
                raise validation_error(record.api, [error]) from None
        if record.api == "responses":
            parsed = parse_responses_request(record.json, served_models=self.served_model_names)
        else:
            parsed = parse_chat_request(record.json, served_models=self.served_model_names)
        record.stream = parsed.stream
        record.messages = tuple(parsed.messages)
        record.function_calls = tuple(parsed.function_calls)
        record.function_outputs = tuple(parsed.function_outputs)
        record.tool_names = tuple(t.name for t in parsed.tools)
        if self._renderer is not None:
            tokens = self._renderer.render(parsed, self.profile)
            record.prompt_token_ids = tuple(tokens)
            record.prompt = self._renderer.decode(tokens)
        if record.prompt_token_ids is not None:
            record.prompt_tokens = len(record.prompt_token_ids)
        else:
            record.prompt_tokens = estimate_prompt_tokens(parsed)
        length = record.prompt_tokens
        if parsed.api == "responses" and length >= self.max_model_len:
            raise VLLMHTTPError(
                400,
                f"The engine prompt length {length} exceeds the max_model_len "
                f"{self.max_model_len}. Please reduce prompt.",
                type="invalid_request_error",
                param="input",
            )
        if parsed.api == "chat_completions" and length > self.max_model_len:
            raise VLLMHTTPError(
                400,
                f"Input length ({length}) exceeds model's maximum context length "
                f"({self.max_model_len}).",
                type="BadRequestError",
            )
        return parsed

    async def _reply_for(self, record: RecordedRequest) -> Reply | None:
        entry, index = self._next_entry()
        record.reply_index = index
        if entry is None:
            return None
        if isinstance(entry, Reply):
            return entry
        try:
            result = entry(record)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise _ResponderError(f"the responder {entry!r} raised {exc!r}") from exc
        if not isinstance(result, Reply):
            raise _ResponderError(
                f"the responder {entry!r} returned {type(result).__name__}, not a Reply"
            )
        return result

    async def _answer(
        self, record: RecordedRequest, parsed: ParsedRequest, receive: Receive, send: Send
    ) -> None:
        try:
            reply = await self._reply_for(record)
        except _ResponderError as exc:
            error = VLLMHTTPError(500, f"MockVLLM: {exc}", type="InternalServerError")
            record.error = error.body()
            await _send_json(send, record, 500, error.body())
            return
        if reply is None:
            error = VLLMHTTPError(
                500,
                f"MockVLLM: no scripted reply left for model request "
                f"{self._model_calls - 1} "
                f"(the script had {self._script_length}). Add replies or pass default=.",
                type="InternalServerError",
            )
            record.error = error.body()
            await _send_json(send, record, 500, error.body())
            return
        record.reply = reply
        fault = reply.fault
        watch = _DisconnectWatch(receive)
        try:
            if fault is not None and fault.delay_s:
                await watch.sleep(fault.delay_s)
            if fault is not None and fault.drop_connection:
                _abort(send, record)
                return
            if fault is not None and fault.status is not None:
                error = VLLMHTTPError(
                    fault.status,
                    fault.message or _default_fault_message(fault.status),
                    type=_status_type(fault.status),
                )
                record.error = error.body()
                await _send_json(send, record, fault.status, error.body())
                return
            invalid = fault is not None and fault.invalid_arguments
            try:
                completion = generate(
                    reply,
                    encoding=self._renderer.encoding if self._renderer else None,
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
                await watch.sleep(self.latency.total(completion.output_tokens))
                payload = self._object(record, parsed, completion)
                record.response = payload
                if cut is not None:
                    data = json.dumps(payload).encode()
                    await _start(send, record, 200, _JSON_HEADERS, len(data))
                    await send(
                        {"type": "http.response.body", "body": data[:cut], "more_body": True}
                    )
                    _abort(send, record)
                    return
                await _send_json(send, record, 200, payload)
        finally:
            watch.close()

    def _object(
        self, record: RecordedRequest, parsed: ParsedRequest, completion: Completion
    ) -> dict[str, Any]:
        prompt_tokens = record.prompt_tokens
        if parsed.api == "chat_completions":
            turn = self._chat_turn(record, prompt_tokens)
            return chat_object(parsed, turn, completion, self.profile, self._new_id)
        info = self._turn_info(parsed, prompt_tokens)
        output = output_items(completion, parsed, self.profile, self._new_id)
        status = final_status(completion, output)
        return response_object(parsed, info, output=output, completion=completion, status=status)

    def _turn_info(self, parsed: ParsedRequest, prompt_tokens: int) -> TurnInfo:
        request_id = parsed.body.get("request_id")
        return TurnInfo(
            response_id=request_id if isinstance(request_id, str) else f"resp_{self._new_id()}",
            created_at=int(time.time()),
            model=self.served_model_names[0],
            prompt_tokens=prompt_tokens,
            max_model_len=self.max_model_len,
        )

    def _chat_turn(self, record: RecordedRequest, prompt_tokens: int) -> ChatTurn:
        request_id = record.headers.get("x-request-id") or self._new_id()
        return ChatTurn(
            completion_id=f"chatcmpl-{request_id}",
            created=int(time.time()),
            model=self.served_model_names[0],
            prompt_tokens=prompt_tokens,
            fingerprint=self._fingerprint,
        )

    async def _stream(
        self,
        record: RecordedRequest,
        parsed: ParsedRequest,
        completion: Completion,
        send: Send,
        watch: _DisconnectWatch,
        cut: int | None,
    ) -> None:
        prompt_tokens = record.prompt_tokens
        items: Iterable[dict[str, Any] | Tick]
        if parsed.api == "chat_completions":
            turn = self._chat_turn(record, prompt_tokens)
            items = chat_chunks(parsed, turn, completion, self.profile, self._new_id)
        else:
            info = self._turn_info(parsed, prompt_tokens)
            items = stream_events(parsed, info, completion, self.profile, self._new_id)
        await _start(send, record, 200, _SSE_HEADERS)
        await self._pump(record, parsed, items, send, watch, cut)

    async def _pump(
        self,
        record: RecordedRequest,
        parsed: ParsedRequest,
        items: Iterable[dict[str, Any] | Tick],
        send: Send,
        watch: _DisconnectWatch,
        cut: int | None,
    ) -> None:
        """Write SSE events, pacing tokens by the latency model; abort after `cut` events."""
        chat = parsed.api == "chat_completions"
        per_token = self.latency.per_token_s
        buffer: list[bytes] = []
        await watch.sleep(self.latency.first_token_s)
        for item in items:
            if isinstance(item, Tick):
                if per_token > 0:
                    await _flush(send, buffer)
                    await watch.sleep(per_token)
                continue
            if cut is not None and len(record.events) >= cut:
                await _flush(send, buffer)
                _abort(send, record)
                return
            record.events.append(item)
            data = json.dumps(item, ensure_ascii=False)
            if chat:
                buffer.append(f"data: {data}\n\n".encode())
            else:
                buffer.append(f"event: {item['type']}\ndata: {data}\n\n".encode())
            if watch.disconnected:
                raise _Disconnected
        if cut is not None:
            await _flush(send, buffer)
            _abort(send, record)
            return
        if chat:
            buffer.append(b"data: [DONE]\n\n")
        else:
            record.response = record.events[-1]["response"] if record.events else None
        await _flush(send, buffer)
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
            await _send_json(send, record, 500, error.body())
            return
        await _start(send, record, 200, _SSE_HEADERS)
        prompt_tokens = record.prompt_tokens
        if parsed.api == "chat_completions":
            turn = self._chat_turn(record, prompt_tokens)
            nothing = Completion(
                messages=(), steps=(), reasoning_tokens=0, finish_reason="stop", stop_token=None
            )
            first = next(iter(chat_chunks(parsed, turn, nothing, self.profile, self._new_id)))
            assert isinstance(first, dict)
            record.events.extend([first, error.body()])
            body = f"data: {json.dumps(first)}\n\ndata: {json.dumps(error.body())}\n\n"
            await send({"type": "http.response.body", "body": (body + "data: [DONE]\n\n").encode()})
            return
        snapshot = response_object(
            parsed,
            self._turn_info(parsed, prompt_tokens),
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
        _abort(send, record)


# -- helpers --------------------------------------------------------------------------------


def _reasoning_of(record: RecordedRequest) -> list[str]:
    reply = record.reply
    if reply is None:
        return []
    if reply.reasoning is not None:
        return [reply.reasoning]
    response = record.response
    if isinstance(response, dict) and response.get("object") == "response":
        return [
            part["text"]
            for item in response["output"]
            if item["type"] == "reasoning"
            for part in item["content"]
        ]
    return []


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


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _start(
    send: Send,
    record: RecordedRequest,
    status: int,
    headers: list[tuple[bytes, bytes]],
    length: int | None = None,
) -> None:
    record.status = status
    if length is not None:
        headers = [*headers, (b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _send(
    send: Send,
    record: RecordedRequest,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    await _start(send, record, status, headers, len(body))
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, record: RecordedRequest, status: int, payload: Any) -> None:
    await _send(send, record, status, json.dumps(payload).encode(), _JSON_HEADERS)


async def _flush(send: Send, buffer: list[bytes]) -> None:
    if buffer:
        await send({"type": "http.response.body", "body": b"".join(buffer), "more_body": True})
        buffer.clear()


def _abort(send: Send, record: RecordedRequest) -> None:
    """Close the TCP connection at once, without finishing the HTTP exchange."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not served by uvicorn")
    if record.status is None:
        record.status = 0
    transport.abort()


class _DisconnectWatch:
    """Notices a client disconnect while the answer is delayed or streamed."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Task[None] | None = None
        self._event = asyncio.Event()

    @property
    def disconnected(self) -> bool:
        self._ensure()
        return self._event.is_set()

    def _ensure(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._event.set()
                return

    async def sleep(self, seconds: float) -> None:
        """Sleep, but raise `_Disconnected` as soon as the client goes away."""
        if seconds <= 0:
            if self.disconnected:
                raise _Disconnected
            return
        self._ensure()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        if self._event.is_set():
            raise _Disconnected

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
