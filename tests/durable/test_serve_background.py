"""`agent-runtime serve` with `durability:`: background responses are durable runs, executed by
a worker (here an engine in this process), followed by the server that created them, and read
back by any server of the same database."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from agent_runtime.durable import DurableEngine
from agent_runtime.server import create_app_from_yaml
from agent_runtime.testing import MockVLLM, Reply, call
from tests.durable.conftest import Project
from tests.server.helpers import served

TIMEOUT_S = 30
HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."


def weather_script() -> list[Reply]:
    return [
        Reply(reasoning="Call get_weather.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(reasoning="Sunny. Write it.", final=HAIKU),
    ]


def app_of(project: Project) -> Any:
    return create_app_from_yaml(project.yaml, environ=project.environ, trace_path=False)


async def finished(client: AsyncOpenAI, response_id: str) -> Any:
    async with asyncio.timeout(TIMEOUT_S):
        while True:
            response = await client.responses.retrieve(response_id)
            if response.status not in ("queued", "in_progress"):
                return response
            await asyncio.sleep(0.05)


async def test_a_background_response_runs_on_the_queue_and_any_server_reads_it(
    project: Project, mock: MockVLLM
) -> None:
    mock.add(*weather_script())
    async with (
        served(app_of(project)) as url,
        AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client,
    ):
        created = await client.responses.create(
            model="weather", input="Weather in Tokyo?", background=True
        )
        assert created.status == "queued"
        async with project.runtime() as worker, DurableEngine(worker) as engine:
            done = await finished(client, created.id)
            status = worker.status(created.id)
        assert done.status == "completed"
        assert done.output_text == HAIKU
        assert [item.type for item in done.output] == [
            "reasoning",
            "mcp_call",
            "reasoning",
            "message",
        ]
        assert (status.status, status.executor) == ("succeeded", engine.executor_id)
    assert project.tool_calls() == ["get_weather Tokyo"]  # run once, by the worker
    assert len(mock.model_requests) == 2
    async with (  # another server of the same database (or this one, restarted)
        served(app_of(project)) as other,
        AsyncOpenAI(base_url=f"{other}/v1", api_key="x", max_retries=0) as client,
    ):
        again = await client.responses.retrieve(created.id)
        assert (again.status, again.output_text, again.model) == ("completed", HAIKU, "weather")
        assert again.usage is not None and again.usage.total_tokens > 0
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve("resp_0123456789abcdef01234567")


async def test_a_queued_background_response_can_be_cancelled(project: Project) -> None:
    async with (
        served(app_of(project)) as url,
        AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client,
    ):
        created = await client.responses.create(
            model="weather", input="Weather in Tokyo?", background=True
        )
        cancelled = await client.responses.cancel(created.id)
        assert cancelled.status == "cancelled"
        async with project.runtime() as runtime:
            assert runtime.status(created.id).status == "cancelled"


async def test_client_tools_cannot_go_to_the_queue(project: Project) -> None:
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    async with (
        served(app_of(project)) as url,
        AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client,
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(
                model="weather",
                input="Weather in Tokyo?",
                background=True,
                tools=[tool],  # type: ignore[list-item]
            )
    assert refused.value.body["param"] == "tools"  # type: ignore[index]
    assert "durable queue" in refused.value.message
