"""The body of `POST /v1/chat/completions` and what a run makes of it.

`parse_chat_request` validates the body (400 naming the field); `run_input` turns `messages`
into the run's added instructions (system and developer messages) and input items (the user and
assistant messages, the last one the user's prompt); `model_settings` picks the Chat options that
apply to the run's model calls. Client tools, `tool` messages and `n` other than 1 are refused
(`refuse_client_tools`, `run_input`): the agent runs its own tools.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic
from starlette.requests import Request

from agent_runtime.server.errors import APIError, invalid_json, validation_error

__all__ = [
    "SEPARATOR",
    "ChatMessage",
    "ChatRequest",
    "model_settings",
    "parse_chat_request",
    "refuse_client_tools",
    "run_input",
]

SEPARATOR = "\n\n"
"""Between the texts of several messages (instructions, or an answer's messages)."""


class _Part(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(pydantic.BaseModel):
    """One message of `messages` (text only)."""

    model_config = pydantic.ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_Part] | None = None


class _StreamOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(pydantic.BaseModel):
    """The body of `POST /v1/chat/completions` (options not listed are ignored)."""

    model_config = pydantic.ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = pydantic.Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    reasoning_effort: str | None = None
    tools: list[Any] | None = None
    n: int | None = None


async def parse_chat_request(request: Request) -> ChatRequest:
    """The validated body, or a 400 in OpenAI's shape."""
    raw = await request.body()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise invalid_json(exc) from None
    if not isinstance(document, dict):
        raise APIError(400, "the request body must be a JSON object.")
    try:
        return ChatRequest.model_validate(document)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None


def refuse_client_tools(body: ChatRequest) -> None:
    """400 for what the agent cannot take: client tools, more than one choice."""
    if body.tools:
        raise APIError(
            400,
            "client tools are not taken on /v1/chat/completions: the agent runs its own tools. "
            "Send function tools to /v1/responses, which returns the agent's calls of them.",
            param="tools",
        )
    if body.n is not None and body.n != 1:
        raise APIError(400, f"`n` must be 1 (an agent gives one answer), got {body.n}.", param="n")


def _text(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for number, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise APIError(
                400,
                f"content parts of type {part.type!r} are not supported; send text.",
                param=f"messages[{index}].content[{number}]",
            )
        texts.append(part.text)
    return "".join(texts)


def run_input(messages: list[ChatMessage]) -> tuple[str | None, list[dict[str, str]]]:
    """The run's added instructions and input items (history, then the prompt)."""
    instructions: list[str] = []
    items: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        text = _text(message, index)
        if message.role in ("system", "developer"):
            if text:
                instructions.append(text)
        elif message.role in ("user", "assistant"):
            items.append({"role": message.role, "content": text})
        else:
            raise APIError(
                400,
                f"messages with role {message.role!r} answer client tool calls, which this "
                "endpoint never makes: the agent runs its own tools. Use /v1/responses for "
                "client function tools.",
                param=f"messages[{index}].role",
            )
    last = len(messages) - 1
    if messages[last].role != "user":
        raise APIError(
            400,
            f"the last message must be the user's prompt, not a {messages[last].role!r} message.",
            param=f"messages[{last}].role",
        )
    return (SEPARATOR.join(instructions) or None), items


def model_settings(body: ChatRequest) -> dict[str, Any] | None:
    """The Chat options that apply to the run's model calls, None without any."""
    settings: dict[str, Any] = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": body.max_completion_tokens or body.max_tokens,
        "reasoning_effort": body.reasoning_effort,
    }
    chosen = {key: value for key, value in settings.items() if value is not None}
    return chosen or None
