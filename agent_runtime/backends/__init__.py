"""Declared backends → Agents SDK models, one OpenAI client (one HTTP pool) per backend.

- `api: responses` (default): `OpenAIResponsesModel`, given to each agent as a model object, so
  no provider strips the `openai/` prefix and no gpt-5 default settings apply. Stateless: the
  SDK resends the whole transcript, reasoning items with their `reasoning_text` content.
- `api: chat_completions`: `OpenAIChatCompletionsModel`; reasoning goes back on the assistant
  message in `reasoning` (or `reasoning_content` for vLLM before v0.11.1).

Both send through `client.RuntimeClient` (vLLM's quirks, the fast request path) and retry
through `retry`; the official client's own retries are off so that one layer decides. The HTTP
client made for a backend stops answers larger than its `max_response_bytes` (`checks`). A
backend with `base_urls` balances its requests over those replicas in its HTTP client's
transport (`replicas`), which sends through the injected `http_client` when there is one. The
`vllm-embedded` kind runs the model in this process instead (`embedded`, with `harmony`).
Private parts of `openai` and the SDK are used only through `_compat`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_runtime.backends import _compat
from agent_runtime.backends.checks import response_size_limit
from agent_runtime.backends.client import RuntimeClient, request_input
from agent_runtime.backends.replicas import Replicas
from agent_runtime.backends.retry import RetryPolicy, reliable_model
from agent_runtime.config import BackendSpec, EngineSpec

if TYPE_CHECKING:
    import httpx2
    from agents import Model, OpenAIChatCompletionsModel, OpenAIResponsesModel
    from openai import AsyncOpenAI

    from agent_runtime.backends.embedded.engine import Engine

__all__ = [
    "Backend",
    "EmbeddedBackend",
    "chat_model_class",
    "create_backend",
    "max_response_bytes",
    "responses_model_class",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """A declared backend with its OpenAI client, shared by every agent that uses it."""

    name: str
    spec: BackendSpec
    client: AsyncOpenAI
    owns_http_client: bool = True
    replicas: Replicas | None = None
    """The balancer of a backend with `base_urls` (its HTTP client's transport uses it)."""

    @property
    def url(self) -> str:
        """The base URL requests go to (for messages: the replicas' joined with `, `)."""
        return self.spec.url

    @property
    def retry_policy(self) -> RetryPolicy:
        """How this backend's model calls are retried."""
        return _retry_policy(self.spec)

    def model(self, model: str | None = None) -> Model:
        """An SDK model for `model` (default: the backend's), with retries."""
        name = model or self.spec.model
        inner: Model
        if self.spec.api == "responses":
            inner = responses_model_class()(model=name, openai_client=self.client)
        else:
            replay = (
                (lambda _context: True)
                if self.spec.reasoning_field == "reasoning_content"
                else None
            )
            inner = chat_model_class()(
                model=name, openai_client=self.client, should_replay_reasoning_content=replay
            )
        return reliable_model(inner, self.retry_policy, backend=self.name, url=self.url)

    async def aclose(self) -> None:
        """Close the HTTP connections of this backend (an injected `http_client` stays open:
        it belongs to whoever passed it)."""
        if self.owns_http_client:
            await self.client.close()


def _retry_policy(spec: BackendSpec) -> RetryPolicy:
    """How a backend's model calls are retried (its agents.yaml settings)."""
    return RetryPolicy(
        max_retries=spec.max_retries,
        budget_s=spec.retry_budget_s,
        initial_delay_s=spec.retry_delay_s,
        max_delay_s=spec.retry_max_delay_s,
        attempt_timeout_s=spec.timeout_s,
    )


@functools.cache
def responses_model_class() -> type[OpenAIResponsesModel]:
    """The SDK's Responses model, sending through `RuntimeClient` and passing the run loop's
    items on uncopied (built on first use)."""

    class RuntimeResponsesModel(_compat.responses_model_base()):  # type: ignore[misc]
        def wrap_client(self, client: AsyncOpenAI) -> RuntimeClient:
            return RuntimeClient(client)

        def request_input(self, value: object) -> list[Any] | None:
            # The SDK copies the whole transcript into plain JSON values twice per request
            # (recursive, pure Python). The run loop's items are plain JSON already: they go on
            # as they are, and `RuntimeClient` checks that while it serialises them (see
            # `client.PlainInput`). Anything else goes the SDK's way.
            return request_input(value)

    return RuntimeResponsesModel


@functools.cache
def chat_model_class() -> type[OpenAIChatCompletionsModel]:
    """The SDK's Chat Completions model, sending through `RuntimeClient` (built on first use)."""

    class RuntimeChatCompletionsModel(_compat.chat_model_base()):  # type: ignore[misc]
        def wrap_client(self, client: AsyncOpenAI) -> RuntimeClient:
            return RuntimeClient(client)

    return RuntimeChatCompletionsModel


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedBackend:
    """A `vllm-embedded` backend: one engine in this process, shared by its agents' runs."""

    name: str
    spec: BackendSpec
    engine: Engine
    owns_engine: bool

    @property
    def url(self) -> str:
        """Where the model runs (for messages)."""
        return self.spec.url

    def model(self, model: str | None = None) -> Model:
        """An SDK model generating on this backend's engine."""
        from agent_runtime.backends.embedded import embedded_model
        from agent_runtime.backends.harmony import load_encoding

        engine = self.spec.engine or EngineSpec()
        inner = embedded_model(
            self.engine,
            load_encoding(),
            model=model or self.spec.model,
            max_model_len=engine.max_model_len or 131072,
            reuse=engine.prefix_reuse,
        )
        return reliable_model(inner, _retry_policy(self.spec), backend=self.name, url=self.url)

    async def aclose(self) -> None:
        """Shut the engine down, if this backend started it."""
        if self.owns_engine:
            await self.engine.close()


def create_backend(
    name: str,
    spec: BackendSpec,
    *,
    http_client: httpx2.AsyncClient | None = None,
    engine: Engine | None = None,
) -> Backend | EmbeddedBackend:
    """Create the backend's OpenAI client (`http_client` lets services inject one), or for
    `vllm-embedded` its engine (`engine` lets tests and services inject one)."""
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    if spec.kind == "vllm-embedded":
        if engine is not None:
            return EmbeddedBackend(name=name, spec=spec, engine=engine, owns_engine=False)
        from agent_runtime.backends.embedded import EngineOptions, VLLMEngine

        options = spec.engine or EngineSpec()
        VLLMEngine.check()  # say now, clearly, when vLLM or a GPU is missing
        vllm = VLLMEngine(
            EngineOptions(
                model=spec.model,
                tensor_parallel_size=options.tensor_parallel_size,
                gpu_memory_utilization=options.gpu_memory_utilization,
                max_model_len=options.max_model_len,
            )
        )
        return EmbeddedBackend(name=name, spec=spec, engine=vllm, owns_engine=True)

    own_http_client = http_client is None
    replicas = None
    if spec.base_urls is not None:
        http_client, replicas = _balanced_client(name, spec, http_client)
        own_http_client = True  # the balancing client is the backend's, whoever made the inner
    elif http_client is None:
        http_client = DefaultAsyncHttpxClient(
            timeout=spec.timeout_s,
            event_hooks={"response": [_size_limit(name, spec)]},
        )
    client = AsyncOpenAI(
        base_url=spec.urls[0],
        api_key=spec.api_key.get_secret_value(),
        timeout=spec.timeout_s,
        max_retries=0,
        default_headers=spec.headers or None,
        http_client=http_client,
    )
    return Backend(
        name=name,
        spec=spec,
        client=client,
        owns_http_client=own_http_client,
        replicas=replicas,
    )


def _size_limit(name: str, spec: BackendSpec) -> Any:
    return response_size_limit(max_response_bytes(spec), backend=name, url=spec.url)


def _balanced_client(
    name: str, spec: BackendSpec, injected: httpx2.AsyncClient | None
) -> tuple[httpx2.AsyncClient, Replicas]:
    """The HTTP client of a backend with `base_urls`: its transport balances the requests over
    the replicas and sends them with `injected` (used as it is) or a client of its own."""
    from openai import DefaultAsyncHttpxClient

    from agent_runtime.backends.replicas import balancing_transport, probe_models

    inner = injected if injected is not None else DefaultAsyncHttpxClient(timeout=spec.timeout_s)
    headers = {**spec.headers, "Authorization": f"Bearer {spec.api_key.get_secret_value()}"}
    check_s = spec.health_check_s

    async def probe(replica: Any) -> bool:
        timeout = min(spec.timeout_s, check_s or spec.timeout_s)
        return await probe_models(inner, replica, headers=headers, timeout_s=timeout)

    replicas = Replicas(
        spec.urls,
        backend=name,
        affinity=spec.affinity,
        down_for_s=spec.down_for_s,
        health_check_s=check_s,
        probe=probe,
    )
    transport = balancing_transport(replicas, spec.urls[0], inner, owns_client=injected is None)
    hooks = {"response": [_size_limit(name, spec)]} if injected is None else {}
    outer = DefaultAsyncHttpxClient(timeout=spec.timeout_s, event_hooks=hooks, transport=transport)
    return outer, replicas


def max_response_bytes(spec: BackendSpec) -> int:
    """The backend's `max_response_bytes`."""
    return spec.max_response_bytes
