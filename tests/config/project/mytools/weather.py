"""Weather tools for the config tests."""

from __future__ import annotations

UNITS = "celsius"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def geocode(place: str) -> tuple[float, float]:
    """Latitude and longitude of a place."""
    return (35.68, 139.69)
