"""`/health`, `/ready`, `/metrics`, and `Runtime.observe`, the hook the metrics count from."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import openai
import pytest

from agent_runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply, call
from tests.server.ops_helpers import AGENTS_YAML, get, post, served

KEY = "sk-served-0123456789"


async def test_health_answers_while_the_model_server_is_down(tmp_path: Path) -> None:
    async with served("http://127.0.0.1:9/v1", tmp_path) as (url, _):
        response = await get(url + "/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_when_every_backend_answers(tmp_path: Path) -> None:
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path) as (url, _):
            response = await get(url + "/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "backends": {"mock": "ok", "chat": "ok"}}


async def test_not_ready_names_the_backends_that_do_not_answer(tmp_path: Path) -> None:
    async with served("http://127.0.0.1:9/v1", tmp_path) as (url, _):
        response = await get(url + "/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert set(body["backends"]) == {"mock", "chat"}
    assert all(state.startswith("unreachable: ") for state in body["backends"].values())


async def test_ready_sends_the_backends_key(tmp_path: Path) -> None:
    with MockVLLM(api_key="sk-backend-key-1234") as mock:
        async with served(mock.url, tmp_path) as (url, _):
            refused = await get(url + "/ready")
    assert refused.status_code == 503
    assert refused.json()["backends"]["mock"] == "GET /models answered 401"


async def test_metrics_count_runs_model_calls_tool_calls_tokens_and_rejections(
    tmp_path: Path,
) -> None:
    script = [
        Reply(reasoning="Look it up.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Rain.", final="Rain falls."),
    ]
    with MockVLLM(script) as mock:
        async with served(mock.url, tmp_path) as (url, _):
            async with openai.AsyncOpenAI(
                base_url=url + "/v1", api_key="unused", max_retries=0
            ) as client:
                await client.chat.completions.create(
                    model="weather-haiku", messages=[{"role": "user", "content": "Tokyo?"}]
                )
            await post(url + "/v1/chat/completions", content=b"x" * (5 * 1024 * 1024))
            response = await get(url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    agent = 'agent="weather-haiku"'
    assert samples[f'agent_runtime_runs_total{{{agent},outcome="completed"}}'] == 1
    assert samples[f'agent_runtime_run_duration_seconds_count{{{agent},outcome="completed"}}'] == 1
    assert samples[f"agent_runtime_runs_in_flight{{{agent}}}"] == 0
    assert samples[f"agent_runtime_model_calls_total{{{agent}}}"] == 2
    assert samples[f"agent_runtime_model_call_duration_seconds_count{{{agent}}}"] == 2
    assert samples[f'agent_runtime_tool_calls_total{{{agent},tool="get_weather"}}'] == 1
    assert (
        samples[f'agent_runtime_tool_call_duration_seconds_count{{{agent},tool="get_weather"}}']
        == 1
    )
    for kind in ("input", "output"):
        assert samples[f'agent_runtime_tokens_total{{{agent},kind="{kind}"}}'] > 0
    assert samples['agent_runtime_rejected_requests_total{reason="413"}'] == 1


def _samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


async def test_two_apps_keep_their_own_metrics(tmp_path: Path) -> None:
    from agent_runtime.server import create_app

    async with Runtime.from_yaml(AGENTS_YAML, environ={"STATE_DIR": str(tmp_path)}) as runtime:
        first, second = create_app(runtime), create_app(runtime)
        first.state.server.metrics.rejected("401")
        assert b'reason="401"' not in second.state.server.metrics.render()[0]


async def test_observe_hands_every_trace_record_to_listeners_even_with_tracing_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str | None]] = []
    script = [Reply(calls=[call("get_weather", city="Oslo")]), Reply(final="Snow.")] * 2
    with MockVLLM(script) as mock:
        async with Runtime.from_yaml(
            AGENTS_YAML,
            environ={"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)},
            trace_path=False,
        ) as runtime:

            def broken(record: Any) -> None:
                raise ValueError("listener bug")

            stop = runtime.observe(lambda record: seen.append((record["type"], record.get("name"))))
            runtime.observe(broken)
            result = await runtime.run("weather-haiku", "Oslo?")
            stop()
            again = await runtime.run("weather-haiku", "Oslo?")
    assert result.final_output == again.final_output == "Snow."
    assert seen == [
        ("run_start", None),
        ("model_call", None),
        ("tool_call", "get_weather"),
        ("model_call", None),
        ("run_end", None),
    ]
    assert "a trace listener failed on a run_start record: ValueError: listener bug" in caplog.text
    assert not (tmp_path / "traces.jsonl").exists()


async def test_the_access_log_has_one_line_per_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent_runtime.server.access")
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path) as (url, _):
            await get(url + "/health")
            await get(url + "/nowhere?token=abc")
    lines = [r.getMessage() for r in caplog.records if r.name == "agent_runtime.server.access"]
    assert len(lines) == 2
    method, path, status, took, size, client, key, agent = lines[0].split(" ")
    assert (method, path, status, size, key, agent) == (
        "GET",
        "/health",
        "200",
        "15B",
        "key=-",
        "agent=-",
    )
    assert took.endswith("ms")
    assert client.startswith("client=127.0.0.1:")
    assert lines[1].startswith("GET /nowhere 404 ")
    assert "token" not in lines[1]
