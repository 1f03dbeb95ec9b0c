"""Weather tools on the public Open-Meteo API (no key needed).

agents.yaml references them as `tools.weather:get_weather`, `tools.weather:geocode` and
`tools.weather:current_weather`. Their parameters are exactly what the model fills in: each tool
opens a short-lived `httpx2.AsyncClient` through `_client()` and hands it to a private function
that does the work (`_geocode`, `_current_weather`, `_get_weather`). Tests call those with a
`MockTransport` client, or monkeypatch `_client` to drive the tools themselves.

A failure raises an exception whose message is meant for the model, which sees it verbatim:
`ValueError` for arguments out of range, `LookupError` for a place that does not exist,
`WeatherServiceError` when Open-Meteo cannot be reached or answers with an error.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

# pydantic (which the Agents SDK uses to describe tool outputs) needs typing_extensions'
# TypedDict before Python 3.12.
from typing_extensions import TypedDict

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "CityWeather",
    "CurrentWeather",
    "Place",
    "WeatherServiceError",
    "current_weather",
    "geocode",
    "get_weather",
]

GEOCODING_URL: Final = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST_URL: Final = "https://api.open-meteo.com/v1/forecast"
_GEOCODING_HOST: Final = urlsplit(GEOCODING_URL).hostname
_FORECAST_HOST: Final = urlsplit(FORECAST_URL).hostname

# Seconds allowed for one request to Open-Meteo, from connecting to the last byte.
_TIMEOUT_S = 5.0

_CURRENT_FIELDS: Final = (
    "temperature_2m",
    "relative_humidity_2m",
    "apparent_temperature",
    "precipitation",
    "weather_code",
    "wind_speed_10m",
)

# WMO weather interpretation codes, as Open-Meteo documents them.
_CONDITIONS: Final[Mapping[int, str]] = {
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "depositing rime fog",
    51: "light drizzle",
    53: "moderate drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "dense freezing drizzle",
    61: "light rain",
    63: "moderate rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "heavy freezing rain",
    71: "light snow",
    73: "moderate snow",
    75: "heavy snow",
    77: "snow grains",
    80: "light rain showers",
    81: "moderate rain showers",
    82: "violent rain showers",
    85: "light snow showers",
    86: "heavy snow showers",
    95: "thunderstorm",
    96: "thunderstorm with light hail",
    99: "thunderstorm with heavy hail",
}


class WeatherServiceError(Exception):
    """Open-Meteo could not be reached, or answered with an error or an unreadable body."""


class Place(TypedDict):
    """A place found by `geocode`."""

    name: str
    country: str
    latitude: float
    longitude: float
    timezone: str


class CurrentWeather(TypedDict):
    """The weather now at a place, as `current_weather` returns it.

    Attributes:
        temperature_c: air temperature 2 m above ground, °C.
        feels_like_c: apparent temperature, °C.
        humidity_percent: relative humidity 2 m above ground, %.
        precipitation_mm: rain, showers and snow in the current 15-minute interval, mm.
        wind_kmh: wind speed 10 m above ground, km/h.
        condition: the WMO weather code in words ("partly cloudy", "light rain", ...).
        time: local time of the reading at the place, ISO 8601 without offset.
        timezone: the place's IANA time zone, e.g. "Asia/Tokyo".
    """

    temperature_c: float
    feels_like_c: float
    humidity_percent: float
    precipitation_mm: float
    wind_kmh: float
    condition: str
    time: str
    timezone: str


class CityWeather(CurrentWeather):
    """The weather now in a city, as `get_weather` returns it."""

    city: str
    country: str


async def geocode(city: str, country_code: str | None = None) -> Place:
    """Find a city's coordinates and time zone.

    Args:
        city: The city name alone, e.g. "Tokyo" or "São Paulo" (no region or country).
        country_code: Two-letter ISO 3166-1 country code to narrow the search (e.g. "JP"), or null.
    """
    async with _client() as client:
        return await _geocode(client, city, country_code)


async def current_weather(latitude: float, longitude: float) -> CurrentWeather:
    """Get the current weather at a point: temperature, humidity, precipitation, wind, sky.

    Args:
        latitude: Latitude in degrees, from -90 (south) to 90 (north).
        longitude: Longitude in degrees, from -180 (west) to 180 (east).
    """
    async with _client() as client:
        return await _current_weather(client, latitude, longitude)


async def get_weather(city: str) -> CityWeather:
    """Get the current weather in a city: temperature, humidity, precipitation, wind, sky.

    Args:
        city: The city name alone, e.g. "Tokyo" or "São Paulo" (no region or country).
    """
    async with _client() as client:
        return await _get_weather(client, city)


def _client() -> httpx2.AsyncClient:
    """A new client for one tool call; tests monkeypatch this to inject a transport."""
    import httpx2  # imported on first call: `agent-runtime validate` imports this module

    return httpx2.AsyncClient(timeout=_TIMEOUT_S)


async def _geocode(client: httpx2.AsyncClient, city: str, country_code: str | None) -> Place:
    name = city.strip()
    if not name:
        raise ValueError("`city` is empty; give a city name such as 'Tokyo'")
    params: dict[str, str | int] = {"name": name, "count": 1, "language": "en", "format": "json"}
    if country_code is not None:
        code = country_code.strip()
        if not (len(code) == 2 and code.isascii() and code.isalpha()):
            raise ValueError(
                "`country_code` must be a two-letter ISO 3166-1 code such as 'JP', "
                f"not {country_code!r}"
            )
        params["countryCode"] = code.upper()
    payload = await _get_json(client, GEOCODING_URL, params)
    results = payload.get("results")
    if not results:
        if country_code is None:
            raise LookupError(
                f"no place named {name!r} found; check the spelling, and give the city name "
                "alone (e.g. 'Paris', not 'Paris, France')"
            )
        raise LookupError(
            f"no place named {name!r} found in country {params['countryCode']!r}; check the "
            "spelling and the country code, or leave `country_code` out"
        )
    host = _GEOCODING_HOST
    if not isinstance(results, list) or not isinstance(results[0], dict):
        raise _unexpected(host, "`results` is not a list of places")
    place: dict[str, Any] = results[0]
    return Place(
        name=_text(place, "name", host),
        country=str(place.get("country", "")),
        latitude=_number(place, "latitude", host),
        longitude=_number(place, "longitude", host),
        timezone=_text(place, "timezone", host),
    )


async def _current_weather(
    client: httpx2.AsyncClient, latitude: float, longitude: float
) -> CurrentWeather:
    if not -90 <= latitude <= 90:
        raise ValueError(f"`latitude` must be between -90 and 90 degrees, not {latitude!r}")
    if not -180 <= longitude <= 180:
        raise ValueError(f"`longitude` must be between -180 and 180 degrees, not {longitude!r}")
    params: dict[str, str | float] = {
        "latitude": latitude,
        "longitude": longitude,
        "current": ",".join(_CURRENT_FIELDS),
        "timezone": "auto",
    }
    payload = await _get_json(client, FORECAST_URL, params)
    host = _FORECAST_HOST
    current = payload.get("current")
    if not isinstance(current, dict):
        raise _unexpected(host, "no `current` object")
    code = _number(current, "weather_code", host)
    return CurrentWeather(
        temperature_c=_number(current, "temperature_2m", host),
        feels_like_c=_number(current, "apparent_temperature", host),
        humidity_percent=_number(current, "relative_humidity_2m", host),
        precipitation_mm=_number(current, "precipitation", host),
        wind_kmh=_number(current, "wind_speed_10m", host),
        condition=_condition(code),
        time=_text(current, "time", host),
        timezone=_text(payload, "timezone", host),
    )


async def _get_weather(client: httpx2.AsyncClient, city: str) -> CityWeather:
    place = await _geocode(client, city, None)
    weather = await _current_weather(client, place["latitude"], place["longitude"])
    return CityWeather(
        city=place["name"],
        country=place["country"],
        temperature_c=weather["temperature_c"],
        feels_like_c=weather["feels_like_c"],
        humidity_percent=weather["humidity_percent"],
        precipitation_mm=weather["precipitation_mm"],
        wind_kmh=weather["wind_kmh"],
        condition=weather["condition"],
        time=weather["time"],
        timezone=weather["timezone"],
    )


async def _get_json(
    client: httpx2.AsyncClient, url: str, params: Mapping[str, str | int | float]
) -> dict[str, Any]:
    """GET `url` once (no retries) and return its JSON object, or raise `WeatherServiceError`."""
    import httpx2

    host = urlsplit(url).hostname
    unreachable = f"the weather service at {host} could not be reached"
    try:
        # httpx2's timeout bounds each phase (connect, each read, ...); this bounds the whole.
        async with asyncio.timeout(_TIMEOUT_S):
            response = await client.get(url, params=params)
    except (httpx2.TimeoutException, TimeoutError) as exc:
        raise WeatherServiceError(f"{unreachable}: timed out after {_TIMEOUT_S:g} s") from exc
    except httpx2.ConnectError as exc:
        raise WeatherServiceError(f"{unreachable}: {_reason(exc, 'connection failed')}") from exc
    except httpx2.TransportError as exc:
        raise WeatherServiceError(f"{unreachable}: {_reason(exc, 'request failed')}") from exc
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.is_error:
        message = f"the weather service at {host} answered HTTP {response.status_code}"
        if response.reason_phrase:
            message += f" {response.reason_phrase}"
        # Open-Meteo explains refusals as {"error": true, "reason": "..."}.
        if isinstance(payload, dict) and isinstance(payload.get("reason"), str):
            message += f": {_brief(payload['reason'])}"
        raise WeatherServiceError(message)
    if not isinstance(payload, dict):
        raise _unexpected(host, "the body is not a JSON object")
    return payload


def _reason(exc: httpx2.TransportError, default: str) -> str:
    detail = str(exc).strip()
    return f"{default} ({_brief(detail)})" if detail else default


def _brief(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unexpected(host: str, what: str) -> WeatherServiceError:
    return WeatherServiceError(f"the weather service at {host} sent an unexpected answer: {what}")


def _number(data: Mapping[str, Any], key: str, host: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _unexpected(host, f"`{key}` is {value!r}, not a number")
    return value


def _condition(code: float) -> str:
    condition = _CONDITIONS.get(int(code)) if code == int(code) else None
    return condition or f"unknown (WMO weather code {code:g})"


def _text(data: Mapping[str, Any], key: str, host: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _unexpected(host, f"`{key}` is {value!r}, not a string")
    return value
