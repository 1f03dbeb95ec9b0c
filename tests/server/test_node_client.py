"""A served agent through the official Node `openai` package (`tests/server/node/client.mjs`),
over real HTTP, against the mock vLLM.

Needs `node` and the package installed next to the script (`npm ci --prefix tests/server/node`,
as `.ci/run` does); without them (an offline clone) these tests are skipped.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.server import ServeOptions
from agent_runtime.testing import MockVLLM, Reply, call
from tests.server.helpers import project_app, served

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
NODE_TIMEOUT_S = 120.0

pytestmark = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "openai").is_dir(),
    reason="needs `node` and the Node `openai` package: run `npm ci --prefix tests/server/node`",
)

HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."
WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'
AGENTS = ["weather-haiku", "toolbox", "chat-haiku", "triage", "planner", "extractor", "patient"]


def tool_turn(city: str) -> list[Reply]:
    return [
        Reply(reasoning=f"Call get_weather for {city}.", calls=(call("get_weather", city=city),)),
        Reply(reasoning="Sunny. Write it.", final=HAIKU),
    ]


async def run_client(url: str, mode: str, *, api_key: str = "unused") -> dict[str, Any]:
    """Run client.mjs against `url`; its JSON summary."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(NODE_DIR / "client.mjs"),
        url,
        mode,
        cwd=NODE_DIR,
        env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": api_key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(NODE_TIMEOUT_S):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    summary: dict[str, Any] = json.loads(out)
    return summary


def collapsed(kinds: list[str]) -> list[str]:
    """The event types in order, a run of the same type (deltas) as one."""
    return [kind for index, kind in enumerate(kinds) if index == 0 or kinds[index - 1] != kind]


async def test_the_node_client_uses_responses_and_chat(tmp_path: Path) -> None:
    async with MockVLLM() as mock:
        mock.add(
            *tool_turn("Tokyo"),  # responses.create
            *tool_turn("Oslo"),  # the same, streamed
            Reply(final="Again: sunny."),  # previous_response_id
            Reply(reasoning="Lima is warm.", final="Warm Lima."),  # chat
            Reply(reasoning="Rome is hot.", final="Hot Rome."),  # chat, streamed
        )
        async with served(project_app(mock, tmp_path)) as url:
            summary = await run_client(url, "all")
        sent = [request.json for request in mock.model_requests]

    assert summary["models"] == AGENTS
    first = summary["response"]
    assert first["id"].startswith("resp_")
    assert (first["status"], first["output_text"]) == ("completed", HAIKU)
    assert first["output_types"] == ["reasoning", "mcp_call", "reasoning", "message"]
    assert first["total_tokens"] > 0

    stream = summary["stream"]
    assert stream["sequence"] == list(range(len(stream["types"])))
    kinds = stream["types"]
    reasoning_item = [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert collapsed(kinds) == [
        "response.created",
        "response.in_progress",
        *reasoning_item,
        "response.output_item.added",  # the agent's own tool call, run on the server
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.output_item.done",
        *reasoning_item,
        "response.output_item.added",  # the answer
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert kinds.count("response.reasoning_text.delta") > 2  # streamed piece by piece
    assert kinds.count("response.output_text.delta") > 2
    assert stream["reasoning"] == "Call get_weather for Oslo.Sunny. Write it."
    assert (stream["text"], stream["status"]) == (HAIKU, "completed")
    assert stream["output_types"] == ["reasoning", "mcp_call", "reasoning", "message"]

    continued = summary["continued"]
    assert (continued["output_text"], continued["previous_response_id"]) == (
        "Again: sunny.",
        first["id"],
    )
    # The third run's model call saw the first run's turn (not the streamed one), then the prompt.
    turn = sent[4]["input"]
    assert turn[0] == {"role": "user", "content": "Weather in Tokyo?"}
    assert any(item.get("output") == WEATHER for item in turn)
    assert turn[-1] == {"role": "user", "content": "And now?"}
    assert not any("Oslo" in json.dumps(item) for item in turn)

    assert summary["chat"] == {
        "object": "chat.completion",
        "content": "Warm Lima.",
        "reasoning": "Lima is warm.",
        "finish_reason": "stop",
        "total_tokens": summary["chat"]["total_tokens"],
    }
    assert summary["chat"]["total_tokens"] > 0
    chat_stream = summary["chat_stream"]
    assert (chat_stream["content"], chat_stream["reasoning"]) == ("Hot Rome.", "Rome is hot.")
    assert chat_stream["finish"] == ["stop"]
    assert chat_stream["chunks"] > 3
    assert chat_stream["total_tokens"] > 0

    assert summary["unknown_agent"] == {
        "class": "NotFoundError",
        "status": 404,
        "code": "model_not_found",
        "type": "invalid_request_error",
        "param": "model",
        "message": "404 no agent named 'no-such-agent'. The models here are the agents: "
        "weather-haiku, toolbox, chat-haiku, triage, planner, extractor, patient.",
    }


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            "unused",
            "401 the API key is not valid for this server.",
            id="wrong-key",
        ),
        pytest.param("k1", None, id="right-key"),
    ],
)
async def test_the_node_client_sends_its_api_key(
    tmp_path: Path, key: str, message: str | None
) -> None:
    async with (
        MockVLLM() as mock,
        served(project_app(mock, tmp_path, ServeOptions(api_keys=("k1",), ui=False))) as url,
    ):
        summary = await run_client(url, "unauthorized", api_key=key)
    if message is None:
        assert summary == {"models": AGENTS}
    else:
        assert summary == {
            "error": {
                "class": "AuthenticationError",
                "status": 401,
                "code": "invalid_api_key",
                "type": "invalid_request_error",
                "param": None,
                "message": message,
            }
        }
