"""During real runs the runtime's request path is taken: not the official client's `create()`
(its per-request transform of the whole transcript) and, on the Responses API, not the SDK's
copy of the transcript; and the SDK uses nothing of the runtime's client that it lacks."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from openai.resources.chat.completions import AsyncCompletions
from openai.resources.responses import AsyncResponses

from agent_runtime import RunFinished, Runtime
from agent_runtime.backends import _compat
from agent_runtime.backends import client as runtime_client
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers

HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime.from_yaml(
        helpers.PROJECT / "agents.yaml",
        environ={"MOCK_URL": mock.url},
        trace_path=False,
        sessions=None,
    ) as rt:
        yield rt


class Spy:
    """Records what the runtime sends through its fast path, and fails on the slow ones."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, str]] = []  # (path, type of the `input`/`messages` sent)
        self.sdk_copies = 0
        send = runtime_client._send

        async def spy_send(client: Any, path: str, kwargs: dict[str, Any], *args: Any) -> Any:
            items = kwargs.get("input", kwargs.get("messages"))
            self.sent.append((path, type(items).__name__))
            return await send(client, path, kwargs, *args)

        async def official_create(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the official client's create() was called")

        from agents.models import openai_responses

        copy = openai_responses._to_dump_compatible

        def spy_copy(value: Any) -> Any:
            if (
                isinstance(value, list)
                and value
                and isinstance(value[0], dict)
                and "role" in value[0]
            ):
                self.sdk_copies += 1  # the transcript, not the (empty) placeholder or the tools
            return copy(value)

        monkeypatch.setattr(runtime_client, "_send", spy_send)
        monkeypatch.setattr(AsyncResponses, "create", official_create)
        monkeypatch.setattr(AsyncCompletions, "create", official_create)
        monkeypatch.setattr(openai_responses, "_to_dump_compatible", spy_copy)


class Part(Mapping[str, Any]):
    """A read-only mapping that is not a dict: not plain JSON for the strict encoder."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def script() -> list[Reply]:
    return [
        Reply(reasoning="Call it.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Sunny.", final=HAIKU),
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
@pytest.mark.parametrize(
    ("agent", "path", "sent_as"),
    [
        pytest.param("weather-haiku", "/responses", "PlainInput", id="responses"),
        pytest.param("chat-haiku", "/chat/completions", "list", id="chat"),
    ],
)
async def test_runs_take_the_fast_path(
    runtime: Runtime,
    mock: MockVLLM,
    monkeypatch: pytest.MonkeyPatch,
    agent: str,
    path: str,
    sent_as: str,
    stream: bool,
) -> None:
    spy = Spy(monkeypatch)
    mock.add(*script())
    if stream:
        events = [event async for event in runtime.stream(agent, "Weather in Tokyo?")]
        assert isinstance(events[-1], RunFinished)
        result = events[-1].result
    else:
        result = await runtime.run(agent, "Weather in Tokyo?")
    assert result.final_output == HAIKU
    assert spy.sent == [(path, sent_as), (path, sent_as)]
    assert spy.sdk_copies == 0
    assert [request.path for request in mock.model_requests] == [f"/v1{path}"] * 2


async def test_input_that_is_not_plain_json_still_takes_the_fast_path(
    runtime: Runtime, mock: MockVLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK converts a run's input into plain JSON once, when the run starts; every model
    call then sends it without another copy (the serialiser's fallback is not needed)."""
    spy = Spy(monkeypatch)
    fallbacks = []
    monkeypatch.setattr(_compat, "to_plain_json", lambda items: fallbacks.append(items))
    mock.add(Reply(final="ok"))
    part = Part({"type": "input_text", "text": "hi"})
    result = await runtime.run("weather-haiku", [{"role": "user", "content": [part]}])
    assert result.final_output == "ok"
    assert spy.sent == [("/responses", "PlainInput")]
    assert (spy.sdk_copies, fallbacks) == (0, [])
    assert mock.model_requests[0].json["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    ]


def defined(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in vars(klass)}


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_the_sdk_uses_only_what_the_runtimes_client_has(
    runtime: Runtime, mock: MockVLLM, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    """Every attribute the SDK's models read from the client exists on it: nothing is forwarded
    to the official client behind the scenes, and nothing is silently missing (`getattr` with a
    default would hide that)."""
    used: Counter[tuple[str, str]] = Counter()
    classes = [
        runtime_client.RuntimeClient,
        runtime_client._Responses,
        runtime_client._Chat,
        runtime_client._Completions,
    ]
    for cls in classes:

        def recording(self: Any, name: str, cls: type = cls) -> Any:
            if not name.startswith("__"):
                used[cls.__name__, name] += 1
            return object.__getattribute__(self, name)

        monkeypatch.setattr(cls, "__getattribute__", recording)
    for agent in ("weather-haiku", "chat-haiku"):
        mock.add(*script())
        if stream:
            async for _ in runtime.stream(agent, "Weather in Tokyo?"):
                pass
        else:
            await runtime.run(agent, "Weather in Tokyo?")
    missing = {
        (owner, name)
        for owner, name in used
        if name not in defined(next(c for c in classes if c.__name__ == owner))
    }
    assert missing == set()
    assert set(used) >= {
        ("RuntimeClient", "responses"),
        ("RuntimeClient", "chat"),
        ("_Responses", "create"),
        ("_Chat", "completions"),
        ("_Completions", "create"),
    }
