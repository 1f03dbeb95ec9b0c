"""Declared backends → Agents SDK models, one OpenAI client (one HTTP pool) per backend.

- `api: responses` (default): `OpenAIResponsesModel`, given to each agent as a model object, so
  no provider strips the `openai/` prefix and no gpt-5 default settings apply. Stateless: the
  SDK resends the whole transcript, reasoning items with their `reasoning_text` content.
- `api: chat_completions`: `OpenAIChatCompletionsModel`; reasoning goes back on the assistant
  message in `reasoning` (or `reasoning_content` for vLLM before v0.11.1).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_runtime.config import BackendSpec

if TYPE_CHECKING:
    import httpx2
    from agents import Model, OpenAIChatCompletionsModel
    from openai import AsyncOpenAI

__all__ = ["Backend", "create_backend", "prepare_chat_messages"]


def prepare_chat_messages(messages: list[Any]) -> list[Any]:
    """Make assistant turns keep their reasoning on vLLM.

    The SDK sends an assistant tool-call turn with `"content": null`; vLLM (v0.21) then parses
    the message with openai's TypedDict, which has no `reasoning` key, and silently drops the
    reasoning. An empty string keeps it and renders no preamble.
    """
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


class _Completions:
    def __init__(self, completions: Any) -> None:
        self._completions = completions

    async def create(self, **kwargs: Any) -> Any:
        messages = kwargs.get("messages")
        if isinstance(messages, list):
            kwargs["messages"] = prepare_chat_messages(messages)
        return await self._completions.create(**kwargs)


class _Chat:
    def __init__(self, chat: Any) -> None:
        self.completions = _Completions(chat.completions)


class _VLLMChatClient:
    """The OpenAI client as the SDK's chat model sees it, with vLLM's reasoning fix applied."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client
        self.chat = _Chat(client.chat)

    def with_options(self, **options: Any) -> _VLLMChatClient:
        return _VLLMChatClient(self._client.with_options(**options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """A declared backend with its OpenAI client, shared by every agent that uses it."""

    name: str
    spec: BackendSpec
    client: AsyncOpenAI

    @property
    def url(self) -> str:
        """The base URL requests go to."""
        return self.spec.base_url

    def model(self, model: str | None = None) -> Model:
        """An SDK model for `model` (default: the backend's) on this backend's client."""
        from agents import OpenAIResponsesModel

        name = model or self.spec.model
        if self.spec.api == "responses":
            return OpenAIResponsesModel(model=name, openai_client=self.client)
        replay = (
            (lambda _context: True) if self.spec.reasoning_field == "reasoning_content" else None
        )
        return _chat_model_class()(
            model=name, openai_client=self.client, should_replay_reasoning_content=replay
        )

    async def aclose(self) -> None:
        """Close the HTTP connections of this backend."""
        await self.client.close()


@functools.cache
def _chat_model_class() -> type[OpenAIChatCompletionsModel]:
    """The SDK's chat model, sending requests through `_VLLMChatClient` (built on first use,
    so importing this module does not import the SDK)."""
    from agents import OpenAIChatCompletionsModel

    class VLLMChatCompletionsModel(OpenAIChatCompletionsModel):
        def _get_client(self) -> AsyncOpenAI:
            return _VLLMChatClient(super()._get_client())  # type: ignore[return-value]

    return VLLMChatCompletionsModel


def create_backend(
    name: str,
    spec: BackendSpec,
    *,
    http_client: httpx2.AsyncClient | None = None,
    default_headers: Mapping[str, str] | None = None,
) -> Backend:
    """Create the backend's OpenAI client (`http_client` lets tests and services inject one)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=spec.base_url,
        api_key=spec.api_key.get_secret_value(),
        timeout=spec.timeout_s,
        max_retries=spec.max_retries,
        default_headers={**spec.headers, **(default_headers or {})} or None,
        http_client=http_client,
    )
    return Backend(name=name, spec=spec, client=client)
