"""The guard in front of the routes (API keys, body size, draining, CORS) and the run gate
(per-key concurrency), through the official openai client and raw HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from agent_runtime.server.guard import fingerprint
from agent_runtime.server.options import ServeOptions
from agent_runtime.testing import MockVLLM, Reply
from tests.server.ops_helpers import WAIT_S, Held, get, metric, post, served, state_of

KEY = "sk-served-0123456789"
OTHER = "sk-other-9876543210"
HI = [{"role": "user", "content": "Hi"}]


def _client(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


async def _chat(url: str, key: str, agent: str = "weather-haiku") -> Any:
    async with _client(url, key) as client:
        return await client.chat.completions.create(model=agent, messages=HI)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            None,
            "no API key: send `Authorization: Bearer KEY` with one of the server's keys.",
            id="none",
        ),
        pytest.param("sk-wrong-key-000", "the API key is not valid for this server.", id="wrong"),
    ],
)
async def test_a_request_without_a_valid_key_is_401(
    tmp_path: Path, key: str | None, message: str
) -> None:
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path, ServeOptions(api_keys=(KEY,))) as (url, app):
            headers = {} if key is None else {"Authorization": f"Bearer {key}"}
            response = await post(
                url + "/v1/chat/completions",
                json={"model": "weather-haiku", "messages": HI},
                headers=headers,
            )
            assert metric(app, 'agent_runtime_rejected_requests_total{reason="401"} 1.0')
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="v1"'
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert mock.model_requests == []


async def test_the_openai_client_with_a_wrong_key_gets_an_authentication_error(
    tmp_path: Path,
) -> None:
    with MockVLLM([Reply(final="Hello.")]) as mock:
        async with served(mock.url, tmp_path, ServeOptions(api_keys=(KEY, OTHER))) as (url, _):
            with pytest.raises(openai.AuthenticationError) as caught:
                await _chat(url, "sk-wrong-key-000")
            answer = await _chat(url, OTHER)
    assert caught.value.status_code == 401
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "invalid_api_key"
    assert answer.choices[0].message.content == "Hello."


async def test_probes_and_metrics_are_open_when_keys_are_set(tmp_path: Path) -> None:
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path, ServeOptions(api_keys=(KEY,))) as (url, _):
            statuses = [(await get(url + path)).status_code for path in ("/health", "/ready")]
            metrics = await get(url + "/metrics")
            models = await get(url + "/v1/models")
    assert statuses == [200, 200]
    assert metrics.status_code == 200
    assert models.status_code == 401


async def test_the_access_log_names_the_key_by_its_fingerprint_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent_runtime.server.access")
    with MockVLLM([Reply(final="Hello.")]) as mock:
        async with served(mock.url, tmp_path, ServeOptions(api_keys=(KEY,))) as (url, _):
            await _chat(url, KEY)
            with pytest.raises(openai.AuthenticationError):
                await _chat(url, "sk-wrong-key-000")
    lines = [r.getMessage() for r in caplog.records if r.name == "agent_runtime.server.access"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /v1/chat/completions 200 ")
    assert lines[0].endswith(f"key={fingerprint(KEY)} agent=weather-haiku")
    assert lines[1].startswith("POST /v1/chat/completions 401 ")
    assert lines[1].endswith(" key=- agent=-")
    assert KEY not in caplog.text
    assert "sk-wrong-key-000" not in caplog.text


async def test_a_body_past_the_limit_is_413(tmp_path: Path) -> None:
    big = {"model": "weather-haiku", "messages": [{"role": "user", "content": "x" * 5000}]}

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(10):
            yield b" " * 600

    with MockVLLM() as mock:
        async with served(mock.url, tmp_path, ServeOptions(max_body_bytes=4096)) as (url, app):
            declared = await post(url + "/v1/chat/completions", json=big)
            streamed = await post(url + "/v1/chat/completions", content=chunked())
            async with _client(url, "unused") as client:
                with pytest.raises(openai.APIStatusError) as caught:
                    await client.chat.completions.create(
                        model="weather-haiku",
                        messages=big["messages"],  # type: ignore[arg-type]
                    )
            assert metric(app, 'agent_runtime_rejected_requests_total{reason="413"} 3.0')
    expected = {
        "error": {
            "message": "the request body is larger than the server accepts (4096 bytes, "
            "`serve.max_body_bytes`). Send less (fewer or smaller input items).",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_too_large",
        }
    }
    assert (declared.status_code, declared.json()) == (413, expected)
    assert (streamed.status_code, streamed.json()) == (413, expected)
    assert caught.value.status_code == 413
    assert mock.model_requests == []


async def test_runs_past_the_per_key_limit_get_429_with_retry_after(tmp_path: Path) -> None:
    held = Held(Reply(final="Slow."))
    options = ServeOptions(api_keys=(KEY, OTHER), max_runs_per_key=1)
    with MockVLLM([held.responder()], default=Reply(final="Quick.")) as mock:
        async with served(mock.url, tmp_path, options) as (url, app):
            first = asyncio.create_task(_chat(url, KEY))
            await held.wait_arrived()
            with pytest.raises(openai.RateLimitError) as caught:
                await _chat(url, KEY)
            other = await _chat(url, OTHER)  # another key has its own runs
            held.release.set()
            done = await asyncio.wait_for(first, WAIT_S)
            again = await _chat(url, KEY)
            assert metric(app, 'agent_runtime_rejected_requests_total{reason="429"} 1.0')
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert caught.value.body == {
        "message": "this API key already has 1 runs in flight (max_runs_per_key=1). Retry "
        "when one has finished, or raise `serve.max_runs_per_key`.",
        "type": "rate_limit_error",
        "param": None,
        "code": "too_many_runs",
    }
    assert other.choices[0].message.content == "Quick."
    assert done.choices[0].message.content == "Slow."
    assert again.choices[0].message.content == "Quick."
    assert len(mock.model_requests) == 3


async def test_while_draining_new_runs_get_503_and_runs_in_flight_finish(tmp_path: Path) -> None:
    held = Held(Reply(final="Finished."))
    with MockVLLM([held.responder()]) as mock:
        async with served(mock.url, tmp_path) as (url, app):
            gate = state_of(app).gate
            first = asyncio.create_task(_chat(url, "unused"))
            await held.wait_arrived()
            gate.start_draining()
            with pytest.raises(openai.InternalServerError) as caught:
                await _chat(url, "unused")
            ready = await get(url + "/ready")
            health = await get(url + "/health")
            models = await get(url + "/v1/models")
            assert gate.in_flight == 1
            assert await gate.drained(0) is False
            held.release.set()
            assert await gate.drained(WAIT_S) is True
            done = await asyncio.wait_for(first, WAIT_S)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["Retry-After"] == "5"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "draining"
    assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
    assert health.status_code == 200
    assert models.status_code == 200  # reads go on while the runs in flight finish
    assert done.choices[0].message.content == "Finished."
    assert len(mock.model_requests) == 1


async def test_cors_is_off_unless_origins_are_configured(tmp_path: Path) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with MockVLLM() as mock:
        async with (
            served(mock.url, tmp_path, ServeOptions(api_keys=(KEY,))) as (url, _),
            httpx2.AsyncClient(timeout=WAIT_S) as http,
        ):
            off = await http.options(url + "/v1/chat/completions", headers=preflight)
        options = ServeOptions(api_keys=(KEY,), cors_origins=("https://app.example",))
        async with (
            served(mock.url, tmp_path, options) as (url, _),
            httpx2.AsyncClient(timeout=WAIT_S) as http,
        ):
            on = await http.options(url + "/v1/chat/completions", headers=preflight)
            other = await http.options(
                url + "/v1/chat/completions",
                headers=preflight | {"Origin": "https://evil.example"},
            )
    assert "access-control-allow-origin" not in off.headers
    assert on.status_code == 200
    assert on.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in on.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
