"""`GET /v1/models`: the served agents as models, through the official `openai` client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI

from agent_runtime.testing import MockVLLM
from tests.server.helpers import project_app, served


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncOpenAI]:
    async with (
        MockVLLM() as mock,
        served(project_app(mock, tmp_path)) as url,
        AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as openai_client,
    ):
        yield openai_client


async def test_every_agent_is_a_model(client: AsyncOpenAI) -> None:
    models = [model async for model in client.models.list()]
    assert [model.id for model in models] == [
        "weather-haiku",
        "toolbox",
        "chat-haiku",
        "triage",
        "planner",
        "extractor",
        "patient",
    ]
    first = models[0].model_dump()
    assert first["object"] == "model"
    assert first["owned_by"] == "agent-runtime"
    assert first["description"] == "Writes haikus about the weather."
    assert isinstance(first["created"], int)
    assert "description" not in models[1].model_dump()  # toolbox has none


async def test_one_model_and_an_unknown_one(client: AsyncOpenAI) -> None:
    model = await client.models.retrieve("weather-haiku")
    assert model.id == "weather-haiku"
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.retrieve("weather")
    assert caught.value.body == {
        "message": "no agent named 'weather'. Did you mean 'weather-haiku'? The models here are "
        "the agents: weather-haiku, toolbox, chat-haiku, triage, planner, extractor, patient.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
