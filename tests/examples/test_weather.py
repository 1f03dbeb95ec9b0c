"""tools.weather: Open-Meteo requests, answers and errors, through httpx2.MockTransport."""

from __future__ import annotations

import ast
import asyncio
import math
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool
from openai import AsyncOpenAI

from agent_runtime.testing import MockVLLM, Reply, call
from tools import weather
from tools.weather import WeatherServiceError, current_weather, geocode, get_weather

TOKYO = {
    "id": 1850147,
    "name": "Tokyo",
    "latitude": 35.6895,
    "longitude": 139.69171,
    "elevation": 44.0,
    "feature_code": "PPLC",
    "country_code": "JP",
    "admin1_id": 1850144,
    "timezone": "Asia/Tokyo",
    "population": 8336599,
    "country_id": 1861060,
    "country": "Japan",
    "admin1": "Tokyo",
}
FOUND = {"results": [TOKYO], "generationtime_ms": 0.91}
NOT_FOUND = {"generationtime_ms": 0.52}  # Open-Meteo leaves `results` out when nothing matches


def forecast(**current: Any) -> dict[str, Any]:
    """An Open-Meteo forecast answer for Tokyo; keyword arguments override `current` fields."""
    return {
        "latitude": 35.7,
        "longitude": 139.6875,
        "generationtime_ms": 0.043,
        "utc_offset_seconds": 32400,
        "timezone": "Asia/Tokyo",
        "timezone_abbreviation": "GMT+9",
        "elevation": 40.0,
        "current_units": {
            "time": "iso8601",
            "interval": "seconds",
            "temperature_2m": "°C",
            "relative_humidity_2m": "%",
            "apparent_temperature": "°C",
            "precipitation": "mm",
            "weather_code": "wmo code",
            "wind_speed_10m": "km/h",
        },
        "current": {
            "time": "2026-11-22T10:00",
            "interval": 900,
            "temperature_2m": 12.3,
            "relative_humidity_2m": 60,
            "apparent_temperature": 10.9,
            "precipitation": 0.0,
            "weather_code": 2,
            "wind_speed_10m": 8.4,
        }
        | current,
    }


def refusal(status: int, reason: str) -> httpx2.Response:
    """An error answer as Open-Meteo words it."""
    return httpx2.Response(status, json={"error": True, "reason": reason})


TOKYO_WEATHER = {
    "temperature_c": 12.3,
    "feels_like_c": 10.9,
    "humidity_percent": 60,
    "precipitation_mm": 0.0,
    "wind_kmh": 8.4,
    "condition": "partly cloudy",
    "time": "2026-11-22T10:00",
    "timezone": "Asia/Tokyo",
}

SEARCH_TOKYO = (
    "https://geocoding-api.open-meteo.com/v1/search?name=Tokyo&count=1&language=en&format=json"
)
FORECAST_TOKYO = (
    "https://api.open-meteo.com/v1/forecast?latitude=35.6895&longitude=139.69171"
    "&current=temperature_2m%2Crelative_humidity_2m%2Capparent_temperature%2Cprecipitation"
    "%2Cweather_code%2Cwind_speed_10m&timezone=auto"
)

Answer = dict[str, Any] | httpx2.Response | Exception | Callable[[httpx2.Request], Any]


