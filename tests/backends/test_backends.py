"""Declared backends → SDK models: one OpenAI client per backend with its headers and key, the
retry policy from agents.yaml, injected HTTP clients and engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from agents import ModelSettings
from agents.models.interface import ModelTracing
from pydantic import SecretStr

from agent_runtime import Runtime
from agent_runtime.backends import Backend, EmbeddedBackend, create_backend
from agent_runtime.backends.retry import RetryPolicy
from agent_runtime.config import BackendSpec
from agent_runtime.sessions import SessionStore
from agent_runtime.testing import VLLM_0_33, FakeEngine, MockVLLM, Reply, call, load_encoding
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"
HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."
CALL: dict[str, Any] = {
    "system_instructions": "Be brief.",
    "input": "hi",
    "model_settings": ModelSettings(),
    "tools": [],
    "output_schema": None,
    "handoffs": [],
    "tracing": ModelTracing.DISABLED,
    "previous_response_id": None,
    "conversation_id": None,
    "prompt": None,
}


def haiku_script() -> list[Reply]:
    return [
        Reply(
            reasoning="User wants Tokyo weather; call get_weather.",
            calls=[call("get_weather", city="Tokyo")],
        ),
        Reply(reasoning="Sunny and 21 °C. Write the haiku.", final=HAIKU),
    ]


def answer_text(response: Any) -> str:
    return str(response.output[-1].content[0].text)


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


def server_backend(name: str, spec: BackendSpec, **options: Any) -> Backend:
    backend = create_backend(name, spec, **options)
    assert isinstance(backend, Backend)
    return backend


# -- server backends --------------------------------------------------------------------------


async def test_each_backend_sends_through_its_own_client_with_its_headers_and_key(
    mock: MockVLLM,
) -> None:
    first = server_backend(
        "first",
        BackendSpec(
            base_url=mock.url,
            model="openai/gpt-oss-20b",
            api_key=SecretStr("key-1"),
            headers={"X-Team": "one"},
            timeout_s=42,
        ),
    )
    second = server_backend(
        "second",
        BackendSpec(base_url=mock.url, model="openai/gpt-oss-20b", api="chat_completions"),
    )
    assert (first.url, second.url) == (mock.url, mock.url)
    assert first.client is not second.client
    assert (first.client.api_key, first.client.max_retries, first.client.timeout) == (
        "key-1",
        0,  # the retry layer decides, not the client
        42,
    )
    mock.add(Reply(final="one"), Reply(final="two"), Reply(final="three"))
    assert answer_text(await first.model().get_response(**CALL)) == "one"
    assert answer_text(await first.model().get_response(**CALL)) == "two"
    response = await second.model().get_response(**CALL)
    assert response.output[-1].content[0].text == "three"  # type: ignore[union-attr]
    one, two, three = mock.model_requests
    assert [r.path for r in mock.model_requests] == [
        "/v1/responses",
        "/v1/responses",
        "/v1/chat/completions",
    ]
    for request in (one, two):
        assert request.headers["authorization"] == "Bearer key-1"
        assert request.headers["x-team"] == "one"
    assert three.headers["authorization"] == "Bearer EMPTY"
    assert "x-team" not in three.headers

    # The backend's models share its client: once it is closed, none of them can send.
    model = first.model()
    await first.aclose()
    assert first.client.is_closed()
    with pytest.raises(RuntimeError) as error:
        await model.get_response(**CALL)
    assert str(error.value) == "Cannot send a request, as the client has been closed."
    await second.aclose()


async def test_a_model_name_other_than_the_backends() -> None:
    names = ["openai/gpt-oss-20b", "openai/gpt-oss-120b"]
    async with MockVLLM([Reply(final="a"), Reply(final="b")], served_model_names=names) as mock:
        backend = server_backend("b", BackendSpec(base_url=mock.url, model="openai/gpt-oss-20b"))
        await backend.model().get_response(**CALL)
        await backend.model("openai/gpt-oss-120b").get_response(**CALL)
        await backend.aclose()
    assert [r.json["model"] for r in mock.model_requests] == names


def test_the_retry_policy_comes_from_the_spec() -> None:
    spec = BackendSpec(
        base_url="http://127.0.0.1:9/v1",
        model="m",
        max_retries=4,
        retry_budget_s=30,
        retry_delay_s=0.1,
        retry_max_delay_s=2,
        timeout_s=15,
    )
    backend = Backend(name="b", spec=spec, client=None)  # type: ignore[arg-type]
    assert backend.retry_policy == RetryPolicy(
        max_retries=4, budget_s=30, initial_delay_s=0.1, max_delay_s=2, attempt_timeout_s=15
    )
    defaults = Backend(name="b", spec=BackendSpec(base_url=spec.base_url, model="m"), client=None)  # type: ignore[arg-type]
    assert defaults.retry_policy == RetryPolicy(
        max_retries=2, budget_s=120, initial_delay_s=0.5, max_delay_s=10, attempt_timeout_s=120
    )


async def test_an_injected_http_client_is_used_and_left_open(mock: MockVLLM) -> None:
    sent: list[str] = []

    async def note(request: httpx2.Request) -> None:
        sent.append(str(request.url))

    async with httpx2.AsyncClient(event_hooks={"request": [note]}) as client:
        backend = server_backend(
            "b", BackendSpec(base_url=mock.url, model="openai/gpt-oss-20b"), http_client=client
        )
        assert not backend.owns_http_client
        mock.add(Reply(final="one"), Reply(final="two"))
        assert answer_text(await backend.model().get_response(**CALL)) == "one"
        await backend.aclose()
        assert not client.is_closed
        again = server_backend(
            "b", BackendSpec(base_url=mock.url, model="openai/gpt-oss-20b"), http_client=client
        )
        assert answer_text(await again.model().get_response(**CALL)) == "two"
        await again.aclose()
    assert sent == [f"{mock.url}/responses"] * 2


async def test_an_injected_http_client_stays_open(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(Reply(final="one"), Reply(final="two"))
    async with httpx2.AsyncClient() as client:
        for answer in ("one", "two"):
            async with Runtime.from_yaml(
                PROJECT, environ={"MOCK_URL": mock.url}, http_client=client, trace_path=False,
                sessions=SessionStore(tmp_path / "s.sqlite3"),
            ) as runtime:  # fmt: skip
                assert (await runtime.run("weather-haiku", "go")).final_output == answer
            assert not client.is_closed


async def test_reasoning_content_backend_for_older_vllm(tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends:\n"
        "  old:\n"
        "    api: chat_completions\n"
        "    reasoning_field: reasoning_content\n"
        "    base_url: ${MOCK_URL}\n"
        "    model: openai/gpt-oss-20b\n"
        "tools:\n"
        "  get_weather: {function: 'fixture_tools.basic:get_weather'}\n"
        "agents:\n"
        "  haiku: {instructions: Haiku., tools: [get_weather]}\n"
    )
    (tmp_path / "fixture_tools").symlink_to(PROJECT.parent / "fixture_tools")
    profile = VLLM_0_33.but(chat_reasoning_field="reasoning_content")
    async with (
        MockVLLM(haiku_script(), profile=profile) as mock,
        Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}, trace_path=False) as runtime,
    ):
        result = await runtime.run("haiku", "Weather?")
    assert result.final_output == HAIKU
    assistant = mock.model_requests[1].json["messages"][2]
    assert assistant["reasoning_content"] == "User wants Tokyo weather; call get_weather."
    assert assistant["content"] == ""


# -- in-process backends ----------------------------------------------------------------------


async def test_an_injected_engine_is_used_and_left_running() -> None:
    engine = FakeEngine(load_encoding(), [Reply(reasoning="Short.", final="Hello.")])
    spec = BackendSpec(kind="vllm-embedded", model="openai/gpt-oss-20b")
    backend = create_backend("gpu", spec, engine=engine)
    assert isinstance(backend, EmbeddedBackend)
    assert (backend.engine, backend.owns_engine, backend.url) == (engine, False, "in-process vLLM")
    response = await backend.model().get_response(**CALL)
    assert answer_text(response) == "Hello."
    assert len(engine.generations) == 1
    await backend.aclose()
    assert not engine.closed


async def test_an_engine_the_backend_started_is_shut_down_with_it() -> None:
    engine = FakeEngine(load_encoding())
    spec = BackendSpec(kind="vllm-embedded", model="openai/gpt-oss-20b")
    await EmbeddedBackend(name="gpu", spec=spec, engine=engine, owns_engine=True).aclose()
    assert engine.closed
