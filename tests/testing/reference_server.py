"""OpenAI's reference gpt-oss Responses server (PyPI `gpt-oss`), run in-process without weights.

`gpt_oss.responses_api.api_server.create_api_server(infer_next_token, encoding)` builds the
FastAPI app of the reference server; instead of a model, `ScriptedTokens` replays one scripted
harmony completion per request, token by token, and records each request's prompt tokens.
`ReferenceServer` serves the app with uvicorn on a background thread on 127.0.0.1.

The server reads two process-wide things that tests must pin: `datetime.datetime.now()` (the
`Current date:` of its system message, and `created_at`) and the builtin `print` (it prints every
prompt and token). Both are looked up as globals of `api_server`, so `ReferenceServer.start`
replaces them there, and `stop` puts them back.
"""

from __future__ import annotations

import datetime
import socket
import threading
import types
from collections import deque
from typing import TYPE_CHECKING, Any, Self

import pytest
import uvicorn

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

__all__ = ["ReferenceServer", "ScriptedTokens"]


class ScriptedTokens:
    """The `infer_next_token` of the reference server: replays scripted completions.

    The server calls it once per generated token, synchronously on its event loop, as
    `infer_next_token(tokens, temperature=..., new_request=...)`; `tokens` is the server's own
    list (prompt + tokens generated so far), a new list per request, `new_request` is true on
    the first call of a request. Generation stops when it returns `<|call|>` or `<|return|>`.
    """

    def __init__(self, encoding: HarmonyEncoding) -> None:
        self._encoding = encoding
        self._return_token = encoding.encode("<|return|>", allowed_special="all")[0]
        self._lock = threading.Lock()
        self._scripts: deque[list[int]] = deque()
        self._cursors: dict[int, tuple[list[int], int]] = {}
        self.prompts: list[list[int]] = []

    def add(self, *completions: str) -> None:
        """Queue raw harmony completions (what the model writes after `<|start|>assistant`)."""
        with self._lock:
            for completion in completions:
                self._scripts.append(self._encoding.encode(completion, allowed_special="all"))

    @property
    def remaining(self) -> int:
        """How many queued completions no request has used yet."""
        return len(self._scripts)

    def reset(self) -> None:
        """Forget queued completions and recorded prompts."""
        with self._lock:
            self._scripts.clear()
            self._cursors.clear()
            self.prompts.clear()

    def __call__(
        self, tokens: list[int], temperature: float = 0.0, new_request: bool = False
    ) -> int:
        with self._lock:
            key = id(tokens)
            if new_request:
                if not self._scripts:
                    raise RuntimeError("ScriptedTokens: no scripted completion left")
                # The server keeps appending to `tokens`: record a copy of the prompt.
                self.prompts.append(list(tokens))
                self._cursors[key] = (self._scripts.popleft(), 0)
            script, position = self._cursors[key]
            if position >= len(script):
                return self._return_token
            self._cursors[key] = (script, position + 1)
            return script[position]


def _frozen_datetime_module(date: str) -> types.SimpleNamespace:
    """A stand-in for the `datetime` module whose `datetime.now()` is midnight of `date`."""
    frozen = datetime.datetime.fromisoformat(date)

    class FrozenDateTime(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> FrozenDateTime:
            return cls.fromtimestamp(frozen.timestamp(), tz)

    return types.SimpleNamespace(datetime=FrozenDateTime)


def _quiet(*args: Any, **kwargs: Any) -> None:
    """Replaces `print` in `api_server`, which prints every prompt and generated token."""


class ReferenceServer:
    """The reference gpt-oss Responses server on 127.0.0.1, with a scripted model.

    Args:
        encoding: the gpt-oss harmony encoding.
        start_date: the `Current date:` of the system message (YYYY-MM-DD), like the mock's
            `start_date` (vLLM's `VLLM_SYSTEM_START_DATE`); the server itself has no option.
    """

    def __init__(self, encoding: HarmonyEncoding, *, start_date: str) -> None:
        self.encoding = encoding
        self.start_date = start_date
        self.tokens = ScriptedTokens(encoding)
        self._patch = pytest.MonkeyPatch()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL, ending in `/v1`."""
        if self._port is None:
            raise RuntimeError("ReferenceServer is not running")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def prompts(self) -> list[str]:
        """The decoded harmony prompt of each request, in order."""
        return [self.encoding.decode_utf8(tokens) for tokens in self.tokens.prompts]

    def start(self) -> Self:
        """Build the app and serve it on a free loopback port; returns once it accepts."""
        from gpt_oss.responses_api import api_server  # type: ignore[import-untyped]

        self._patch.setattr(api_server, "datetime", _frozen_datetime_module(self.start_date))
        self._patch.setattr(api_server, "print", _quiet, raising=False)
        app = api_server.create_api_server(self.tokens, self.encoding)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        started = threading.Event()

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                started.set()

        server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                sock.close()
                started.set()

        self._server = server
        self._thread = threading.Thread(target=serve, name="gpt-oss-reference", daemon=True)
        self._thread.start()
        started.wait()
        if not server.started:
            self.stop()
            raise RuntimeError("the reference gpt-oss server failed to start; see the log")
        return self

    def stop(self) -> None:
        """Stop serving, wait for the thread, and restore `api_server`'s globals."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join()
        self._server = None
        self._thread = None
        self._port = None
        self._patch.undo()
