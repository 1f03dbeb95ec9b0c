"""Every use of private internals of `openai` and the Agents SDK, in one place.

The runtime's fast request path and its fixes for vLLM lean on parts of `openai` and
`openai-agents` that are not their public API. Should an upgrade move one of them, requests would
quietly take the slow path and the fixes would vanish without an error; so they are all reached
through this module, which:

- checks when it is imported that the installed versions are within the range it was written
  and tested for (`SUPPORTED`, the same bounds as pyproject.toml's pins) and fails loudly with
  what to install otherwise;
- is the only module that names them; `tests/backends/test_compat.py` pins the signature of each
  one, so a change shows up as a failing test rather than as a slower, subtly different runtime.

The private parts used, and what for:

- `openai._utils._json.openapi_dumps`: serialise a body as `create()` does;
- `openai._base_client.make_request_options`: the request options `create()` builds;
- `agents.util._json._to_dump_compatible`: the SDK's copy of input items into plain JSON;
- `agents.models.fake_id.FAKE_RESPONSES_ID`: the SDK's placeholder item id;
- `agents._debug.DONT_LOG_MODEL_DATA`: whether the SDK logs request bodies;
- `OpenAIResponsesModel._get_client` and `._build_response_create_kwargs`,
  `OpenAIChatCompletionsModel._get_client`: the seams where the runtime's client and request
  input go in (turned into the hooks `wrap_client` and `request_input`).

Nothing here imports `openai` or `agents` until it is used.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import AgentRuntimeError

if TYPE_CHECKING:
    from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
    from openai import AsyncOpenAI, RequestOptions

__all__ = [
    "SUPPORTED",
    "UnsupportedVersionError",
    "chat_model_base",
    "check_versions",
    "dumps",
    "fake_id",
    "request_options",
    "responses_model_base",
    "sdk_logs_model_data",
    "to_plain_json",
]

SUPPORTED: Mapping[str, str] = {
    "openai": ">=3.52,<3.58",
    "openai-agents": ">=0.24,<0.25",
}
"""Distribution → the versions this module was written and tested for (pyproject.toml pins the
same ranges; a test checks that they agree)."""


class UnsupportedVersionError(AgentRuntimeError):
    """An installed `openai` or `openai-agents` is outside the range agent-runtime supports."""


def check_versions(installed: Mapping[str, str | None] | None = None) -> None:
    """Raise `UnsupportedVersionError` unless every distribution of `SUPPORTED` is installed in
    its range.

    Args:
        installed: distribution → version (None: not installed); default: what is installed.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    if installed is None:
        installed = {name: _installed(name) for name in SUPPORTED}
    problems = []
    for name, wanted in SUPPORTED.items():
        version = installed.get(name)
        if version is None:
            problems.append(f"{name} is not installed (agent-runtime needs {name}{wanted})")
            continue
        try:
            ok = SpecifierSet(wanted).contains(Version(version), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            problems.append(
                f"{name} {version} is installed, but agent-runtime needs {name}{wanted}"
            )
    if problems:
        pins = " ".join(f"'{name}{wanted}'" for name, wanted in SUPPORTED.items())
        raise UnsupportedVersionError(
            f"{'; '.join(problems)}. agent-runtime relies on internals of these packages that "
            f"other versions may have changed; install supported versions: pip install {pins}"
        )


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


check_versions()


# -- openai ---------------------------------------------------------------------------------------


def dumps(body: Any) -> bytes:
    """`body` as JSON bytes, exactly as the official client serialises a request body."""
    from openai._utils._json import openapi_dumps

    return openapi_dumps(body)


def request_options(create_kwargs: Mapping[str, Any]) -> RequestOptions:
    """The request options an official `create(**create_kwargs)` passes to `client.post`: bearer
    auth, and the call's `extra_headers`, `extra_query` and `timeout` (when given)."""
    from openai import not_given
    from openai._base_client import make_request_options

    return make_request_options(
        extra_headers=create_kwargs.get("extra_headers"),
        extra_query=create_kwargs.get("extra_query"),
        timeout=create_kwargs.get("timeout", not_given),
        security={"bearer_auth": True},
    )


# -- the Agents SDK -------------------------------------------------------------------------------


def to_plain_json(items: list[Any]) -> list[Any]:
    """The SDK's own conversion of Responses input items into plain JSON values."""
    from agents.util._json import _to_dump_compatible

    converted: list[Any] = _to_dump_compatible(items)
    return converted


@functools.cache
def fake_id() -> str:
    """The placeholder id the SDK gives items it made up (never sent to a server)."""
    from agents.models.fake_id import FAKE_RESPONSES_ID

    return FAKE_RESPONSES_ID


def sdk_logs_model_data() -> bool:
    """Whether the SDK writes request bodies to its debug log (off unless its env var says so)."""
    from agents import _debug

    return not _debug.DONT_LOG_MODEL_DATA


@functools.cache
def responses_model_base() -> type[OpenAIResponsesModel]:
    """The SDK's Responses model with its two private seams turned into hooks to override:

    - `wrap_client(client)`: the client the model sends through (default: the one it was given);
    - `request_input(value)`: the `input` to send for the run loop's `value` without the SDK's
      copy of it, or None to let the SDK build it (the default). Not used while the SDK logs
      request bodies, since it logs them while building them.
    """
    from agents import OpenAIResponsesModel

    class ResponsesModelBase(OpenAIResponsesModel):
        def wrap_client(self, client: AsyncOpenAI) -> Any:
            return client

        def request_input(self, value: object) -> list[Any] | None:
            return None

        def _get_client(self) -> AsyncOpenAI:
            wrapped: AsyncOpenAI = self.wrap_client(super()._get_client())
            return wrapped

        def _build_response_create_kwargs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            items = self.request_input(kwargs["input"]) if "input" in kwargs else None
            if items is None or sdk_logs_model_data():
                return super()._build_response_create_kwargs(*args, **kwargs)
            create_kwargs = super()._build_response_create_kwargs(*args, **{**kwargs, "input": []})
            create_kwargs["input"] = items
            return create_kwargs

    return ResponsesModelBase


@functools.cache
def chat_model_base() -> type[OpenAIChatCompletionsModel]:
    """The SDK's Chat Completions model with `wrap_client(client)` as the hook for the client it
    sends through (default: the one it was given)."""
    from agents import OpenAIChatCompletionsModel

    class ChatCompletionsModelBase(OpenAIChatCompletionsModel):
        def wrap_client(self, client: AsyncOpenAI) -> Any:
            return client

        def _get_client(self) -> AsyncOpenAI:
            wrapped: AsyncOpenAI = self.wrap_client(super()._get_client())
            return wrapped

    return ChatCompletionsModelBase
