"""Tools of the benchmark's agents (scripts/bench.py): small, pure and repeatable."""

from __future__ import annotations

import json

__all__ = ["PAGE_CHARS", "get_weather", "read_page"]

PAGE_CHARS = 1024
_LINE = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. "


def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name, e.g. "Tokyo".
    """
    return json.dumps({"city": city, "condition": "sunny", "temperature_c": 21})


def read_page(city: str) -> str:
    """A 1 KB page of text about a city (the long-loop benchmark's tool output).

    Args:
        city: The city name, e.g. "Tokyo".
    """
    head = f"Page about {city}. "
    body = (_LINE * (PAGE_CHARS // len(_LINE) + 1))[: PAGE_CHARS - len(head)]
    return head + body
