"""A served agent whose run stops for a person's approval (`approval: always`): nobody can
answer through the API, so the run ends failed with `approval_required`, saying which call and
what to change, streamed or not, on both APIs, and the tool does not run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response

from agent_runtime.server import create_app_from_yaml
from agent_runtime.testing import MockVLLM, Reply, call
from tests.server.helpers import served
from tests.server.test_responses import poll
from tests.test_approval import deleted, project

REFUSED = (
    "the run stopped for a person to approve a call of `delete_file` (agent `keeper`), declared "
    "with `approval: always` in agents.yaml; a served agent cannot wait for an approval."
)


def stop_at_delete(mock: MockVLLM) -> None:
    """The model calls `delete_file` (needs approval) and `get_weather`: the run stops there."""
    mock.add(
        Reply(
            reasoning="Delete it, and look at the weather.",
            calls=(call("delete_file", path="a.txt"), call("get_weather", city="Oslo")),
        )
    )


def assert_refused(response: Response) -> None:
    """`response` ended failed because its run stopped for approval."""
    assert response.status == "failed"
    assert response.error is not None
    assert response.error.code == "approval_required"
    assert response.error.message.startswith(REFUSED)


def assert_refused_body(error: openai.APIStatusError) -> None:
    """The HTTP error of a run that stopped for approval."""
    body = error.body
    assert isinstance(body, dict)
    assert body["code"] == "approval_required"
    assert body["message"].startswith(REFUSED)


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def client(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[AsyncOpenAI]:
    app = create_app_from_yaml(project(tmp_path, mock))
    async with (
        served(app) as url,
        AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as openai_client,
    ):
        yield openai_client


async def test_a_response_that_stops_for_approval_fails_saying_so(
    mock: MockVLLM, client: AsyncOpenAI, tmp_path: Path
) -> None:
    stop_at_delete(mock)
    with pytest.raises(openai.InternalServerError) as error:
        await client.responses.create(model="keeper", input="Delete a.txt")
    assert_refused_body(error.value)
    assert deleted(tmp_path) == []


async def test_a_streamed_response_that_stops_for_approval_ends_failed(
    mock: MockVLLM, client: AsyncOpenAI, tmp_path: Path
) -> None:
    stop_at_delete(mock)
    stream = await client.responses.create(model="keeper", input="Delete a.txt", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert_refused(failed)
    assert deleted(tmp_path) == []
    # What the run did before it stopped is still shown: the call that ran, and the one that
    # waited for approval, left incomplete.
    calls = {item.name: item.status for item in failed.output if item.type == "mcp_call"}
    assert calls == {"get_weather": "completed", "delete_file": "incomplete"}


async def test_chat_completions_that_stop_for_approval_fail_saying_so(
    mock: MockVLLM, client: AsyncOpenAI, tmp_path: Path
) -> None:
    stop_at_delete(mock)
    with pytest.raises(openai.InternalServerError) as error:
        await client.chat.completions.create(
            model="keeper", messages=[{"role": "user", "content": "Delete a.txt"}]
        )
    assert_refused_body(error.value)
    stop_at_delete(mock)
    stream = await client.chat.completions.create(
        model="keeper", messages=[{"role": "user", "content": "Delete a.txt"}], stream=True
    )
    with pytest.raises(openai.APIError) as streamed:
        async for _ in stream:
            pass
    assert str(streamed.value.message).startswith(REFUSED)
    assert deleted(tmp_path) == []


async def test_a_background_response_that_stops_for_approval_ends_failed(
    mock: MockVLLM, client: AsyncOpenAI, tmp_path: Path
) -> None:
    stop_at_delete(mock)
    started = await client.responses.create(model="keeper", input="Delete a.txt", background=True)
    found = await poll(client, started.id, {"completed", "failed", "incomplete", "cancelled"})
    assert_refused(found)
    assert deleted(tmp_path) == []