class OpenMeteo:
    """A scripted Open-Meteo: answers requests in order and records them."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []
        self.clients: list[httpx2.AsyncClient] = []

    @property
    def urls(self) -> list[str]:
        return [str(request.url) for request in self.requests]

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            result: httpx2.Response = await answer(request)
            return result
        if isinstance(answer, httpx2.Response):
            return answer
        return httpx2.Response(200, json=answer)

    def client(self) -> httpx2.AsyncClient:
        """A client on this transport; also the stand-in for `weather._client`."""
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(self.handle))
        self.clients.append(client)
        return client


# The internals, with an injected client.


async def test_geocode_searches_one_place_in_english() -> None:
    api = OpenMeteo(FOUND)
    async with api.client() as client:
        place = await weather._geocode(client, "Tokyo", None)
    assert api.urls == [SEARCH_TOKYO]
    assert place == {
        "name": "Tokyo",
        "country": "Japan",
        "latitude": 35.6895,
        "longitude": 139.69171,
        "timezone": "Asia/Tokyo",
    }


async def test_geocode_narrows_by_country_code() -> None:
    api = OpenMeteo(FOUND)
    async with api.client() as client:
        place = await weather._geocode(client, "  Tokyo ", " jp")
    assert api.urls == [SEARCH_TOKYO + "&countryCode=JP"]
    assert place["country"] == "Japan"


async def test_geocode_unknown_city() -> None:
    api = OpenMeteo(NOT_FOUND)
    async with api.client() as client:
        with pytest.raises(LookupError) as info:
            await weather._geocode(client, "Tokio, Japan", None)
    assert str(info.value) == (
        "no place named 'Tokio, Japan' found; check the spelling, and give the city name alone "
        "(e.g. 'Paris', not 'Paris, France')"
    )


async def test_geocode_unknown_city_in_country() -> None:
    api = OpenMeteo({"results": [], "generationtime_ms": 0.4})
    async with api.client() as client:
        with pytest.raises(LookupError) as info:
            await weather._geocode(client, "Tokyo", "fr")
    assert api.urls == [SEARCH_TOKYO + "&countryCode=FR"]
    assert str(info.value) == (
        "no place named 'Tokyo' found in country 'FR'; check the spelling and the country code, "
        "or leave `country_code` out"
    )


@pytest.mark.parametrize(
    ("city", "country_code", "message"),
    [
        pytest.param("", None, "`city` is empty; give a city name such as 'Tokyo'", id="empty"),
        pytest.param(" \t", None, "`city` is empty; give a city name such as 'Tokyo'", id="blank"),
        pytest.param(
            "Tokyo",
            "Japan",
            "`country_code` must be a two-letter ISO 3166-1 code such as 'JP', not 'Japan'",
            id="country-name",
        ),
        pytest.param(
            "Tokyo",
            "J1",
            "`country_code` must be a two-letter ISO 3166-1 code such as 'JP', not 'J1'",
            id="digit",
        ),
    ],
)
async def test_geocode_rejects_bad_arguments_without_asking(
    city: str, country_code: str | None, message: str
) -> None:
    api = OpenMeteo()
    async with api.client() as client:
        with pytest.raises(ValueError) as info:
            await weather._geocode(client, city, country_code)
    assert str(info.value) == message
    assert api.requests == []


async def test_current_weather_asks_for_the_current_fields_in_local_time() -> None:
    api = OpenMeteo(forecast())
    async with api.client() as client:
        now = await weather._current_weather(client, 35.6895, 139.69171)
    assert api.urls == [FORECAST_TOKYO]
    assert dict(api.requests[0].url.params) == {
        "latitude": "35.6895",
        "longitude": "139.69171",
        "current": "temperature_2m,relative_humidity_2m,apparent_temperature,precipitation,"
        "weather_code,wind_speed_10m",
        "timezone": "auto",
    }
    assert now == TOKYO_WEATHER


@pytest.mark.parametrize(
    ("code", "condition"),
    [
        (0, "clear sky"),
        (1, "mainly clear"),
        (3, "overcast"),
        (45, "fog"),
        (53, "moderate drizzle"),
        (57, "dense freezing drizzle"),
        (65, "heavy rain"),
        (75, "heavy snow"),
        (81, "moderate rain showers"),
        (95, "thunderstorm"),
        (99, "thunderstorm with heavy hail"),
        (42, "unknown (WMO weather code 42)"),
        (2.5, "unknown (WMO weather code 2.5)"),
    ],
)
async def test_current_weather_names_the_wmo_code(code: float, condition: str) -> None:
    api = OpenMeteo(forecast(weather_code=code))
    async with api.client() as client:
        now = await weather._current_weather(client, 35.6895, 139.69171)
    assert now["condition"] == condition


@pytest.mark.parametrize(
    ("latitude", "longitude", "message"),
    [
        pytest.param(90.5, 0.0, "`latitude` must be between -90 and 90 degrees, not 90.5"),
        pytest.param(-91, 0.0, "`latitude` must be between -90 and 90 degrees, not -91"),
        pytest.param(0.0, 180.1, "`longitude` must be between -180 and 180 degrees, not 180.1"),
        pytest.param(0.0, -200, "`longitude` must be between -180 and 180 degrees, not -200"),
        pytest.param(math.nan, 0.0, "`latitude` must be between -90 and 90 degrees, not nan"),
    ],
)
async def test_current_weather_rejects_coordinates_out_of_range(
    latitude: float, longitude: float, message: str
) -> None:
    api = OpenMeteo()
    async with api.client() as client:
        with pytest.raises(ValueError) as info:
            await weather._current_weather(client, latitude, longitude)
    assert str(info.value) == message
    assert api.requests == []


async def test_current_weather_accepts_the_edges() -> None:
    api = OpenMeteo(forecast(), forecast())
    async with api.client() as client:
        await weather._current_weather(client, -90, 180)
        await weather._current_weather(client, 90, -180)
    assert [dict(r.url.params)["latitude"] for r in api.requests] == ["-90", "90"]


async def test_get_weather_geocodes_then_asks_for_the_weather_there() -> None:
    api = OpenMeteo(FOUND, forecast())
    async with api.client() as client:
        result = await weather._get_weather(client, "Tokyo")
    assert api.urls == [SEARCH_TOKYO, FORECAST_TOKYO]
    assert result == {"city": "Tokyo", "country": "Japan", **TOKYO_WEATHER}
    assert list(result)[:2] == ["city", "country"]


async def test_get_weather_unknown_city_stops_after_the_search() -> None:
    api = OpenMeteo(NOT_FOUND)
    async with api.client() as client:
        with pytest.raises(LookupError, match=r"^no place named 'Tokio' found; "):
            await weather._get_weather(client, "Tokio")
    assert len(api.requests) == 1


# Failures of the service: one request each (no retries), and a message for the model.


async def never_answer(request: httpx2.Request) -> httpx2.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            httpx2.ConnectError("[Errno 111] Connection refused"),
            "the weather service at geocoding-api.open-meteo.com could not be reached: "
            "connection failed ([Errno 111] Connection refused)",
            id="connection-refused",
        ),
        pytest.param(
            httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"),
            "the weather service at geocoding-api.open-meteo.com could not be reached: "
            "connection failed ([Errno -3] Temporary failure in name resolution)",
            id="offline",
        ),
        pytest.param(
            httpx2.ConnectError(""),
            "the weather service at geocoding-api.open-meteo.com could not be reached: "
            "connection failed",
            id="connect-error-without-detail",
        ),
        pytest.param(
            httpx2.ConnectTimeout("timed out"),
            "the weather service at geocoding-api.open-meteo.com could not be reached: "
            "timed out after 5 s",
            id="connect-timeout",
        ),
        pytest.param(
            httpx2.ReadTimeout("timed out"),
            "the weather service at geocoding-api.open-meteo.com could not be reached: "
            "timed out after 5 s",
            id="read-timeout",
        ),
        pytest.param(
            httpx2.RemoteProtocolError("Server disconnected without sending a response."),
            "the weather service at geocoding-api.open-meteo.com could not be reached: "
            "request failed (Server disconnected without sending a response.)",
            id="disconnected",
        ),
        pytest.param(
            httpx2.Response(500, text="Internal Server Error"),
            "the weather service at geocoding-api.open-meteo.com answered HTTP 500 "
            "Internal Server Error",
            id="http-500",
        ),
        pytest.param(
            refusal(429, "Minutely API request limit exceeded. Please try again in one minute."),
            "the weather service at geocoding-api.open-meteo.com answered HTTP 429 "
            "Too Many Requests: Minutely API request limit exceeded. Please try again in one "
            "minute.",
            id="http-429-with-reason",
        ),
        pytest.param(
            httpx2.Response(200, text="<html>maintenance</html>"),
            "the weather service at geocoding-api.open-meteo.com sent an unexpected answer: "
            "the body is not a JSON object",
            id="not-json",
        ),
        pytest.param(
            httpx2.Response(200, json=[FOUND]),
            "the weather service at geocoding-api.open-meteo.com sent an unexpected answer: "
            "the body is not a JSON object",
            id="json-list",
        ),
        pytest.param(
            {"results": [dict(TOKYO, latitude=None)]},
            "the weather service at geocoding-api.open-meteo.com sent an unexpected answer: "
            "`latitude` is None, not a number",
            id="no-latitude",
        ),
        pytest.param(
            {"results": "Tokyo"},
            "the weather service at geocoding-api.open-meteo.com sent an unexpected answer: "
            "`results` is not a list of places",
            id="results-not-a-list",
        ),
    ],
)
async def test_geocode_service_failures(answer: Answer, message: str) -> None:
    api = OpenMeteo(answer)
    async with api.client() as client:
        with pytest.raises(WeatherServiceError) as info:
            await weather._geocode(client, "Tokyo", None)
    assert str(info.value) == message
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            httpx2.ConnectError("[Errno 111] Connection refused"),
            "the weather service at api.open-meteo.com could not be reached: "
            "connection failed ([Errno 111] Connection refused)",
            id="connection-refused",
        ),
        pytest.param(
            httpx2.ReadTimeout("timed out"),
            "the weather service at api.open-meteo.com could not be reached: timed out after 5 s",
            id="read-timeout",
        ),
        pytest.param(
            httpx2.Response(500, text="Internal Server Error"),
            "the weather service at api.open-meteo.com answered HTTP 500 Internal Server Error",
            id="http-500",
        ),
        pytest.param(
            refusal(400, "Latitude must be in range of -90 to 90°. Given: 91.0."),
            "the weather service at api.open-meteo.com answered HTTP 400 Bad Request: "
            "Latitude must be in range of -90 to 90°. Given: 91.0.",
            id="http-400-with-reason",
        ),
        pytest.param(
            refusal(502, "x" * 300),
            "the weather service at api.open-meteo.com answered HTTP 502 Bad Gateway: "
            + "x" * 199
            + "…",
            id="long-reason-cut",
        ),
        pytest.param(
            {"latitude": 35.7, "longitude": 139.6875, "timezone": "Asia/Tokyo"},
            "the weather service at api.open-meteo.com sent an unexpected answer: "
            "no `current` object",
            id="no-current",
        ),
        pytest.param(
            forecast(temperature_2m=None),
            "the weather service at api.open-meteo.com sent an unexpected answer: "
            "`temperature_2m` is None, not a number",
            id="null-temperature",
        ),
        pytest.param(
            forecast(weather_code=True),
            "the weather service at api.open-meteo.com sent an unexpected answer: "
            "`weather_code` is True, not a number",
            id="bool-code",
        ),
        pytest.param(
            forecast(time=None),
            "the weather service at api.open-meteo.com sent an unexpected answer: "
            "`time` is None, not a string",
            id="no-time",
        ),
    ],
)
async def test_current_weather_service_failures(answer: Answer, message: str) -> None:
    api = OpenMeteo(answer)
    async with api.client() as client:
        with pytest.raises(WeatherServiceError) as info:
            await weather._current_weather(client, 35.6895, 139.69171)
    assert str(info.value) == message
    assert len(api.requests) == 1


async def test_a_request_has_a_deadline_for_the_whole_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx2's own timeout bounds each read; the deadline also stops a server that trickles.
    monkeypatch.setattr(weather, "_TIMEOUT_S", 0.05)
    api = OpenMeteo(never_answer)
    async with api.client() as client:
        with pytest.raises(WeatherServiceError) as info:
            await weather._current_weather(client, 35.6895, 139.69171)
    assert str(info.value) == (
        "the weather service at api.open-meteo.com could not be reached: timed out after 0.05 s"
    )


async def test_the_cause_is_kept_for_logs() -> None:
    refused = httpx2.ConnectError("[Errno 111] Connection refused")
    api = OpenMeteo(refused)
    async with api.client() as client:
        with pytest.raises(WeatherServiceError) as info:
            await weather._get_weather(client, "Tokyo")
    assert info.value.__cause__ is refused


# The tools themselves, with `_client` replaced.


@pytest.fixture
def open_meteo(monkeypatch: pytest.MonkeyPatch) -> Callable[..., OpenMeteo]:
    def install(*answers: Answer) -> OpenMeteo:
        api = OpenMeteo(*answers)
        monkeypatch.setattr(weather, "_client", api.client)
        return api

    return install


async def test_get_weather_tool(open_meteo: Callable[..., OpenMeteo]) -> None:
    api = open_meteo(FOUND, forecast())
    assert await get_weather("Tokyo") == {"city": "Tokyo", "country": "Japan", **TOKYO_WEATHER}
    assert api.urls == [SEARCH_TOKYO, FORECAST_TOKYO]
    # One client for both requests, closed when the tool returns.
    assert len(api.clients) == 1
    assert api.clients[0].is_closed


async def test_geocode_tool(open_meteo: Callable[..., OpenMeteo]) -> None:
    api = open_meteo(FOUND, FOUND)
    assert (await geocode("Tokyo"))["timezone"] == "Asia/Tokyo"
    assert (await geocode("Tokyo", "JP"))["latitude"] == 35.6895
    assert api.urls == [SEARCH_TOKYO, SEARCH_TOKYO + "&countryCode=JP"]
    assert all(client.is_closed for client in api.clients)


async def test_current_weather_tool(open_meteo: Callable[..., OpenMeteo]) -> None:
    api = open_meteo(forecast())
    assert await current_weather(35.6895, 139.69171) == TOKYO_WEATHER
    assert api.urls == [FORECAST_TOKYO]


async def test_tool_failure_closes_the_client(open_meteo: Callable[..., OpenMeteo]) -> None:
    api = open_meteo(httpx2.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(WeatherServiceError) as info:
        await get_weather("Tokyo")
    assert str(info.value) == (
        "the weather service at geocoding-api.open-meteo.com could not be reached: "
        "connection failed ([Errno 111] Connection refused)"
    )
    assert api.clients[0].is_closed


async def test_default_client_has_a_short_timeout() -> None:
    async with weather._client() as client:
        assert client.timeout == httpx2.Timeout(5.0)


# What the model sees.


def test_get_weather_schema() -> None:
    tool = function_tool(get_weather)
    assert tool.name == "get_weather"
    assert tool.description == (
        "Get the current weather in a city: temperature, humidity, precipitation, wind, sky."
    )
    assert tool.params_json_schema == {
        "type": "object",
        "title": "get_weather_args",
        "properties": {
            "city": {
                "type": "string",
                "title": "City",
                "description": 'The city name alone, e.g. "Tokyo" or "São Paulo" '
                "(no region or country).",
            }
        },
        "required": ["city"],
        "additionalProperties": False,
    }


def test_geocode_schema() -> None:
    tool = function_tool(geocode)
    assert tool.description == "Find a city's coordinates and time zone."
    assert tool.params_json_schema == {
        "type": "object",
        "title": "geocode_args",
        "properties": {
            "city": {
                "type": "string",
                "title": "City",
                "description": 'The city name alone, e.g. "Tokyo" or "São Paulo" '
                "(no region or country).",
            },
            "country_code": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "title": "Country Code",
                "description": "Two-letter ISO 3166-1 country code to narrow the search "
                '(e.g. "JP"), or null.',
            },
        },
        "required": ["city", "country_code"],
        "additionalProperties": False,
    }


def test_current_weather_schema() -> None:
    tool = function_tool(current_weather)
    assert tool.description == (
        "Get the current weather at a point: temperature, humidity, precipitation, wind, sky."
    )
    assert tool.params_json_schema == {
        "type": "object",
        "title": "current_weather_args",
        "properties": {
            "latitude": {
                "type": "number",
                "title": "Latitude",
                "description": "Latitude in degrees, from -90 (south) to 90 (north).",
            },
            "longitude": {
                "type": "number",
                "title": "Longitude",
                "description": "Longitude in degrees, from -180 (west) to 180 (east).",
            },
        },
        "required": ["latitude", "longitude"],
        "additionalProperties": False,
    }


async def test_an_agent_calls_get_weather(
    mock_vllm: MockVLLM, open_meteo: Callable[..., OpenMeteo]
) -> None:
    open_meteo(FOUND, forecast())
    mock_vllm.add(
        Reply(
            reasoning="Tokyo's weather, then a haiku.", calls=(call("get_weather", city="Tokyo"),)
        ),
        Reply(reasoning="Partly cloudy, 12 °C.", final="Clouds drift over Tokyo..."),
    )
    async with AsyncOpenAI(base_url=mock_vllm.url, api_key="EMPTY") as client:
        agent = Agent(
            name="weather-haiku",
            instructions="You only respond in haikus.",
            model=OpenAIResponsesModel("openai/gpt-oss-20b", openai_client=client),
            tools=[function_tool(get_weather)],
        )
        result = await Runner.run(
            agent, "Weather in Tokyo?", run_config=RunConfig(tracing_disabled=True)
        )
    assert result.final_output == "Clouds drift over Tokyo..."
    mock_vllm.assert_script_consumed()
    output = mock_vllm.model_requests[1].function_outputs[0].output
    # The SDK sends a dict result as its str(); it reads back as the same dict.
    assert ast.literal_eval(output) == {"city": "Tokyo", "country": "Japan", **TOKYO_WEATHER}
