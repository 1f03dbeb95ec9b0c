"""The Responses API of a served agent, through the official `openai` client and the Agents
SDK, over real HTTP, against the mock vLLM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from agent_runtime.server import ServeOptions
from agent_runtime.testing import MockVLLM, Reply, call, fault
from tests.server.helpers import project_app, served

HAIKU = "Sun over Tokyo,\ntwenty-one degrees of light,\nthe city breathes warm."
WEATHER = '{"city": "Tokyo", "condition": "sunny", "temperature_c": 21}'
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def haiku_script() -> list[Reply]:
    return [
        Reply(reasoning="Call get_weather.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(reasoning="Sunny. Write it.", final=HAIKU),
    ]


@pytest.fixture
async def mock(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        monkeypatch.setenv("MOCK_URL", server.url)  # the `hang` tool finds the mock there
        yield server


@pytest.fixture
async def url(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[str]:
    async with served(project_app(mock, tmp_path)) as base:
        yield base


@pytest.fixture
async def client(url: str) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as openai_client:
        yield openai_client


async def wait_for(mock: MockVLLM, condition: Any) -> None:
    await asyncio.to_thread(mock.wait_until, condition, timeout=30)


async def poll(client: AsyncOpenAI, response_id: str, statuses: set[str]) -> Response:
    """GET the response until its status is one of `statuses` (at most 30 s)."""
    async with asyncio.timeout(30):
        while True:
            found = await client.responses.retrieve(response_id)
            if found.status in statuses:
                return found
            await asyncio.sleep(0.02)


# -- one response ------------------------------------------------------------------------------


async def test_a_response_shows_reasoning_tool_calls_answer_and_usage(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*haiku_script())
    response = await client.responses.create(
        model="weather-haiku", input="Weather in Tokyo?", metadata={"ticket": "42"}
    )

    Response.model_validate(response.model_dump(exclude_unset=True))  # strict, as sent
    assert response.id.startswith("resp_")
    assert (response.object, response.status, response.model) == (
        "response",
        "completed",
        "weather-haiku",
    )
    assert response.metadata == {"ticket": "42"}
    assert response.output_text == HAIKU
    assert [item.type for item in response.output] == [
        "reasoning",
        "mcp_call",
        "reasoning",
        "message",
    ]
    reasoning, tool, _, _ = response.output
    assert reasoning.content[0].text == "Call get_weather."  # type: ignore[union-attr,index]
    assert tool.model_dump(exclude_none=True) == {
        "id": tool.id,
        "type": "mcp_call",
        "server_label": "weather-haiku",
        "name": "get_weather",
        "arguments": '{"city":"Tokyo"}',
        "output": WEATHER,
        "status": "completed",
    }
    usage = response.usage
    assert usage is not None
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
    assert usage.input_tokens > sum(len(r.json["input"]) for r in mock.model_requests)


async def test_instructions_and_settings_reach_the_model(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(Reply(final="ok"))
    await client.responses.create(
        model="weather-haiku",
        input=[{"role": "user", "content": "hi"}],
        instructions="Be brief.",
        max_output_tokens=300,
        temperature=0.5,
        top_p=0.9,
    )
    sent = mock.model_requests[0].json
    assert sent["instructions"] == "You only respond in haikus.\n\nBe brief."
    assert (sent["max_output_tokens"], sent["temperature"], sent["top_p"]) == (300, 0.5, 0.9)
    assert sent["reasoning"] == {"effort": "low"}  # the agent's own settings stay


async def test_a_structured_answer_is_its_json_text(mock: MockVLLM, client: AsyncOpenAI) -> None:
    mock.add(Reply(final='{"city": "Tokyo", "temperature_c": 21}'))
    response = await client.responses.create(model="extractor", input="Tokyo is 21 °C.")
    assert json.loads(response.output_text) == {"city": "Tokyo", "temperature_c": 21}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
async def test_a_handoff_is_shown_as_a_server_side_call(
    mock: MockVLLM, client: AsyncOpenAI, stream: bool
) -> None:
    mock.add(
        Reply(reasoning="Hand off.", calls=(call("transfer_to_weather_haiku"),)),
        Reply(final=HAIKU),
    )
    if stream:
        async with client.responses.stream(model="triage", input="Weather?") as events:
            response = await events.get_final_response()
    else:
        response = await client.responses.create(model="triage", input="Weather?")
    handoff = response.output[1]
    assert handoff.model_dump(exclude_none=True) == {
        "id": handoff.id,
        "type": "mcp_call",
        "server_label": "triage",
        "name": "transfer_to_weather_haiku",
        "arguments": "{}",
        "output": '{"assistant": "weather-haiku"}',
        "status": "completed",
    }
    assert response.output_text == HAIKU


# -- streaming ---------------------------------------------------------------------------------


async def test_the_stream_has_the_full_lifecycle_in_openai_shapes(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*haiku_script())
    stream = await client.responses.create(
        model="weather-haiku", input="Weather in Tokyo?", stream=True
    )
    events = [event.model_dump(exclude_unset=True) async for event in stream]

    for event in events:
        EVENTS.validate_python(event)  # each event is a valid ResponseStreamEvent
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for needed in (
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.mcp_call.completed",
    ):
        assert needed in kinds
    added = {e["output_index"]: e["item"] for e in events if e["type"].endswith("item.added")}
    done = {e["output_index"]: e["item"] for e in events if e["type"].endswith("item.done")}
    assert list(added) == list(done) == [0, 1, 2, 3]
    assert [added[i]["id"] for i in added] == [done[i]["id"] for i in done]
    # Each event shows the item (and the response) as it was then, not as it ended.
    assert {item["status"] for item in added.values()} == {"in_progress"}
    assert {item["status"] for item in done.values()} == {"completed"}
    assert events[0]["response"]["output"] == []
    assert events[0]["response"]["status"] == "in_progress"
    final = events[-1]["response"]
    assert [item["id"] for item in final["output"]] == [done[i]["id"] for i in done]
    assert [item["type"] for item in final["output"]] == [
        "reasoning",
        "mcp_call",
        "reasoning",
        "message",
    ]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == HAIKU
    assert final["usage"]["total_tokens"] > 0


async def test_the_clients_stream_helper_gives_the_final_response(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*haiku_script())
    async with client.responses.stream(model="weather-haiku", input="Weather?") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.status == "completed"
    assert final.output_text == HAIKU


async def test_a_failing_model_server_ends_the_stream_failed(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(fault(status=500))
    stream = await client.responses.create(model="weather-haiku", input="hi", stream=True)
    events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None
    assert last.response.error.code == "backend_error"  # type: ignore[comparison-overlap]
    assert "failed: HTTP 500: Internal server error" in last.response.error.message


async def test_a_failing_model_server_is_a_502_without_streaming(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(fault(status=500))
    with pytest.raises(openai.APIStatusError) as caught:
        await client.responses.create(model="weather-haiku", input="hi")
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "backend_error"  # type: ignore[index]


async def test_a_client_that_leaves_the_stream_cancels_the_run(
    mock: MockVLLM, url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    mock.add(Reply(reasoning="Wait.", calls=(call("hang", marker=str(marker)),)))
    body = {"model": "patient", "input": "wait", "stream": True}
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("POST", f"{url}/v1/responses", json=body) as answer,
    ):
        lines = answer.aiter_lines()  # kept: an abandoned line iterator closes the connection
        while await anext(lines) != "event: response.mcp_call.in_progress":
            pass
        await wait_for(mock, lambda m: any(r.path == "/health" for r in m.requests))
        assert marker.exists() is False  # the tool runs while the client listens
    # The connection is closed: the run is cancelled, and with it the running tool.
    await wait_for(mock, lambda m: any(r.path == "/version" for r in m.requests))
    assert marker.read_text() == "cancelled"


async def test_a_client_that_leaves_before_the_answer_cancels_the_run(
    mock: MockVLLM, url: str, client: AsyncOpenAI, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    mock.add(Reply(reasoning="Wait.", calls=(call("hang", marker=str(marker)),)))
    body = {"model": "patient", "input": "wait", "metadata": {"tag": "left"}}
    async with httpx.AsyncClient(timeout=30) as http:
        request = asyncio.create_task(http.post(f"{url}/v1/responses", json=body))
        await wait_for(mock, lambda m: any(r.path == "/health" for r in m.requests))
        assert marker.exists() is False  # the tool runs while the client waits
        request.cancel()  # closes the connection
        with pytest.raises(asyncio.CancelledError):
            await request
    await wait_for(mock, lambda m: any(r.path == "/version" for r in m.requests))
    assert marker.read_text() == "cancelled"


# -- stored responses --------------------------------------------------------------------------


async def test_previous_response_id_continues_the_conversation(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*haiku_script(), Reply(final="Again: sunny."))
    first = await client.responses.create(model="weather-haiku", input="Weather in Tokyo?")
    second = await client.responses.create(
        model="weather-haiku", input="And now?", previous_response_id=first.id
    )
    assert second.output_text == "Again: sunny."
    assert second.previous_response_id == first.id
    sent = mock.model_requests[2].json["input"]
    assert sent[0] == {"role": "user", "content": "Weather in Tokyo?"}
    assert sent[-1] == {"role": "user", "content": "And now?"}
    assert any(item.get("output") == WEATHER for item in sent)


async def test_continuing_an_older_response_branches_from_it(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*(Reply(final=f"A{n}") for n in range(1, 6)))

    async def ask(text: str, previous: str | None) -> tuple[str, list[Any]]:
        answer = await client.responses.create(
            model="weather-haiku", input=text, previous_response_id=previous
        )
        sent = mock.model_requests[-1].json["input"]
        return answer.id, [item.get("content") for item in sent if item.get("role") == "user"]

    first, _ = await ask("Q1", None)
    second, _ = await ask("Q2", first)
    third, asked = await ask("Q3", first)  # a branch: Q2 is not in it
    assert asked == ["Q1", "Q3"]
    _, asked = await ask("Q4", second)  # the first chain goes on, without Q3
    assert asked == ["Q1", "Q2", "Q4"]
    _, asked = await ask("Q5", third)  # and so does the branch
    assert asked == ["Q1", "Q3", "Q5"]
    assistant = [
        item["content"][0]["text"]
        for item in mock.model_requests[-1].json["input"]
        if item.get("role") == "assistant"
    ]
    assert assistant == ["A1", "A3"]


async def test_an_older_response_that_did_not_complete_cannot_be_branched_from(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(fault(status=500), Reply(final="Retried."))
    started = await client.responses.create(model="weather-haiku", input="Q1", background=True)
    failed = await poll(client, started.id, {"completed", "failed"})
    assert failed.status == "failed"
    again = await client.responses.create(
        model="weather-haiku", input="Again?", previous_response_id=failed.id
    )
    assert again.output_text == "Retried."  # the newest of its conversation: continued
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="weather-haiku", input="Once more?", previous_response_id=failed.id
        )
    assert caught.value.body == {
        "message": f"response '{failed.id}' is not the newest of its conversation, and it "
        "cannot be branched from: it has not completed (status `failed`). Continue the newest "
        "response instead.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": None,
    }


async def test_an_unknown_previous_response_is_a_404(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(
            model="weather-haiku", input="hi", previous_response_id="resp_nope"
        )
    assert caught.value.body == {
        "message": "no response with id 'resp_nope'. Responses are kept in this server's memory "
        "(the newest `store_limit`), only when created with `store: true`, and not across "
        "restarts.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "response_not_found",
    }


async def test_a_conversation_id_continues_its_session(mock: MockVLLM, client: AsyncOpenAI) -> None:
    mock.add(Reply(final="Hello Ann."), Reply(final="You are Ann."))
    await client.responses.create(model="weather-haiku", input="I am Ann.", conversation="c1")
    answer = await client.responses.create(
        model="weather-haiku", input="Who am I?", conversation="c1", store=False
    )
    assert answer.output_text == "You are Ann."
    assert answer.conversation is not None and answer.conversation.id == "c1"
    sent = mock.model_requests[1].json["input"]
    assert sent[0] == {"role": "user", "content": "I am Ann."}


async def test_store_false_keeps_nothing(mock: MockVLLM, client: AsyncOpenAI) -> None:
    mock.add(Reply(final="ok"))
    response = await client.responses.create(model="weather-haiku", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)


async def test_get_and_delete_a_response(mock: MockVLLM, client: AsyncOpenAI) -> None:
    mock.add(*haiku_script())
    response = await client.responses.create(model="weather-haiku", input="Weather?")
    kept = await client.responses.retrieve(response.id)
    assert kept.model_dump() == response.model_dump()
    await client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(response.id)


async def test_the_store_keeps_the_newest_store_limit(mock: MockVLLM, tmp_path: Path) -> None:
    app = project_app(mock, tmp_path, ServeOptions(store_limit=1))
    async with served(app) as url, AsyncOpenAI(base_url=f"{url}/v1", api_key="x") as client:
        mock.add(Reply(final="one"), Reply(final="two"))
        first = await client.responses.create(model="weather-haiku", input="1")
        second = await client.responses.create(model="weather-haiku", input="2")
        assert (await client.responses.retrieve(second.id)).output_text == "two"
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(first.id)


# -- background --------------------------------------------------------------------------------


async def test_a_background_response_is_polled_until_done(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*haiku_script())
    started = await client.responses.create(
        model="weather-haiku", input="Weather?", background=True
    )
    assert started.status in ("queued", "in_progress")
    assert started.background is True
    done = await poll(client, started.id, {"completed", "failed"})
    assert done.status == "completed"
    assert done.output_text == HAIKU


async def test_a_background_response_can_be_cancelled(
    mock: MockVLLM, client: AsyncOpenAI, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    mock.add(Reply(reasoning="Wait.", calls=(call("hang", marker=str(marker)),)))
    started = await client.responses.create(model="patient", input="wait", background=True)
    await wait_for(mock, lambda m: any(r.path == "/health" for r in m.requests))
    running = await client.responses.retrieve(started.id)
    assert running.status == "in_progress"
    assert [item.type for item in running.output] == ["reasoning", "mcp_call"]
    cancelled = await client.responses.cancel(started.id)
    assert cancelled.status == "cancelled"
    assert marker.read_text() == "cancelled"
    assert (await client.responses.retrieve(started.id)).status == "cancelled"


async def test_a_background_response_can_be_streamed_from_the_start(
    mock: MockVLLM, client: AsyncOpenAI
) -> None:
    mock.add(*haiku_script())
    started = await client.responses.create(
        model="weather-haiku", input="Weather?", background=True
    )
    stream = await client.responses.retrieve(started.id, stream=True)
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == HAIKU
    # Kept events show the response and its items as they were when sent, not as they ended.
    assert events[0].type == "response.created"
    assert events[0].response.output == []
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert len(added) == 4
    assert {item.status for item in added} == {"in_progress"}


async def test_only_background_responses_are_cancelled(mock: MockVLLM, client: AsyncOpenAI) -> None:
    mock.add(Reply(final="ok"))
    response = await client.responses.create(model="weather-haiku", input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.cancel(response.id)
    assert "only background responses can be cancelled" in caught.value.message


# -- bad requests ------------------------------------------------------------------------------


async def test_an_unknown_agent_is_a_404_listing_the_agents(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(model="weather-haikus", input="hi")
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "model_not_found"
    assert body["param"] == "model"
    assert body["message"].startswith(
        "no agent named 'weather-haikus'. Did you mean 'weather-haiku'? The models here are "
        "the agents: weather-haiku, toolbox, "
    )


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        pytest.param({"model": "weather-haiku"}, "input", "Field required", id="no-input"),
        pytest.param(
            {"model": "weather-haiku", "input": "hi", "temperature": 3},
            "temperature",
            "less than or equal to 2",
            id="temperature",
        ),
        pytest.param(
            {"model": "weather-haiku", "input": "hi", "temprature": 1},
            "temprature",
            "unknown field `temprature`. Did you mean `temperature`?",
            id="unknown-field",
        ),
        pytest.param(
            {"model": "weather-haiku", "input": [{"content": "hi"}]},
            "input",
            "item 0 has neither `type` nor `role`",
            id="item-kind",
        ),
        pytest.param(
            {"model": "weather-haiku", "input": "hi", "tools": [{"type": "file_search"}]},
            "tools[0].type",
            "tools of type `file_search` are not supported",
            id="tool-type",
        ),
    ],
)
async def test_a_bad_body_is_a_400_naming_the_field(
    url: str, body: dict[str, Any], param: str, words: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{url}/v1/responses", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]


# -- the Agents SDK using a served agent as its model ------------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
async def test_the_agents_sdk_uses_a_served_agent_as_its_model(
    mock: MockVLLM, url: str, streamed: bool
) -> None:
    from agents import Agent, OpenAIResponsesModel, RunConfig, Runner
    from agents.items import ToolCallItem

    mock.add(*haiku_script())
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as openai_client:
        model = OpenAIResponsesModel(model="weather-haiku", openai_client=openai_client)
        agent = Agent(name="outer", model=model)
        config = RunConfig(tracing_disabled=True)
        if streamed:
            result: Any = Runner.run_streamed(agent, "Weather in Tokyo?", run_config=config)
            async for _ in result.stream_events():
                pass
        else:
            result = await Runner.run(agent, "Weather in Tokyo?", run_config=config)
    assert result.final_output == HAIKU
    calls = [item for item in result.new_items if isinstance(item, ToolCallItem)]
    assert [
        (getattr(c.raw_item, "type", None), getattr(c.raw_item, "name", None)) for c in calls
    ] == [("mcp_call", "get_weather")]
    assert len(mock.model_requests) == 2  # the served agent's own two turns, nothing more
