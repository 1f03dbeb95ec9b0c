"""The repository's own agents.yaml: its agents run their real tools (Open-Meteo mocked)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from agent_runtime import Runtime, load_config
from agent_runtime.testing import MockVLLM, Reply, call
from tests import helpers

ROOT = helpers.ROOT
AGENTS = ROOT / "agents.yaml"

GEO = {
    "Tokyo": {"name": "Tokyo", "latitude": 35.6895, "longitude": 139.69171, "country": "Japan",
              "country_code": "JP", "timezone": "Asia/Tokyo"},
    "Oslo": {"name": "Oslo", "latitude": 59.91273, "longitude": 10.74609, "country": "Norway",
             "country_code": "NO", "timezone": "Europe/Oslo"},
}  # fmt: skip
CURRENT = {35.6895: (12.3, 2), 59.91273: (-3.5, 71)}


def open_meteo(request: httpx2.Request) -> httpx2.Response:
    if request.url.host == "geocoding-api.open-meteo.com":
        place = GEO.get(request.url.params["name"])
        return httpx2.Response(200, json={"results": [place]} if place else {})
    latitude = float(request.url.params["latitude"])
    temperature, code = CURRENT[latitude]
    return httpx2.Response(
        200,
        json={
            "latitude": latitude,
            "longitude": float(request.url.params["longitude"]),
            "timezone": "GMT",
            "current": {
                "time": "2026-11-22T10:00",
                "interval": 900,
                "temperature_2m": temperature,
                "relative_humidity_2m": 60,
                "apparent_temperature": temperature - 1,
                "precipitation": 0.0,
                "weather_code": code,
                "wind_speed_10m": 8.4,
            },
        },
    )


@pytest.fixture
def weather_api(monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.weather

    def client() -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(open_meteo))

    monkeypatch.setattr(tools.weather, "_client", client)


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


def runtime_for(mock: MockVLLM, tmp_path: Path, **options: Any) -> Runtime:
    return Runtime.from_yaml(
        AGENTS,
        environ={"VLLM_BASE_URL": mock.url},
        trace_path=tmp_path / "trace.jsonl",
        **options,
    )


def test_example_declaration_loads() -> None:
    config = load_config(AGENTS, environ={})
    assert list(config.spec.agents) == ["weather-haiku", "weather-compare", "concierge"]
    assert config.spec.backends["local"].base_url == "http://localhost:8000/v1"
    assert config.instructions["weather-haiku"] == "You only respond in haikus."


@pytest.mark.usefixtures("weather_api")
async def test_weather_compare_uses_two_tools_in_sequence(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(
        Reply(
            reasoning="Find both places first.",
            calls=[call("geocode", city="Tokyo"), call("geocode", city="Oslo")],
        ),
        Reply(
            reasoning="Now the weather at those coordinates.",
            calls=[
                call("current_weather", latitude=35.6895, longitude=139.69171),
                call("current_weather", latitude=59.91273, longitude=10.74609),
            ],
        ),
        Reply(reasoning="Compare.", final="Tokyo is 12.3 °C and partly cloudy; Oslo -3.5 °C."),
    )
    async with runtime_for(mock, tmp_path) as runtime:
        result = await runtime.run("weather-compare", "Compare Tokyo and Oslo.")
    assert result.final_output.startswith("Tokyo is 12.3 °C")
    places = [json.loads(o.output) for o in mock.model_requests[1].function_outputs]
    assert [p["latitude"] for p in places] == [35.6895, 59.91273]
    weather = [json.loads(o.output) for o in mock.model_requests[2].function_outputs[2:]]
    assert [(w["temperature_c"], w["condition"]) for w in weather] == [
        (12.3, "partly cloudy"),
        (-3.5, "light snow"),
    ]
    assert [t["name"] for t in mock.model_requests[0].json["tools"]] == [
        "geocode",
        "current_weather",
    ]


@pytest.mark.usefixtures("weather_api")
async def test_concierge_hands_off_to_the_haiku_agent(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(
        Reply(reasoning="A poem.", calls=[call("transfer_to_weather_haiku")]),
        Reply(reasoning="Weather first.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Write it.", final="Cold light on Tokyo"),
    )
    async with runtime_for(mock, tmp_path) as runtime:
        result = await runtime.run("concierge", "A haiku about the weather in Tokyo.")
    assert (result.agent, result.final_output) == ("weather-haiku", "Cold light on Tokyo")
    weather = json.loads(mock.model_requests[2].function_outputs[-1].output)
    assert (weather["city"], weather["temperature_c"]) == ("Tokyo", 12.3)


async def test_agents_of_one_backend_share_one_client(mock: MockVLLM, tmp_path: Path) -> None:
    async with runtime_for(mock, tmp_path) as runtime:
        models = [runtime.agent(name).model for name in runtime.agent_names]
        clients = {id(model._client) for model in models}  # type: ignore[union-attr]
    assert len(clients) == 1


async def test_secrets_stay_out_of_logs(
    mock: MockVLLM, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-very-secret-key"
    mock.add(Reply(final="hi"))
    caplog.set_level(logging.DEBUG)
    async with runtime_for(mock, tmp_path, api_key=secret) as runtime:
        await runtime.run("weather-haiku", "hi")
    assert secret not in caplog.text
    assert secret not in (tmp_path / "trace.jsonl").read_text()


SDK_TRACING_PROBE = """
import asyncio, json, sys
from agents import TracingProcessor, add_trace_processor
from agent_runtime import Runtime
from agent_runtime.testing import MockVLLM, Reply

seen = []

class Recorder(TracingProcessor):
    def on_trace_start(self, trace): seen.append("trace")
    def on_trace_end(self, trace): pass
    def on_span_start(self, span): seen.append("span")
    def on_span_end(self, span): pass
    def shutdown(self): pass
    def force_flush(self): pass

add_trace_processor(Recorder())  # a probe only: the runtime itself never touches SDK globals

async def main():
    async with MockVLLM([Reply(final="hi")]) as mock:
        environ = {"VLLM_BASE_URL": mock.url}
        async with Runtime.from_yaml(sys.argv[1], environ=environ, trace_path=False) as runtime:
            await runtime.run("weather-haiku", "hi")
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_the_sdk_records_no_traces_to_export(tmp_path: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", SDK_TRACING_PROBE, str(AGENTS)],
        capture_output=True,
        text=True,
        env={"OPENAI_API_KEY": "sk-dummy", "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"
    assert "Tracing" not in probe.stderr
