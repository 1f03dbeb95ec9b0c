"""Offline demo: a tool loop with the official `openai` client against the mock vLLM server.

The mock answers from examples/weather-haiku.mock.yaml; the loop sends the model's reasoning
back with each tool result, as vLLM needs for gpt-oss.
"""

from __future__ import annotations

import json
from pathlib import Path

from openai import OpenAI

from agent_runtime.testing import MockVLLM

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "weather-haiku.mock.yaml"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "condition": "sunny", "temperature_c": 21})


def main() -> None:
    with MockVLLM(SCRIPT) as mock:
        client = OpenAI(base_url=mock.url, api_key="EMPTY")
        transcript: list[dict[str, object]] = [
            {"role": "user", "content": "What's the weather in Tokyo?"}
        ]
        while True:
            response = client.responses.create(
                model="openai/gpt-oss-20b",
                instructions="You only respond in haikus.",
                input=transcript,  # type: ignore[arg-type]
                tools=TOOLS,  # type: ignore[arg-type]
            )
            calls = []
            for item in response.output:
                transcript.append(item.model_dump(exclude_none=True))
                if item.type == "reasoning":
                    print(f"[reasoning] {item.content[0].text if item.content else ''}")
                elif item.type == "function_call":
                    calls.append(item)
            if not calls:
                print(response.output_text)
                break
            for call in calls:
                result = get_weather(**json.loads(call.arguments))
                print(f"[tool] {call.name}({call.arguments}) -> {result}")
                transcript.append(
                    {"type": "function_call_output", "call_id": call.call_id, "output": result}
                )
        mock.assert_reasoning_returned(reply=0, request=1)
        mock.assert_script_consumed()
        print(f"({len(mock.model_requests)} model calls to {mock.url}; reasoning was sent back)")


if __name__ == "__main__":
    main()
