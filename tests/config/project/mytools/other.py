"""A second module whose function has the same name as one in `weather`."""

from __future__ import annotations


def get_weather(city: str) -> str:
    """Another weather source."""
    return f"Cloudy in {city}"


shout = lambda text: text.upper()  # noqa: E731  # a lambda's __name__ is not a valid tool name
