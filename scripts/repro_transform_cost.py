"""Stand-alone reproduction, for the openai-python and openai-agents maintainers, of two costs
that grow with the transcript of an agent loop (see docs/upstream-notes.md).

    uv run python scripts/repro_transform_cost.py

1. `AsyncOpenAI.responses.create(**kwargs)` spends most of its CPU in
   `openai._utils._transform.async_maybe_transform` over the whole `input` list.
2. A bare Agents SDK tool loop: its CPU per turn grows with the number of earlier turns (the
   client's transform above, plus the run loop re-processing every earlier item on every turn:
   `_to_dump_compatible`, `_dedupe_processed_response_invocations`, `run_item_to_input_item`).

Needs only openai, openai-agents and the standard library: a local stub server answers every
request with a canned Responses object (a tool call until the step count is reached, then a
message), on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STEPS_PER_RUN = (1, 10, 40, 100)


def _response(call: bool, n: int) -> bytes:
    item: dict[str, Any]
    if call:
        item = {
            "arguments": '{"city": "Tokyo"}',
            "call_id": f"call_{n}_{time.perf_counter_ns()}",
            "name": "get_weather",
            "type": "function_call",
            "id": f"fc_{n}",
            "status": "completed",
        }
    else:
        item = {
            "id": "msg_1",
            "content": [{"annotations": [], "text": "done", "type": "output_text"}],
            "role": "assistant",
            "status": "completed",
            "type": "message",
        }
    reasoning = {
        "id": f"rs_{n}",
        "summary": [],
        "type": "reasoning",
        "content": [{"text": "Think about the weather. " * 10, "type": "reasoning_text"}],
    }
    body = {
        "id": "resp_1",
        "created_at": 0,
        "model": "openai/gpt-oss-20b",
        "object": "response",
        "output": [reasoning, item],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "status": "completed",
    }
    return json.dumps(body).encode()


class _Stub(BaseHTTPRequestHandler):
    steps = 1

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        outputs = sum(
            1 for i in request.get("input", []) if i.get("type") == "function_call_output"
        )
        body = _response(outputs < self.steps, outputs)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _transcript(steps: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
    for n in range(steps):
        items += [
            {
                "id": f"rs_{n}",
                "summary": [],
                "type": "reasoning",
                "content": [{"text": "Think about the weather. " * 10, "type": "reasoning_text"}],
            },
            {
                "arguments": '{"city": "Tokyo"}',
                "call_id": f"call_{n}",
                "name": "get_weather",
                "type": "function_call",
                "id": f"fc_{n}",
            },
            {"call_id": f"call_{n}", "output": "x" * 1000, "type": "function_call_output"},
        ]
    return items


async def client_cost(url: str) -> None:
    from openai import AsyncOpenAI

    print("1. AsyncOpenAI.responses.create, CPU ms per request (stub answers at once)")
    async with AsyncOpenAI(base_url=url, api_key="x", max_retries=0) as client:
        for steps in STEPS_PER_RUN:
            kwargs = {"model": "m", "input": _transcript(steps)}
            await client.responses.create(**kwargs)  # type: ignore[call-overload]
            repeats = 20 if steps < 100 else 5
            started = time.process_time()
            for _ in range(repeats):
                await client.responses.create(**kwargs)  # type: ignore[call-overload]
            per = (time.process_time() - started) / repeats * 1000
            size = len(json.dumps(kwargs)) // 1024
            print(f"   {steps:3} prior tool turns ({size:3} KB): {per:7.1f} ms")


async def sdk_loop_cost(url: str) -> None:
    from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool
    from openai import AsyncOpenAI

    @function_tool
    def get_weather(city: str) -> str:
        """Weather.

        Args:
            city: City.
        """
        return "x" * 1000

    print("2. Runner.run of an N-step tool loop, CPU ms per turn")
    async with AsyncOpenAI(base_url=url, api_key="x", max_retries=0) as client:
        for steps in STEPS_PER_RUN:
            _Stub.steps = steps
            agent = Agent(
                name="a",
                model=OpenAIResponsesModel("m", openai_client=client),
                tools=[get_weather],
            )
            config = RunConfig(tracing_disabled=True)
            started = time.process_time()
            await Runner.run(agent, "go", max_turns=steps + 5, run_config=config)
            per = (time.process_time() - started) / (steps + 1) * 1000
            print(f"   {steps:3} steps: {per:7.1f} ms per turn")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        asyncio.run(client_cost(url))
        asyncio.run(sdk_loop_cost(url))
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
